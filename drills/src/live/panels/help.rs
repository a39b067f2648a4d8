//! The help overlay (`?`): the keys, and what the live figures mean.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::fmt;

const TEXT: &[&str] = &[
    "q, Ctrl-C   stop the drill: the load stops, faults are healed,",
    "            results are written (verdict: aborted); q again leaves now",
    "t           charts: last 60 s / whole run",
    "?, Esc      show / hide this help",
    "",
    "Numbers are per second. 'worst 1s' is the worst second after warmup;",
    "its status (✓ ⚠ ✗) is stricter than the final verdict, which judges",
    "the whole run at once. Shaded on the charts: fault windows.",
    "Phase 'recovering': within 5 s after a fault was healed.",
];

/// Draws the help over the middle of `area`.
pub fn render(f: &mut Frame, area: Rect) {
    let width = (TEXT.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 4) as u16;
    let height = TEXT.len() as u16 + 2;
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    let lines: Vec<Line> = TEXT.iter().map(|l| Line::raw(format!(" {l}"))).collect();
    let block = Block::bordered().title(Line::styled(" help ", fmt::title()));
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        popup,
    );
}
