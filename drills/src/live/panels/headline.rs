//! The headline numbers of the last second: TPS, p50, p99, p999, error rate (and in open loop
//! the late count), each coloured by its threshold: green ok, yellow warn, red break, neutral
//! where the scenario sets none. The error rate takes the `error_rate` threshold, or else the
//! `success_rate` one (the two add up to 100 %).

use loadgen::thresholds::{Metric, Status};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::fmt;
use crate::live::state::ViewState;

/// Renders the headline into `area` (one line).
pub fn render(f: &mut Frame, area: Rect, s: &ViewState) {
    let Some(snap) = &s.snapshot else {
        let waiting = Span::styled(
            " waiting for the first second of load…",
            Style::default().fg(Color::DarkGray),
        );
        f.render_widget(Paragraph::new(waiting), area);
        return;
    };
    let lat = |v: f64| (snap.latency.count > 0).then_some(v);
    let err = snap.counts.error_rate();
    let err_status = s
        .now_status(Metric::ErrorRate)
        .or_else(|| s.now_status(Metric::SuccessRate));
    let mut spans = Vec::new();
    let mut item = |label: &str, text: String, status: Option<Status>| {
        spans.push(Span::raw(format!(" {label} ")));
        spans.push(Span::styled(text, fmt::judged(status)));
        spans.push(Span::raw(" "));
    };
    item("TPS", format!("{:.0}", snap.tps), s.now_status(Metric::Tps));
    for (label, metric, v) in [
        ("p50", Metric::P50, lat(snap.latency.p50)),
        ("p99", Metric::P99, lat(snap.latency.p99)),
        ("p999", Metric::P999, lat(snap.latency.p999)),
    ] {
        item(label, fmt::maybe(metric, v), s.now_status(metric));
    }
    item("err", fmt::maybe(Metric::ErrorRate, err), err_status);
    if s.open_loop {
        item(
            "late",
            format!("{} ({} in all)", snap.counts.late, snap.total.late),
            None,
        );
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture;
    use crate::live::panels::testing::{draw, find, row_text};

    #[test]
    fn numbers_of_the_last_second_coloured_by_threshold() {
        let mut s = fixture::state();
        let buf = draw(80, 1, |f| render(f, f.area(), &s));
        let line = row_text(&buf, 0);
        assert!(line.contains("TPS 300"), "{line}");
        assert!(line.contains("p50 3.00ms"), "{line}");
        assert!(line.contains("p99 12.0ms"), "{line}");
        assert!(line.contains("p999 24.0ms"), "{line}");
        assert!(line.contains("err 0.0%"), "{line}");
        assert!(line.contains("late 2 (2 in all)"), "{line}");
        let fg = |needle: &str| {
            let (x, y) = find(&buf, needle).unwrap();
            buf[(x, y)].fg
        };
        assert_eq!(fg("12.0ms"), Color::Green, "p99 has a threshold");
        assert_eq!(fg("3.00ms"), Color::Reset, "p50 has none: neutral");
        assert_eq!(fg("0.0%"), Color::Green, "success_rate judges errors");

        s.observe_snapshot(&fixture::snapshot(41.0, 300.0, 900.0, 30));
        let buf = draw(80, 1, |f| render(f, f.area(), &s));
        let fg = |needle: &str| {
            let (x, y) = find(&buf, needle).unwrap();
            buf[(x, y)].fg
        };
        assert_eq!(fg("900ms"), Color::Yellow);
        assert_eq!(fg("10.0%"), Color::Red);
    }

    #[test]
    fn before_the_first_second() {
        let s = crate::live::state::ViewState::new(&fixture::spec());
        let buf = draw(80, 1, |f| render(f, f.area(), &s));
        assert!(row_text(&buf, 0).contains("waiting"));
    }
}
