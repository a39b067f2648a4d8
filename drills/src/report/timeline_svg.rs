//! `timeline.svg`: the run as Jepsen draws it. Throughput on top (ok and errors stacked, one
//! bar a second), latency p50, p99 and p99.9 below on a log scale, every fault's window shaded
//! and labelled across both, leader changes as vertical marks, and the warn and break levels
//! as horizontal lines.

use loadgen::output::TimelineRow;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;

/// Fill of a fault window.
pub const BAND: RGBColor = RGBColor(255, 140, 0);
/// Fill of a capacity step that met its SLO.
pub const BAND_PASSED: RGBColor = RGBColor(40, 160, 70);
/// Fill of a capacity step that failed its SLO.
pub const BAND_FAILED: RGBColor = RGBColor(220, 40, 40);
/// Opacity of the shading: light enough that the data reads through it.
pub const BAND_ALPHA: f64 = 0.18;
/// Colour of the leader-change marks.
pub const LEADER: RGBColor = RGBColor(128, 0, 160);
/// Bars of ok operations.
const OK: RGBColor = RGBColor(60, 160, 80);
/// Bars of errors.
const ERR: RGBColor = RGBColor(210, 50, 50);

/// A shaded window of the time axis: a fault, or a capacity step.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Start, seconds.
    pub from_s: f64,
    /// End, seconds.
    pub to_s: f64,
    /// What the band says: `kill leader [2]`.
    pub label: String,
    /// What it is, which sets its colour.
    pub kind: BandKind,
}

/// What a band stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandKind {
    /// A fault's window.
    Fault,
    /// A capacity step that met its SLO.
    Passed,
    /// A capacity step that did not.
    Failed,
}

/// A horizontal level line: a threshold, or an SLO bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// `p99 warn 800 ms`.
    pub label: String,
    /// In the panel's unit.
    pub value: f64,
    /// A break level (red), else a warn level (amber).
    pub brk: bool,
}

/// Everything the timeline shows.
#[derive(Debug, Clone, Default)]
pub struct TimelinePlot {
    /// The caption.
    pub title: String,
    /// One row a second.
    pub rows: Vec<TimelineRow>,
    /// Shaded windows.
    pub bands: Vec<Band>,
    /// Levels on the latency panel, ms.
    pub latency_levels: Vec<Level>,
    /// Levels on the throughput panel, ops/s.
    pub tps_levels: Vec<Level>,
    /// Leader changes: (t, new leader or none).
    pub leaders: Vec<(f64, Option<u64>)>,
}

const WIDTH: u32 = 1000;
/// Rows further apart than this were not measured in between (capacity steps).
const GAP_S: f64 = 1.5;
const HEIGHT: u32 = 640;

/// Draws the timeline and returns the SVG text.
pub fn draw(p: &TimelinePlot) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root
            .titled(&p.title, ("sans-serif", 20))
            .map_err(plot_err)?;
        let (top, bottom) = root.split_vertically(HEIGHT * 2 / 5);
        let x_max = p
            .rows
            .iter()
            .map(|r| r.t_s)
            .chain(p.bands.iter().map(|b| b.to_s))
            .fold(1.0, f64::max);
        throughput(&top, p, x_max)?;
        latency(&bottom, p, x_max)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

pub(crate) fn plot_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// A panel of a picture.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The legend box, top right, as every chart of the report has it.
pub(crate) fn legend<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_err)
}

/// Draws a line broken into `segments` (empty ones are left out), named once in the legend.
pub(crate) fn broken_line<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, '_, Y>,
    segments: Vec<Vec<(f64, f64)>>,
    color: RGBColor,
    name: &str,
) -> Result<(), ReportError> {
    let mut first = true;
    for seg in segments.into_iter().filter(|s| !s.is_empty()) {
        let drawn = chart
            .draw_series(LineSeries::new(seg, color.stroke_width(2)))
            .map_err(plot_err)?;
        if std::mem::take(&mut first) {
            drawn.label(name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        }
    }
    Ok(())
}

/// Shades every band over the whole height of `chart`; with `labels`, names each at the top
/// (staggered over three rows, so neighbouring bands do not write over each other).
pub(crate) fn shade<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, '_, Y>,
    bands: &[Band],
    (y0, y1): (f64, f64),
    labels: bool,
) -> Result<(), ReportError> {
    for (i, b) in bands.iter().enumerate() {
        let color = match b.kind {
            BandKind::Fault => BAND,
            BandKind::Passed => BAND_PASSED,
            BandKind::Failed => BAND_FAILED,
        };
        // An instant fault (a restart) still gets a visible sliver.
        let to = b.to_s.max(b.from_s + 0.25);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(b.from_s, y0), (to, y1)],
                color.mix(BAND_ALPHA).filled(),
            )))
            .map_err(plot_err)?;
        if labels {
            // Pixel space, so the rows are whole text lines apart whatever the y scale.
            let row = (i % 3) as i32;
            let style = ("sans-serif", 13)
                .into_font()
                .color(&color.mix(0.95))
                .pos(Pos::new(HPos::Left, VPos::Top));
            let (px, py) = chart.backend_coord(&(b.from_s, y1));
            let area = chart.plotting_area().strip_coord_spec();
            let (ox, oy) = area.get_base_pixel();
            area.draw(&Text::new(
                b.label.clone(),
                (px - ox + 3, py - oy + 3 + row * 15),
                style,
            ))
            .map_err(plot_err)?;
        }
    }
    Ok(())
}

/// Vertical marks at leader changes. Changes seen in the same second share one label
/// (`leader: none → 3`), and labels of nearby seconds step up a line so none overwrites another.
fn leader_marks<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, '_, Y>,
    leaders: &[(f64, Option<u64>)],
    (y0, y1): (f64, f64),
    labels: bool,
) -> Result<(), ReportError> {
    let mut groups: Vec<(f64, Vec<String>)> = Vec::new();
    for (t, l) in leaders {
        let name = l.map_or("none".to_string(), |l| l.to_string());
        match groups.last_mut() {
            Some((t0, names)) if *t0 == *t => names.push(name),
            _ => groups.push((*t, vec![name])),
        }
    }
    let mut row = 0;
    let mut prev_t = f64::NEG_INFINITY;
    for (t, names) in groups {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(t, y0), (t, y1)],
                4,
                3,
                LEADER.stroke_width(1),
            ))
            .map_err(plot_err)?;
        if !labels {
            continue;
        }
        row = if t - prev_t < 1.5 { (row + 1) % 4 } else { 0 };
        prev_t = t;
        let style = ("sans-serif", 11)
            .into_font()
            .color(&LEADER)
            .pos(Pos::new(HPos::Left, VPos::Bottom));
        let (px, py) = chart.backend_coord(&(t, y0));
        let area = chart.plotting_area().strip_coord_spec();
        let (ox, oy) = area.get_base_pixel();
        area.draw(&Text::new(
            format!("leader: {}", names.join(" → ")),
            (px - ox + 3, py - oy - 3 - row * 13),
            style,
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

/// Horizontal level lines, labelled just above their left end (the legend sits on the right).
fn level_lines<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, '_, Y>,
    levels: &[Level],
    x_max: f64,
) -> Result<(), ReportError> {
    for l in levels {
        let color = if l.brk { RED } else { RGBColor(230, 160, 0) };
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, l.value), (x_max, l.value)],
                color.stroke_width(1),
            ))
            .map_err(plot_err)?;
        let style = ("sans-serif", 11)
            .into_font()
            .color(&color)
            .pos(Pos::new(HPos::Left, VPos::Bottom));
        let (px, py) = chart.backend_coord(&(0.0, l.value));
        let area = chart.plotting_area().strip_coord_spec();
        let (ox, oy) = area.get_base_pixel();
        area.draw(&Text::new(
            l.label.clone(),
            (px - ox + 4, py - oy - 2),
            style,
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

fn throughput(area: &Area<'_>, p: &TimelinePlot, x_max: f64) -> Result<(), ReportError> {
    let y_max = p
        .rows
        .iter()
        .map(|r| r.tps)
        .chain(p.tps_levels.iter().map(|l| l.value))
        .fold(1.0, f64::max)
        * 1.25;
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .y_desc("ops/s")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    shade(&mut chart, &p.bands, (0.0, y_max), true)?;
    let mut prev = 0.0_f64;
    let mut ok_bars = Vec::new();
    let mut err_bars = Vec::new();
    for r in &p.rows {
        // A row covers the second before it (less, for a run's last, short interval); a gap
        // between capacity steps stays a gap.
        let (t0, t1) = (prev.max(r.t_s - 1.0), r.t_s);
        prev = r.t_s;
        let ops = r.ok + r.errors;
        if ops == 0 || t1 <= t0 {
            continue;
        }
        // A row's tps is its operations over its interval; split it by the ok share.
        let ok = r.tps * r.ok as f64 / ops as f64;
        let pad = (t1 - t0) * 0.08;
        ok_bars.push(Rectangle::new(
            [(t0 + pad, 0.0), (t1 - pad, ok)],
            OK.filled(),
        ));
        if r.errors > 0 {
            err_bars.push(Rectangle::new(
                [(t0 + pad, ok), (t1 - pad, r.tps)],
                ERR.filled(),
            ));
        }
    }
    chart
        .draw_series(ok_bars)
        .map_err(plot_err)?
        .label("ok/s")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], OK.filled()));
    chart
        .draw_series(err_bars)
        .map_err(plot_err)?
        .label("errors/s")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], ERR.filled()));
    leader_marks(&mut chart, &p.leaders, (0.0, y_max), false)?;
    level_lines(&mut chart, &p.tps_levels, x_max)?;
    legend(&mut chart)
}

fn latency(area: &Area<'_>, p: &TimelinePlot, x_max: f64) -> Result<(), ReportError> {
    let values = p
        .rows
        .iter()
        .flat_map(|r| [r.p50_ms, r.p99_ms, r.p999_ms])
        .filter(|v| *v > 0.0);
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values
        .chain(p.latency_levels.iter().map(|l| l.value))
        .fold(1.0, f64::max);
    // Whole decades, so the log axis labels read 0.1, 1, 10, ...
    let y_min = if lo.is_finite() {
        10f64.powf((lo / 2.0).log10().floor()).max(0.001)
    } else {
        0.1
    };
    let y_max = 10f64.powf((hi * 2.0).log10().ceil());
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_desc("latency, ms (log)")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err)?;
    shade(&mut chart, &p.bands, (y_min, y_max), false)?;
    type Pick = fn(&TimelineRow) -> f64;
    let series: [(&str, RGBColor, Pick); 3] = [
        ("p50", RGBColor(40, 90, 200), |r| r.p50_ms),
        ("p99", RGBColor(240, 120, 0), |r| r.p99_ms),
        ("p99.9", RGBColor(200, 0, 60), |r| r.p999_ms),
    ];
    for (name, color, get) in series {
        // A second without operations has no latency, and nothing was measured between two
        // capacity steps: the line breaks there.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        let mut prev_t = f64::NEG_INFINITY;
        for r in &p.rows {
            let v = get(r);
            let gap = r.t_s - prev_t > GAP_S;
            prev_t = r.t_s;
            if (v <= 0.0 || gap) && !segments.last().expect("one").is_empty() {
                segments.push(Vec::new());
            }
            if v > 0.0 {
                segments.last_mut().expect("one").push((r.t_s, v));
            }
        }
        broken_line(&mut chart, segments, color, name)?;
    }
    leader_marks(&mut chart, &p.leaders, (y_min, y_max), true)?;
    level_lines(&mut chart, &p.latency_levels, x_max)?;
    legend(&mut chart)
}
