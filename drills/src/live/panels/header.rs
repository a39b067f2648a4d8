//! The header line: scenario, elapsed and total time, the phase, the verdict so far.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::fmt;
use crate::live::board::verdict_name;
use crate::live::state::ViewState;

/// Renders the header into `area` (one line).
pub fn render(f: &mut Frame, area: Rect, s: &ViewState) {
    let verdict = s.verdict();
    let sep = Span::styled(" │ ", Style::default().fg(Color::DarkGray));
    let mut spans = vec![
        Span::styled(
            format!(" {}", s.name),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        sep.clone(),
        Span::raw(format!("{} / {}", fmt::secs(s.now_s), fmt::secs(s.total_s))),
        sep.clone(),
        Span::styled(
            s.phase_label(),
            Style::default()
                .fg(phase_color(s.phase_label()))
                .add_modifier(Modifier::BOLD),
        ),
        sep.clone(),
        Span::raw("worst 1 s: "),
        Span::styled(
            format!("{} {}", verdict.mark(), verdict_name(verdict)),
            fmt::judged(Some(verdict)),
        ),
    ];
    if s.stopping {
        spans.push(sep.clone());
        spans.push(Span::styled(
            "stopping…",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(sep);
    spans.push(Span::styled("? help", Style::default().fg(Color::DarkGray)));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn phase_color(label: &str) -> Color {
    match label {
        "fault active" => Color::Red,
        "recovering" => Color::Yellow,
        "load" => Color::Green,
        _ => Color::Gray,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture;
    use crate::live::panels::testing::{draw, find, row_text};

    #[test]
    fn shows_name_time_phase_and_verdict() {
        let s = fixture::state();
        let buf = draw(80, 1, |f| render(f, f.area(), &s));
        let line = row_text(&buf, 0);
        assert!(line.contains("leader-kill"), "{line}");
        assert!(line.contains("41s / 40s"), "{line}");
        assert!(line.contains("load"), "{line}");
        assert!(line.contains("✗ fail"), "{line}");
        let (x, y) = find(&buf, "✗ fail").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
    }

    #[test]
    fn says_fault_active_and_stopping() {
        let mut fresh = ViewState::new(&fixture::spec());
        fresh.observe_phase(crate::drill::Phase::Load);
        fresh.observe_faults(&[fixture::fault(15.0, true)]);
        fresh.tick(16.0);
        let buf = draw(100, 1, |f| render(f, f.area(), &fresh));
        assert!(row_text(&buf, 0).contains("fault active"));
        assert!(
            row_text(&buf, 0).contains("? unchecked"),
            "nothing judged yet is no pass"
        );
        let mut s = fixture::state();
        s.stopping = true;
        let buf = draw(100, 1, |f| render(f, f.area(), &s));
        assert!(row_text(&buf, 0).contains("stopping…"));
    }
}
