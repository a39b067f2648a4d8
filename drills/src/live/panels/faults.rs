//! The fault timeline: faults that are over (✓, or ✗ if they could not fire) with their
//! recovery, active ones (●) with the time since they fired, upcoming ones (○) with a
//! countdown. When they do not all fit, the oldest finished ones give way.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::fmt;
use crate::live::state::{ViewState, nodes_text};
use crate::live::timeline::{FaultWindow, Planned};

/// The recovery part of a line: the new leader, or that none was seen yet.
fn recovery(w: &FaultWindow) -> String {
    match (w.hit_leader, w.new_leader) {
        (Some(_), Some((l, after))) => format!(" → leader {l} in {after:.1}s"),
        (Some(_), None) => " · no new leader yet".into(),
        (None, _) => String::new(),
    }
}

fn fired_line(w: &FaultWindow, now: f64) -> Line<'static> {
    let head = format!(
        " {} {} {} {}",
        fmt::secs(w.fired_s),
        w.action,
        w.target,
        nodes_text(&w.nodes)
    )
    .trim_end()
    .to_string();
    let (mark, color, tail) = if let Some(e) = &w.error {
        ("✗", Color::Red, format!(": {e}"))
    } else if w.active {
        let ago = format!(" {:.0}s ago", now - w.fired_s);
        ("●", Color::Red, format!("{ago}{}", recovery(w)))
    } else {
        let healed = w
            .healed_s
            .map_or(String::new(), |h| format!(", healed {:.0}s ago", now - h));
        ("✓", Color::Green, format!("{}{healed}", recovery(w)))
    };
    Line::from(vec![
        Span::styled(mark, Style::default().fg(color)),
        Span::raw(head),
        Span::styled(tail, Style::default().fg(Color::Gray)),
    ])
}

fn upcoming_line(p: &Planned, now: f64) -> Line<'static> {
    let undo = p
        .undo_after_s
        .map_or(String::new(), |d| format!(" for {}", fmt::secs(d)));
    Line::from(vec![
        Span::styled("○", Style::default().fg(Color::DarkGray)),
        Span::raw(format!(
            " {} {} {}{undo}",
            fmt::secs(p.at_s),
            p.action,
            p.target
        )),
        Span::styled(
            format!(" · in {}", fmt::secs(p.at_s - now)),
            Style::default().fg(Color::Yellow),
        ),
    ])
}

/// The lines of the timeline in time order, dropping the oldest finished ones beyond `room`.
pub fn lines(s: &ViewState, room: usize) -> Vec<Line<'static>> {
    let windows = s.timeline.windows();
    let finished = windows.iter().filter(|w| !w.active).count();
    let total = windows.len() + s.timeline.upcoming().len();
    let mut skip = total.saturating_sub(room).min(finished);
    let mut out = Vec::new();
    for w in windows {
        if !w.active && skip > 0 {
            skip -= 1;
            continue;
        }
        out.push(fired_line(w, s.now_s));
    }
    out.extend(
        s.timeline
            .upcoming()
            .iter()
            .map(|p| upcoming_line(p, s.now_s)),
    );
    out
}

/// Renders the timeline into `area` (a title line, then one line per fault).
pub fn render(f: &mut Frame, area: Rect, s: &ViewState) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(" faults ", fmt::title()));
    let room = usize::from(block.inner(area).height);
    let mut text = lines(s, room);
    if text.is_empty() {
        text.push(Line::styled(
            " no faults in this scenario",
            Style::default().fg(Color::DarkGray),
        ));
    }
    f.render_widget(Paragraph::new(text).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture;
    use crate::live::panels::testing::{draw, find, row_text};

    #[test]
    fn upcoming_active_and_past() {
        let mut s = ViewState::new(&fixture::spec());
        s.tick(12.0);
        let buf = draw(60, 3, |f| render(f, f.area(), &s));
        let line = row_text(&buf, 1);
        assert!(line.contains("○ 15s kill leader for 10s · in 3s"), "{line}");

        s.observe_faults(&[fixture::fault(15.0, true)]);
        s.tick(17.0);
        let buf = draw(60, 3, |f| render(f, f.area(), &s));
        let line = row_text(&buf, 1);
        assert!(line.contains("● 15s kill leader [1] 2s ago"), "{line}");
        assert!(line.contains("no new leader yet"), "{line}");

        let s = fixture::state();
        let buf = draw(80, 3, |f| render(f, f.area(), &s));
        let line = row_text(&buf, 1);
        assert!(
            line.contains("✓ 15s kill leader [1] → leader 2 in 1.4s, healed 16s ago"),
            "{line}"
        );
        let (x, y) = find(&buf, "✓").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Green);
    }

    #[test]
    fn oldest_finished_faults_give_way() {
        let mut s = ViewState::new(&fixture::spec());
        let recs: Vec<_> = (0..5)
            .map(|i| {
                let mut r = fixture::fault(f64::from(i), false);
                r.action = format!("f{i}");
                r
            })
            .collect();
        s.observe_faults(&recs);
        let l = lines(&s, 2);
        assert_eq!(l.len(), 2);
        assert!(l[0].to_string().contains("f3"), "{}", l[0]);
    }
}
