//! `capacity.svg`: the latency–throughput curve (p50 and p99 against the achieved rate), the
//! SLO's latency bound, and the knee.

use std::path::Path;

use plotters::prelude::*;

use super::StepResult;

/// Draws the curve into `path`. `slo_ms` is the SLO's p99 bound, `knee` the answer's rate.
pub fn draw(
    path: &Path,
    title: &str,
    steps: &[StepResult],
    slo_ms: Option<f64>,
    knee: Option<f64>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let mut pts: Vec<&StepResult> = steps.iter().collect();
    pts.sort_by(|a, b| a.achieved_rate.total_cmp(&b.achieved_rate));
    let x_max = pts.iter().map(|s| s.achieved_rate).fold(1.0, f64::max) * 1.1;
    let y_max = pts
        .iter()
        .map(|s| s.p99_ms)
        .chain(slo_ms)
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
        .x_desc("achieved rate (ops/s)")
        .y_desc("latency (ms, log)")
        .draw()
        .map_err(|e| err(&e))?;
    let series = [
        (
            "p50",
            BLUE,
            pts.iter()
                .map(|s| (s.achieved_rate, s.p50_ms.max(0.1)))
                .collect::<Vec<_>>(),
        ),
        (
            "p99",
            RED,
            pts.iter()
                .map(|s| (s.achieved_rate, s.p99_ms.max(0.1)))
                .collect(),
        ),
    ];
    for (name, color, data) in series {
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(data.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    if let Some(slo) = slo_ms {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, slo), (x_max, slo)],
                BLACK.mix(0.6).stroke_width(1),
            ))
            .map_err(|e| err(&e))?
            .label(format!("SLO {slo} ms"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.6)));
    }
    if let Some(k) = knee {
        chart
            .draw_series(LineSeries::new(
                vec![(k, 0.1), (k, y_max)],
                GREEN.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(format!("knee {k:.0} ops/s"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
