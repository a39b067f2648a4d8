//! The threshold table: metric, warn, break, the last second, the worst second so far, and
//! the status of that worst second (✓ ⚠ ✗).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::fmt;
use crate::live::state::ViewState;

/// Column widths: metric, warn, break, now, worst, status.
const WIDTHS: [Constraint; 6] = [
    Constraint::Length(7),
    Constraint::Length(7),
    Constraint::Length(7),
    Constraint::Length(8),
    Constraint::Length(8),
    Constraint::Length(2),
];

/// A short name that fits the column.
fn short(metric: loadgen::thresholds::Metric) -> &'static str {
    use loadgen::thresholds::Metric as M;
    match metric {
        M::SuccessRate => "success",
        M::ErrorRate => "errors",
        M::NodeCpu => "cpu",
        other => other.as_str(),
    }
}

/// Renders the table into `area` (a title line, a header line, one line per threshold).
pub fn render(f: &mut Frame, area: Rect, s: &ViewState) {
    let header = Row::new(["metric", "warn", "break", "now", "worst 1s", ""])
        .style(Style::default().fg(Color::DarkGray));
    let rows = s.board.rows().iter().map(|r| {
        let now_style = fmt::judged(r.now_status());
        Row::new([
            Cell::from(short(r.metric)),
            Cell::from(fmt::maybe(r.metric, r.levels.warn)),
            Cell::from(fmt::maybe(r.metric, r.levels.brk)),
            Cell::from(fmt::maybe(r.metric, r.now)).style(now_style),
            Cell::from(fmt::maybe(r.metric, r.worst)),
            Cell::from(r.status.mark()).style(
                Style::default()
                    .fg(fmt::status_color(r.status))
                    .add_modifier(Modifier::BOLD),
            ),
        ])
    });
    let block = Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(" thresholds ", fmt::title()));
    let table = Table::new(rows, WIDTHS).header(header).block(block);
    f.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture;
    use crate::live::panels::testing::{draw, find, row_text};

    #[test]
    fn one_row_per_threshold_with_now_worst_and_status() {
        let s = fixture::state();
        let buf = draw(46, 5, |f| render(f, f.area(), &s));
        let rows: Vec<String> = (0..5).map(|y| row_text(&buf, y)).collect();
        assert!(rows[0].contains("thresholds"), "{rows:?}");
        assert!(rows[1].contains("worst 1s"), "{rows:?}");
        // The seed table in its (metric) order: p99, success_rate, node_cpu.
        let p99 = &rows[2];
        assert!(p99.starts_with("p99") && p99.contains("800ms"), "{p99}");
        assert!(p99.contains("1.50s") && p99.contains("12.0ms"), "{p99}");
        assert!(
            p99.contains("900ms") && p99.trim_end().ends_with('⚠'),
            "{p99}"
        );
        let success = &rows[3];
        assert!(
            success.contains("99.5%") && success.contains("95.0%"),
            "{success}"
        );
        assert!(
            success.contains("100.0%") && success.contains("75.0%"),
            "{success}"
        );
        assert!(success.contains('✗'), "{success}");
        let cpu = &rows[4];
        assert!(cpu.contains("75.0%") && cpu.contains("30.0%"), "{cpu}");
        assert!(cpu.contains('✓'), "{cpu}");
        let (x, y) = find(&buf, "✗").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let (x, y) = find(&buf, "⚠").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Yellow);
    }
}
