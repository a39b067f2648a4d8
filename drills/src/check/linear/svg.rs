//! The picture of an anomaly, `anomaly-<key>.svg`, written by hand as text.
//!
//! As in porcupine's visualizer: one lane per worker, each operation a bar from its call to
//! its return, labelled with what it did (`w 7`, `r → 7`, `r → ∅`, `cas 3→5 ✓`). Values are
//! long strings, so each gets a small number, with a legend below. Operations whose outcome is
//! unknown fade out to the right edge, dashed: they may have taken effect at any time after
//! their call, or never (a tick marks when the client gave up). The operation that cannot be
//! placed is red, with a red line at its return; operations of the longest linearizable
//! prefix carry their place in it (`#12`, where the bar is wide enough). Long idle gaps are
//! cut out of the time axis (see `axis`). Hovering a bar shows its record.

use std::collections::HashMap;
use std::fmt::Write;

use loadgen::history::HistoryRecord;
use loadgen::outcome::Outcome;
use loadgen::workload::OpKind;

use super::anomaly::{KeyAnomaly, WindowOp};
use super::axis::{Mark, TimeAxis};

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const LANE: f64 = 36.0;
const BAR: f64 = 20.0;

/// Escapes text for SVG content and attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The first `n` characters of `s`, with an ellipsis when cut.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Small numbers for the window's values, in order of first appearance.
struct Legend<'a> {
    ids: HashMap<&'a str, usize>,
    order: Vec<&'a str>,
}

impl<'a> Legend<'a> {
    /// Numbers the values of the window's records, then `state` (the register at the
    /// failure, which an initial value may have set without any operation in the window).
    fn new(window: &'a [WindowOp], state: Option<&'a str>) -> Self {
        let mut legend = Legend {
            ids: HashMap::new(),
            order: Vec::new(),
        };
        let values = window.iter().flat_map(|w| {
            let r = &w.record;
            let expect = r.expect.as_ref().and_then(|e| e.as_deref());
            [expect, r.value.as_deref(), r.returned.as_deref()]
        });
        for v in values.chain([state]).flatten() {
            if !legend.ids.contains_key(v) {
                legend.order.push(v);
                legend.ids.insert(v, legend.order.len());
            }
        }
        legend
    }

    fn name(&self, v: Option<&str>) -> String {
        match v {
            None => "∅".to_string(),
            Some(v) => self.ids.get(v).map_or("?".to_string(), |n| n.to_string()),
        }
    }
}

/// The label on a bar.
fn label(r: &HistoryRecord, legend: &Legend<'_>) -> String {
    let unknown = if r.outcome == Outcome::Unknown {
        " ?"
    } else {
        ""
    };
    match r.kind {
        OpKind::Read => format!("r → {}", legend.name(r.returned.as_deref())),
        OpKind::Update | OpKind::Insert => {
            format!("w {}{unknown}", legend.name(r.value.as_deref()))
        }
        OpKind::ReadModifyWrite => {
            let expect = r.expect.as_ref().and_then(|e| e.as_deref());
            let mark = match (r.outcome, r.applied) {
                (Outcome::Ok, Some(true)) => " ✓",
                (Outcome::Ok, _) => " ✗",
                _ => unknown,
            };
            format!(
                "cas {}→{}{mark}",
                legend.name(expect),
                legend.name(r.value.as_deref())
            )
        }
    }
}

/// What the operation that cannot be placed needed the register to hold.
fn needs(r: &HistoryRecord, legend: &Legend<'_>) -> String {
    let expect = || legend.name(r.expect.as_ref().and_then(|e| e.as_deref()));
    match (r.kind, r.applied) {
        (OpKind::Read, _) => legend.name(r.returned.as_deref()),
        (OpKind::ReadModifyWrite, Some(false)) => format!("anything but {}", expect()),
        (OpKind::ReadModifyWrite, _) => expect(),
        (OpKind::Update | OpKind::Insert, _) => "anything".to_string(),
    }
}

/// Fill and stroke of a kind of operation.
fn colours(kind: OpKind) -> (&'static str, &'static str) {
    match kind {
        OpKind::Read => ("#d6e6ff", "#3b6fb6"),
        OpKind::Update | OpKind::Insert => ("#d9f2d0", "#3c8d2f"),
        OpKind::ReadModifyWrite => ("#f6e3c3", "#a86f12"),
    }
}

fn fmt_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.3} s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

/// Splits a sentence into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Where the parts of the picture go.
struct Layout {
    /// The workers of the window, one lane each, in order.
    workers: Vec<usize>,
    axis: TimeAxis,
    /// The first call of the window: the axis counts from it.
    t_min: u64,
    /// The explanation, wrapped.
    title_lines: Vec<String>,
    /// The top of the first lane.
    top: f64,
    lanes_h: f64,
    axis_y: f64,
    height: f64,
}

impl Layout {
    fn new(a: &KeyAnomaly, legend: &Legend<'_>) -> Self {
        let mut workers: Vec<usize> = a.window.iter().map(|w| w.record.worker).collect();
        workers.sort_unstable();
        workers.dedup();
        let t_min = a
            .window
            .iter()
            .map(|w| w.record.invoke_us)
            .min()
            .unwrap_or(0);
        let intervals: Vec<(u64, u64)> = a
            .window
            .iter()
            .map(|w| (w.record.invoke_us, w.record.complete_us))
            .collect();
        // The last tenth is left for open-ended bars to run into.
        let axis = TimeAxis::new(&intervals, LEFT, (WIDTH - LEFT - RIGHT) * 0.9);
        let title_lines = wrap(&a.explanation, 150);
        let top = 46.0 + 16.0 * title_lines.len() as f64 + 64.0;
        let lanes_h = LANE * workers.len() as f64;
        let axis_y = top + lanes_h + 6.0;
        let legend_rows = legend.order.len().div_ceil(3) + 1;
        let height = axis_y + 44.0 + 16.0 * legend_rows as f64 + 12.0;
        Layout {
            workers,
            axis,
            t_min,
            title_lines,
            top,
            lanes_h,
            axis_y,
            height,
        }
    }

    fn lane_of(&self, worker: usize) -> usize {
        self.workers.iter().position(|&w| w == worker).unwrap_or(0)
    }
}

/// Renders the picture of one anomaly.
pub fn render(a: &KeyAnomaly) -> String {
    let legend = Legend::new(&a.window, a.state.as_deref());
    let l = Layout::new(a, &legend);
    let mut s = String::new();
    open(&mut s, &l);
    title(&mut s, a, &l, &legend);
    lanes(&mut s, &l);
    for (n, w) in a.window.iter().enumerate() {
        bar(&mut s, &l, &legend, n, w);
    }
    time_axis(&mut s, &l);
    values(&mut s, &l, &legend);
    s.push_str("</svg>\n");
    s
}

/// The opening tag, the fades of unknown operations, and the white page.
fn open(s: &mut String, l: &Layout) {
    let height = l.height;
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="monospace" font-size="12">"##
    );
    s.push_str("<defs>\n");
    for kind in [OpKind::Read, OpKind::Update, OpKind::ReadModifyWrite] {
        let (fill, _) = colours(kind);
        let _ = writeln!(
            s,
            r##"<linearGradient id="fade-{}"><stop offset="0" stop-color="{fill}" stop-opacity="1"/><stop offset="1" stop-color="{fill}" stop-opacity="0"/></linearGradient>"##,
            kind.as_str()
        );
    }
    s.push_str("</defs>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
}

/// Title, the sentence, and how to read the picture.
fn title(s: &mut String, a: &KeyAnomaly, l: &Layout, legend: &Legend<'_>) {
    let _ = writeln!(
        s,
        r##"<text x="12" y="22" font-size="15" font-weight="bold">key {}: not linearizable ({} ops checked, {} in the longest linearizable prefix)</text>"##,
        esc(&cut(&a.key, 60)),
        a.ops,
        a.prefix.len()
    );
    for (n, line) in l.title_lines.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="12" y="{}" fill="#b00000">{}</text>"##,
            42.0 + 16.0 * n as f64,
            esc(line)
        );
    }
    let y = 42.0 + 16.0 * l.title_lines.len() as f64;
    let needs = a
        .window
        .iter()
        .find(|w| w.stuck)
        .map(|w| needs(&w.record, legend));
    let _ = writeln!(
        s,
        r##"<text x="12" y="{y}" font-weight="bold">register after the prefix: {}{}</text>"##,
        legend.name(a.state.as_deref()),
        needs.map_or(String::new(), |n| format!(
            " · the red operation needs: {n}"
        ))
    );
    let _ = writeln!(
        s,
        r##"<text x="12" y="{}" font-size="11" fill="#555">bars: call → return · red: cannot be placed · #n: place in the longest linearizable prefix · times from {} into the run</text>"##,
        y + 16.0,
        fmt_us(l.t_min)
    );
    let _ = writeln!(
        s,
        r##"<text x="12" y="{}" font-size="11" fill="#555">faded, dashed: outcome unknown, may take effect at any time after its call or never (the tick: when the client gave up) · ✓/✗: swapped or not · ?: unknown</text>"##,
        y + 30.0
    );
}

/// One shaded lane per worker.
fn lanes(s: &mut String, l: &Layout) {
    for (i, w) in l.workers.iter().enumerate() {
        let y = l.top + LANE * i as f64;
        let shade = if i % 2 == 0 { "#f7f7f7" } else { "#ffffff" };
        let _ = writeln!(
            s,
            r##"<rect x="0" y="{y}" width="{WIDTH}" height="{LANE}" fill="{shade}"/><text x="12" y="{}" fill="#333">worker {w}</text>"##,
            y + 24.0
        );
    }
}

/// The `n`th operation's bar, its label and place, and for the one that cannot be placed the
/// line at its return.
fn bar(s: &mut String, l: &Layout, legend: &Legend<'_>, n: usize, w: &WindowOp) {
    let r = &w.record;
    let y = l.top + LANE * l.lane_of(r.worker) as f64 + 12.0;
    let x0 = l.axis.x(r.invoke_us);
    let unknown = r.outcome == Outcome::Unknown;
    let x1 = if unknown {
        WIDTH - RIGHT
    } else {
        l.axis.x(r.complete_us).max(x0 + 2.0)
    };
    let (fill, stroke) = colours(r.kind);
    let (fill, stroke, width) = if w.stuck {
        ("#ffc9c9".to_string(), "#d00000", 2.0)
    } else if unknown {
        (format!("url(#fade-{})", r.kind.as_str()), stroke, 1.0)
    } else {
        (fill.to_string(), stroke, 1.0)
    };
    let dash = if unknown {
        r##" stroke-dasharray="5 3""##
    } else {
        ""
    };
    let tip = tooltip(w);
    let _ = writeln!(
        s,
        r##"<g><title>{}</title><clipPath id="c{n}"><rect x="{x0:.1}" y="{y}" width="{:.1}" height="{BAR}"/></clipPath><rect x="{x0:.1}" y="{y}" width="{:.1}" height="{BAR}" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>"##,
        esc(&tip),
        x1 - x0,
        x1 - x0
    );
    if unknown {
        let gave_up = l.axis.x(r.complete_us);
        let _ = writeln!(
            s,
            r##"<line x1="{gave_up:.1}" y1="{}" x2="{gave_up:.1}" y2="{}" stroke="{stroke}" stroke-width="1.5"/>"##,
            y - 3.0,
            y + BAR + 3.0
        );
    }
    let weight = if w.stuck { "bold" } else { "normal" };
    let colour = if w.stuck { "#b00000" } else { "#111" };
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{}" clip-path="url(#c{n})" fill="{colour}" font-weight="{weight}">{}</text>"##,
        x0 + 4.0,
        y + 14.5,
        esc(&label(r, legend))
    );
    if let Some(p) = w.position.filter(|_| x1 - x0 >= 26.0) {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{}" font-size="9" fill="#555">#{p}</text>"##,
            x0 + 1.0,
            y - 2.0
        );
    }
    s.push_str("</g>\n");
    if w.stuck {
        let xr = l.axis.x(r.complete_us);
        let _ = writeln!(
            s,
            r##"<line x1="{xr:.1}" y1="{}" x2="{xr:.1}" y2="{}" stroke="#d00000" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" font-size="10" fill="#b00000" text-anchor="end">returned here, unplaced</text>"##,
            l.top - 4.0,
            l.top + l.lanes_h,
            xr - 3.0,
            l.top - 6.0
        );
    }
}

/// The time axis, relative to the first call, with idle gaps cut out.
fn time_axis(s: &mut String, l: &Layout) {
    let (axis_y, top, right_edge) = (l.axis_y, l.top, WIDTH - RIGHT);
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{right_edge}" y2="{axis_y}" stroke="#333"/>"##
    );
    for mark in l.axis.marks() {
        let _ = match mark {
            Mark::Tick(tx, t) => writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{axis_y}" x2="{tx:.1}" y2="{}" stroke="#333"/><text x="{tx:.1}" y="{}" font-size="10" text-anchor="middle">+{}</text>"##,
                axis_y + 5.0,
                axis_y + 17.0,
                fmt_us(t - l.t_min)
            ),
            Mark::Break(bx) => writeln!(
                s,
                r##"<rect x="{:.1}" y="{}" width="8" height="6" fill="white"/><path d="M{:.1} {} l4 -8 M{:.1} {} l4 -8" stroke="#333"/><line x1="{bx:.1}" y1="{top}" x2="{bx:.1}" y2="{axis_y}" stroke="#bbb" stroke-dasharray="2 4"/>"##,
                bx - 4.0,
                axis_y - 3.0,
                bx - 5.0,
                axis_y + 4.0,
                bx + 1.0,
                axis_y + 4.0
            ),
        };
    }
}

/// The value legend: each value's small number.
fn values(s: &mut String, l: &Layout, legend: &Legend<'_>) {
    let ly = l.axis_y + 40.0;
    let _ = writeln!(
        s,
        r##"<text x="12" y="{ly}" font-weight="bold">values</text><text x="80" y="{ly}">∅ = absent</text>"##
    );
    for (i, v) in legend.order.iter().enumerate() {
        let (col, row) = (i % 3, i / 3 + 1);
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}">{} = {}</text>"##,
            12.0 + col as f64 * 390.0,
            ly + 16.0 * row as f64,
            i + 1,
            esc(&cut(v, 40))
        );
    }
}

/// The hover text of a bar: the record, values cut short.
fn tooltip(w: &WindowOp) -> String {
    let r = &w.record;
    let mut t = format!(
        "op {} · worker {} · {} · {:?} · call {} · return {}",
        r.id,
        r.worker,
        r.kind.as_str(),
        r.outcome,
        fmt_us(r.invoke_us),
        fmt_us(r.complete_us)
    );
    if let Some(e) = &r.expect {
        let _ = write!(t, " · expect {}", cut(e.as_deref().unwrap_or("absent"), 32));
    }
    if let Some(v) = &r.value {
        let _ = write!(t, " · value {}", cut(v, 32));
    }
    if r.kind == OpKind::Read {
        let _ = write!(
            t,
            " · returned {}",
            cut(r.returned.as_deref().unwrap_or("absent"), 32)
        );
    }
    if let Some(p) = w.position {
        let _ = write!(t, " · #{p} in the prefix");
    }
    if w.stuck {
        t.push_str(" · cannot be placed");
    }
    t
}
