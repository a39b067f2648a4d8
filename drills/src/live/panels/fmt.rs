//! Shared formatting: numbers in each metric's unit, and the colours of statuses, states and
//! events, so that every panel says "p99 = 12.3ms" and paints ⚠ yellow the same way.

use loadgen::thresholds::{Metric, Status};
use ratatui::style::{Color, Modifier, Style};

use crate::drill::poller::NodeState;
use crate::live::events::Kind;

/// A latency in ms: `1.23ms`, `12.3ms`, `850ms`, `1.50s`.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.2}ms")
    }
}

/// A percentage: `99.5%`.
pub fn pct(v: f64) -> String {
    format!("{v:.1}%")
}

/// A value in `metric`'s unit.
pub fn metric_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max => ms(v),
        Metric::SuccessRate | Metric::ErrorRate | Metric::NodeCpu => pct(v),
        Metric::Tps => format!("{v:.0}"),
    }
}

/// `-` for nothing, else the value in the metric's unit.
pub fn maybe(metric: Metric, v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| metric_value(metric, v))
}

/// Bytes as MiB: `21.0M`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}M", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds as `15s` or `2m05s`.
pub fn secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The colour of a status: grey (not checked), green, yellow, red.
pub fn status_color(s: Status) -> Color {
    match s {
        Status::Unchecked => Color::DarkGray,
        Status::Ok => Color::Green,
        Status::Warn => Color::Yellow,
        Status::Break => Color::Red,
    }
}

/// The style of a value judged `s`; neutral (bold, no colour) without a threshold.
pub fn judged(s: Option<Status>) -> Style {
    let base = Style::default().add_modifier(Modifier::BOLD);
    match s {
        Some(s) => base.fg(status_color(s)),
        None => base,
    }
}

/// The colour of a node state.
pub fn state_color(s: NodeState) -> Color {
    match s {
        NodeState::Up => Color::Green,
        NodeState::Paused => Color::Yellow,
        NodeState::Down => Color::Red,
        NodeState::Isolated => Color::Magenta,
        NodeState::Removed => Color::DarkGray,
    }
}

/// The colour of an event kind.
pub fn event_color(k: Kind) -> Color {
    match k {
        Kind::Leader => Color::Cyan,
        Kind::Fault => Color::Magenta,
        Kind::Heal => Color::Green,
        Kind::Errors => Color::Red,
        Kind::Phase => Color::Gray,
        Kind::Check => Color::Cyan,
    }
}

/// The title style of a panel.
pub fn title() -> Style {
    Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(ms(1.234), "1.23ms");
        assert_eq!(ms(12.34), "12.3ms");
        assert_eq!(ms(800.0), "800ms");
        assert_eq!(ms(1500.0), "1.50s");
        assert_eq!(metric_value(Metric::SuccessRate, 99.5), "99.5%");
        assert_eq!(metric_value(Metric::Tps, 299.6), "300");
        assert_eq!(maybe(Metric::P99, None), "-");
        assert_eq!(mib(20 * 1024 * 1024), "20.0M");
        assert_eq!(secs(15.4), "15s");
        assert_eq!(secs(125.0), "2m05s");
    }
}
