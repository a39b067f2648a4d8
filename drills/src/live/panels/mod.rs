//! The screen: [`draw`] lays the panels out and calls one small render function per panel.
//!
//! ```text
//!  header: scenario │ elapsed / total │ phase │ worst 1 s verdict │ ? help
//!  headline: TPS p50 p99 p999 err (late)
//!  ┌ TPS ───────────────┐┌ p99 (warn, break) ─┐
//!  │                    ││                    │
//!  └────────────────────┘└────────────────────┘
//!  ─ thresholds ─────────  ─ faults ───────────
//!  ─ cluster ─────────────────────────────────
//!  ─ events ──────────────────────────────────
//! ```
//!
//! Below [`MIN_WIDTH`] × [`MIN_HEIGHT`] the panels cannot show their columns, so the screen
//! says so instead of drawing a garbled layout.

pub mod charts;
pub mod cluster;
pub mod events;
pub mod faults;
pub mod fmt;
pub mod header;
pub mod headline;
pub mod help;
pub mod thresholds;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::state::ViewState;

/// The smallest terminal the view draws on.
pub const MIN_WIDTH: u16 = 80;
/// The smallest terminal the view draws on.
pub const MIN_HEIGHT: u16 = 24;

/// Rows of each band of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bands {
    charts: u16,
    middle: u16,
    cluster: u16,
    events: u16,
}

/// Splits `height` rows: fixed bands for the tables, the rest shared by charts and events.
fn bands(height: u16, s: &ViewState) -> Bands {
    let table_rows = s.board.rows().len().max(s.timeline.planned().len().min(6));
    let middle = 2 + table_rows.clamp(3, 8) as u16;
    let cluster = 2 + s.cluster.nodes.len().clamp(3, 9) as u16;
    let rest = height.saturating_sub(2 + middle + cluster);
    let events = (rest * 2 / 5).max(4);
    Bands {
        charts: rest.saturating_sub(events),
        middle,
        cluster,
        events,
    }
}

/// Draws the whole screen for `s`.
pub fn draw(f: &mut Frame, s: &ViewState) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(f, area);
        return;
    }
    let b = bands(area.height, s);
    let [
        head,
        headline_area,
        charts_area,
        middle,
        cluster_area,
        events_area,
    ] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(b.charts),
        Constraint::Length(b.middle),
        Constraint::Length(b.cluster),
        Constraint::Fill(1),
    ])
    .areas(area);
    let table_width = (area.width * 2 / 5).max(46);
    let [thresholds_area, faults_area] =
        Layout::horizontal([Constraint::Length(table_width), Constraint::Fill(1)])
            .spacing(1)
            .areas(middle);
    header::render(f, head, s);
    headline::render(f, headline_area, s);
    charts::render(f, charts_area, s);
    thresholds::render(f, thresholds_area, s);
    faults::render(f, faults_area, s);
    cluster::render(f, cluster_area, s);
    events::render(f, events_area, s);
    if s.help {
        help::render(f, area);
    }
}

/// The message shown on a terminal below the minimum size.
fn too_small(f: &mut Frame, area: Rect) {
    let text = vec![
        Line::styled(
            format!(
                "terminal too small: {}×{}, the live view needs at least {MIN_WIDTH}×{MIN_HEIGHT}",
                area.width, area.height
            ),
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        Line::raw("enlarge the window, or press q to stop the drill"),
    ];
    let [middle] = Layout::vertical([Constraint::Length(3)])
        .flex(ratatui::layout::Flex::Center)
        .areas(area);
    f.render_widget(
        Paragraph::new(text).centered().wrap(Wrap { trim: true }),
        middle,
    );
}

/// Helpers for render tests on ratatui's `TestBackend`.
#[cfg(test)]
pub(crate) mod testing {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    /// Draws with `render` on a `width` × `height` test terminal and returns the buffer.
    pub fn draw(width: u16, height: u16, render: impl FnOnce(&mut ratatui::Frame)) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        t.draw(render).expect("draws");
        t.backend().buffer().clone()
    }

    /// The text of row `y`.
    pub fn row_text(buf: &Buffer, y: u16) -> String {
        (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
    }

    /// All rows, joined by newlines.
    pub fn screen_text(buf: &Buffer) -> String {
        (0..buf.area.height)
            .map(|y| row_text(buf, y))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The cell where `needle` first starts (every symbol used is one column wide).
    pub fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
        (0..buf.area.height).find_map(|y| {
            let row = row_text(buf, y);
            row.find(needle)
                .map(|i| (row[..i].chars().count() as u16, y))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{draw as draw_on, screen_text};
    use super::*;
    use crate::live::fixture;

    fn assert_every_panel(text: &str) {
        for needle in [
            "leader-kill",
            "TPS 300",
            "p99 12.0ms",
            "TPS · last 60 s",
            "p99 · last 60 s",
            "thresholds",
            "success",
            "✗",
            "⚠",
            "faults",
            "✓ 15s kill leader [1]",
            "cluster · leader 2",
            "follower",
            "events",
            "healed kill leader",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in\n{text}");
        }
    }

    #[test]
    fn every_panel_at_80x24() {
        let s = fixture::state();
        let buf = draw_on(80, 24, |f| draw(f, &s));
        let text = screen_text(&buf);
        assert_every_panel(&text);
        for id in 1..=3 {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{id}  "))),
                "node {id} row:\n{text}"
            );
        }
    }

    #[test]
    fn every_panel_at_200x50() {
        let s = fixture::state();
        let buf = draw_on(200, 50, |f| draw(f, &s));
        let text = screen_text(&buf);
        assert_every_panel(&text);
        assert!(text.contains("→ leader 2 in 1.4s"), "{text}");
        assert!(text.contains("phase: load"), "more events fit: {text}");
    }

    #[test]
    fn too_small_says_so() {
        let s = fixture::state();
        let buf = draw_on(60, 20, |f| draw(f, &s));
        let text = screen_text(&buf);
        assert!(text.contains("terminal too small: 60×20"), "{text}");
        assert!(text.contains("80×24"), "{text}");
        assert!(!text.contains("thresholds"), "{text}");
    }

    #[test]
    fn help_overlay() {
        let mut s = fixture::state();
        s.help = true;
        let buf = draw_on(80, 24, |f| draw(f, &s));
        let text = screen_text(&buf);
        assert!(text.contains("stop the drill"), "{text}");
        assert!(text.contains("last 60 s / whole run"), "{text}");
    }

    #[test]
    fn bands_fill_the_screen() {
        let s = fixture::state();
        let b = bands(24, &s);
        assert_eq!(b.charts, 8);
        assert_eq!(2 + b.charts + b.middle + b.cluster + b.events, 24);
        let b = bands(50, &s);
        assert!(b.charts > 15 && b.events > 10, "{b:?}");
    }
}
