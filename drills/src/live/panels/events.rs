//! The event log panel: what happened, newest first, coloured by kind.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::fmt;
use crate::live::state::ViewState;

/// Renders the log into `area` (a title line, then as many events as fit).
pub fn render(f: &mut Frame, area: Rect, s: &ViewState) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(" events (newest first) ", fmt::title()));
    let room = usize::from(block.inner(area).height);
    let lines: Vec<Line> = s
        .events
        .iter()
        .take(room)
        .map(|e| {
            Line::from(vec![
                Span::styled(
                    format!(" {:>6.1}s ", e.t),
                    Style::default().fg(Color::DarkGray),
                ),
                Span::styled(
                    e.text.clone(),
                    Style::default().fg(fmt::event_color(e.kind)),
                ),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture;
    use crate::live::panels::testing::{draw, find, row_text};

    #[test]
    fn newest_first_as_many_as_fit() {
        let s = fixture::state();
        let buf = draw(80, 6, |f| render(f, f.area(), &s));
        let rows: Vec<String> = (0..6).map(|y| row_text(&buf, y)).collect();
        assert!(rows[0].contains("events"), "{rows:?}");
        assert!(rows[1].contains("25.0s healed kill leader [1]"), "{rows:?}");
        assert!(
            rows[2].contains("kill leader: new leader 2 after 1.4s"),
            "{rows:?}"
        );
        assert!(rows[3].contains("16.4s leader 1 → 2 (term 2)"), "{rows:?}");
        assert!(
            rows[4].contains("16.0s error burst: 25.0% errors"),
            "{rows:?}"
        );
        assert!(rows[5].contains("no leader (was node 1)"), "{rows:?}");
        let (x, y) = find(&buf, "error burst").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
    }
}
