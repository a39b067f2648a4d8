//! The two charts: TPS, and p99 with its warn and break levels as horizontal lines. Fault
//! windows are shaded and labelled with their action. The window is the last 60 s, or the
//! whole run after `t`.
//!
//! The plot is a braille [`Canvas`] in an area this module lays out itself (a y-label column
//! and an x-label row around it), rather than ratatui's `Chart`: `Chart` places its own
//! plot area, and the fault windows need to know exactly which columns a time maps to.

use loadgen::thresholds::{Levels, Metric};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::canvas::{Canvas, Context, Line as CanvasLine};
use ratatui::widgets::{Block, Paragraph};

use super::fmt;
use crate::live::series::{Point, Series, WINDOW_S, thin};
use crate::live::state::ViewState;

/// Background of a fault window that is over.
pub const FAULT_BG: Color = Color::Indexed(236);
/// Background of a fault window that is still open: it stands out from the healed ones, so a
/// glance says whether the cluster is under a fault now.
pub const FAULT_ACTIVE_BG: Color = Color::Indexed(53);
/// Width of the y-label column.
const Y_LABELS: u16 = 7;

/// Which figure a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    Tps,
    P99,
}

/// Renders both charts side by side into `area`.
pub fn render(f: &mut Frame, area: Rect, s: &ViewState) {
    let [left, right] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
    chart(f, left, s, Figure::Tps);
    chart(f, right, s, Figure::P99);
}

/// The time range shown: the last 60 s (or the first 60 s), or the whole run.
pub fn x_range(s: &ViewState) -> (f64, f64) {
    if s.whole_run {
        (0.0, s.total_s.max(s.now_s).max(1.0))
    } else {
        let end = s.now_s.max(WINDOW_S);
        (end - WINDOW_S, end)
    }
}

/// A round upper bound for the y axis.
fn nice_max(v: f64) -> f64 {
    let v = v.max(1.0) * 1.15;
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

fn chart(f: &mut Frame, area: Rect, s: &ViewState, fig: Figure) {
    let (series, levels, color): (&Series, Option<Levels>, Color) = match fig {
        Figure::Tps => (&s.tps, None, Color::Cyan),
        Figure::P99 => (
            &s.p99,
            s.board.row(Metric::P99).map(|r| r.levels),
            Color::LightBlue,
        ),
    };
    let block = Block::bordered().title(Span::styled(title(fig, s.whole_run), fmt::title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.width <= Y_LABELS + 4 || inner.height < 3 {
        return;
    }
    let [body, x_labels] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    let [y_labels, plot] =
        Layout::horizontal([Constraint::Length(Y_LABELS), Constraint::Fill(1)]).areas(body);

    let (x0, x1) = x_range(s);
    let points: Vec<Point> = series
        .points(s.whole_run)
        .into_iter()
        .filter(|(t, _)| *t >= x0 && *t <= x1)
        .collect();
    let points = thin(&points, usize::from(plot.width) * 2);
    let y_max = nice_max(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let lines: Vec<(f64, Color)> = levels
        .into_iter()
        .flat_map(|l| [(l.warn, Color::Yellow), (l.brk, Color::Red)])
        .filter_map(|(v, c)| v.filter(|v| *v <= y_max).map(|v| (v, c)))
        .collect();
    f.render_widget(curve(&points, &lines, color, (x0, x1), y_max), plot);
    shade_faults(f, plot, s, (x0, x1));
    if let Some(l) = levels {
        label_levels(f, plot, l, y_max);
    }

    let top = match fig {
        Figure::Tps => format!("{y_max:.0}"),
        Figure::P99 => fmt::ms(y_max),
    };
    let dim = Style::default().fg(Color::DarkGray);
    let y_text = format!(
        "{:>w$}\n{}{:>w$}",
        top,
        "\n".repeat(usize::from(body.height.saturating_sub(2))),
        "0",
        w = usize::from(Y_LABELS - 1)
    );
    f.render_widget(Paragraph::new(y_text).style(dim), y_labels);
    let left = format!("{}{}", " ".repeat(usize::from(Y_LABELS)), fmt::secs(x0));
    let right = fmt::secs(x1);
    let gap = usize::from(inner.width).saturating_sub(left.chars().count() + right.len());
    let x_text = format!("{left}{}{right}", " ".repeat(gap));
    f.render_widget(Paragraph::new(x_text).style(dim), x_labels);
}

/// A chart's title: its figure and the time it spans.
fn title(fig: Figure, whole_run: bool) -> String {
    let span = if whole_run { "whole run" } else { "last 60 s" };
    match fig {
        Figure::Tps => format!(" TPS · {span} "),
        Figure::P99 => format!(" p99 · {span} "),
    }
}

/// The curve through `points` over the level lines, on a braille canvas.
fn curve<'a>(
    points: &'a [Point],
    lines: &'a [(f64, Color)],
    color: Color,
    (x0, x1): (f64, f64),
    y_max: f64,
) -> Canvas<'a, impl Fn(&mut Context<'_>) + 'a> {
    Canvas::default()
        .marker(Marker::Braille)
        .x_bounds([x0, x1])
        .y_bounds([0.0, y_max])
        .paint(move |ctx| {
            for (level, c) in lines {
                ctx.draw(&CanvasLine::new(x0, *level, x1, *level, *c));
            }
            ctx.layer();
            for w in points.windows(2) {
                ctx.draw(&CanvasLine::new(w[0].0, w[0].1, w[1].0, w[1].1, color));
            }
            if let [only] = points {
                ctx.draw(&CanvasLine::new(only.0, only.1, only.0, only.1, color));
            }
        })
}

/// Names the warn and break lines at their right end; a level above the chart is named in
/// the top row with an arrow, so the levels are always on screen.
fn label_levels(f: &mut Frame, plot: Rect, l: Levels, y_max: f64) {
    let buf = f.buffer_mut();
    let mut used: Vec<u16> = Vec::new();
    let dots = f64::from(plot.height * 4 - 1);
    for (name, level, color) in [
        ("warn", l.warn, Color::Yellow),
        ("break", l.brk, Color::Red),
    ] {
        let Some(v) = level else { continue };
        let (text, mut row) = if v <= y_max {
            let dot = ((y_max - v) / y_max * dots).round() as u16;
            (format!("{name} {}", fmt::ms(v)), plot.y + dot / 4)
        } else {
            (format!("{name} {} ↑", fmt::ms(v)), plot.y)
        };
        while used.contains(&row) && row + 1 < plot.bottom() {
            row += 1;
        }
        used.push(row);
        let width = text.chars().count() as u16;
        if width < plot.width {
            buf.set_string(plot.right() - width, row, text, Style::default().fg(color));
        }
    }
}

/// The column of time `t` in `plot`, if it lies in the range.
fn column(plot: Rect, (x0, x1): (f64, f64), t: f64) -> Option<u16> {
    if t < x0 || t > x1 || plot.width == 0 {
        return None;
    }
    let frac = (t - x0) / (x1 - x0).max(f64::MIN_POSITIVE);
    Some(plot.x + (frac * f64::from(plot.width - 1)).round() as u16)
}

/// Shades the columns of each fault window behind the lines (only the background changes, so
/// the braille dots stay) and writes its action and target at the top.
fn shade_faults(f: &mut Frame, plot: Rect, s: &ViewState, range: (f64, f64)) {
    let buf = f.buffer_mut();
    for w in s.timeline.windows().iter().filter(|w| w.error.is_none()) {
        let bg = if w.active { FAULT_ACTIVE_BG } else { FAULT_BG };
        let (from, to) = (w.fired_s.max(range.0), w.end(s.now_s).min(range.1));
        if from > to {
            continue;
        }
        let (Some(c0), Some(c1)) = (column(plot, range, from), column(plot, range, to)) else {
            continue;
        };
        for x in c0..=c1 {
            for y in plot.y..plot.bottom() {
                buf[(x, y)].set_bg(bg);
            }
        }
        let room = usize::from(plot.right() - c0);
        let label = format!("{} {}", w.action, w.target);
        let text: String = label.chars().take(room).collect();
        buf.set_string(c0, plot.y, text, Style::default().fg(Color::Magenta).bg(bg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture;
    use crate::live::panels::testing::{draw, find, screen_text};

    #[test]
    fn titles_levels_and_axis_labels() {
        let s = fixture::state();
        let buf = draw(80, 9, |f| render(f, f.area(), &s));
        let text = screen_text(&buf);
        assert!(text.contains("TPS · last 60 s"), "{text}");
        assert!(text.contains("p99 · last 60 s"), "{text}");
        assert!(text.contains("warn 800ms"), "{text}");
        assert!(text.contains("break 1.50s ↑"), "off scale: {text}");
        assert!(text.contains("400"), "TPS axis to 400: {text}");
        assert!(
            text.contains("1.20s"),
            "p99 axis to 1.2 s (900 ms seen): {text}"
        );
        assert!(text.contains("0s") && text.contains("1m00s"), "{text}");
    }

    #[test]
    fn the_warn_level_is_a_yellow_line_and_the_fault_window_is_shaded() {
        let s = fixture::state();
        let buf = draw(200, 20, |f| render(f, f.area(), &s));
        // The p99 chart spans 900 ms, so the 800 ms warn line is on it; 1500 ms is off scale.
        let right = Rect::new(100, 0, 100, 20);
        let yellow = (right.y..right.bottom())
            .flat_map(|y| (right.x..right.right()).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(x, y)].fg == Color::Yellow)
            .count();
        assert!(yellow > 50, "a yellow warn line: {yellow} cells");
        let red = (0..20)
            .flat_map(|y| (100..200).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(x, y)].fg == Color::Red)
            .count();
        assert_eq!(
            red,
            "break 1.50s ↑".chars().count(),
            "no break line, only its label"
        );
        // The kill window (15–25 s of 0–60 s) is shaded and labelled on both charts.
        let (x, y) = find(&buf, "kill leader").expect("labelled with action and target");
        assert_eq!(buf[(x, y)].bg, FAULT_BG, "healed: the quiet shade");
        let shaded = (0..100).filter(|x| buf[(*x, 5)].bg == FAULT_BG).count();
        assert!(
            (14..=20).contains(&shaded),
            "about a sixth of 90 columns: {shaded}"
        );
    }

    #[test]
    fn an_open_fault_window_is_shaded_to_now_in_its_own_colour() {
        let mut s = fixture::state();
        // A second kill at 32 s, not healed yet at 40 s.
        let mut records = vec![fixture::fault(15.0, false), fixture::fault(32.0, true)];
        records[0].healed_at_s = Some(25.0);
        s.observe_faults(&records);
        let buf = draw(200, 20, |f| render(f, f.area(), &s));
        let row = 5;
        let active: Vec<u16> = (0..100)
            .filter(|x| buf[(*x, row)].bg == FAULT_ACTIVE_BG)
            .collect();
        let healed = (0..100).filter(|x| buf[(*x, row)].bg == FAULT_BG).count();
        assert!(healed >= 14, "the healed window keeps its shade: {healed}");
        // 32 s to now (40 s) of a 60 s window over about 90 columns: some 12 columns.
        assert!(
            (9..=16).contains(&active.len()),
            "the open window runs to now: {active:?}"
        );
        let first = *active.first().unwrap();
        assert!(buf[(first, 1)].symbol() == "k", "labelled where it starts");
    }

    #[test]
    fn t_shows_the_whole_run() {
        let mut s = fixture::state();
        for t in 41..=130 {
            s.observe_snapshot(&fixture::snapshot(f64::from(t), 300.0, 12.0, 0));
        }
        assert_eq!(x_range(&s), (70.0, 130.0));
        let buf = draw(80, 9, |f| render(f, f.area(), &s));
        assert!(
            !screen_text(&buf).contains("kill"),
            "the kill is older than 60 s"
        );
        s.whole_run = true;
        assert_eq!(x_range(&s), (0.0, 130.0));
        let buf = draw(80, 9, |f| render(f, f.area(), &s));
        let text = screen_text(&buf);
        assert!(
            text.contains("whole run") && text.contains("2m10s"),
            "{text}"
        );
        assert!(text.contains("kill"), "{text}");
    }

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(300.0), 400.0);
        assert_eq!(nice_max(900.0), 1200.0);
        assert_eq!(nice_max(12.0), 15.0);
        assert_eq!(nice_max(0.0), 1.2);
    }
}
