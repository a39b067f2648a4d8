//! `capacity.svg`: the latency–throughput curve (p50 and p99 against the target rate), the
//! SLO's latency bound, the knee with its bracket, the closed-loop saturation, and beside each
//! failed step why it failed.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::StepResult;

/// The lines drawn across the curve.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks {
    /// The SLO's p99 bound, ms.
    pub slo_ms: Option<f64>,
    /// The answer's rate.
    pub knee: Option<f64>,
    /// The rate the knee lies below (the first trusted failure or the headroom limit).
    pub upper: Option<f64>,
    /// The closed-loop saturation (`--verify`).
    pub saturation: Option<f64>,
}

/// The curve's chart: target rate against latency on a log scale.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// Draws the curve into `path`. Steps are placed at their target rate: an overloaded step
/// completes only the service rate, and at its achieved rate it would sit on top of the knee.
pub fn draw(path: &Path, title: &str, steps: &[StepResult], marks: &Marks) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let mut pts: Vec<&StepResult> = steps.iter().collect();
    pts.sort_by(|a, b| a.target_rate.total_cmp(&b.target_rate));
    let x_max = pts
        .iter()
        .map(|s| s.target_rate)
        .chain(marks.saturation)
        .fold(1.0, f64::max)
        * 1.1;
    let y_max = pts
        .iter()
        .map(|s| s.p99_ms)
        .chain(marks.slo_ms)
        .fold(1.0, f64::max)
        .max(1.0)
        * 1.3;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (0.1..y_max).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("target rate (ops/s)")
        .y_desc("latency (ms, log)")
        .draw()
        .map_err(|e| err(&e))?;
    curves(&mut chart, &pts).map_err(|e| err(&e))?;
    lines(&mut chart, marks, x_max, y_max).map_err(|e| err(&e))?;
    reasons(&mut chart, steps, y_max).map_err(|e| err(&e))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// p50 and p99 against the target rate, as lines through dots.
fn curves(chart: &mut Chart<'_, '_>, pts: &[&StepResult]) -> DrawResult {
    let series = [
        (
            "p50",
            BLUE,
            pts.iter()
                .map(|s| (s.target_rate, s.p50_ms.max(0.1)))
                .collect::<Vec<_>>(),
        ),
        (
            "p99",
            RED,
            pts.iter()
                .map(|s| (s.target_rate, s.p99_ms.max(0.1)))
                .collect(),
        ),
    ];
    for (name, color, data) in series {
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(data.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
    }
    Ok(())
}

/// The SLO's bound across, and the knee, its upper bound and the saturation upright.
fn lines(chart: &mut Chart<'_, '_>, marks: &Marks, x_max: f64, y_max: f64) -> DrawResult {
    if let Some(slo) = marks.slo_ms {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, slo), (x_max, slo)],
                BLACK.mix(0.6).stroke_width(1),
            ))?
            .label(format!("SLO {slo} ms"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
    }
    let verticals = [
        (marks.knee, GREEN.to_rgba(), "knee", 2),
        (marks.upper, RED.mix(0.5), "knee below", 1),
        (
            marks.saturation,
            MAGENTA.to_rgba(),
            "closed-loop saturation",
            1,
        ),
    ];
    for (at, color, name, width) in verticals {
        let Some(k) = at else { continue };
        let style = color.stroke_width(width);
        chart
            .draw_series(LineSeries::new(vec![(k, 0.1), (k, y_max)], style))?
            .label(format!("{name} {k:.0} ops/s"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    Ok(())
}

/// Why each failed step failed, beside its p99 point; a re-run's note sits above the first
/// one's (the latency axis is logarithmic, so "above" is a factor).
fn reasons(chart: &mut Chart<'_, '_>, steps: &[StepResult], y_max: f64) -> DrawResult {
    let mut seen: Vec<f64> = Vec::new();
    for s in steps.iter().filter(|s| s.verdict != "pass") {
        let above = seen.iter().filter(|r| **r == s.target_rate).count();
        seen.push(s.target_rate);
        let y = (s.p99_ms.max(0.1) * 1.4f64.powi(above as i32)).min(y_max);
        let why: Vec<String> = s.reasons.iter().map(|r| r.label()).collect();
        let text = format!(
            "{:.0}{}: {}",
            s.target_rate,
            if s.rerun { " (re-run)" } else { "" },
            if why.is_empty() {
                "failed".into()
            } else {
                why.join(", ")
            }
        );
        chart.draw_series(std::iter::once(Text::new(
            text,
            (s.target_rate, y),
            ("sans-serif", 12)
                .into_font()
                .color(&RED)
                .pos(Pos::new(HPos::Right, VPos::Bottom)),
        )))?;
    }
    Ok(())
}
