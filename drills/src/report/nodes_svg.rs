//! `nodes.svg`: CPU (percent of one core) and resident memory of every node over the run, one
//! line per node, with the fault windows shaded as on the timeline. A node's line breaks
//! while it has no process.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::ReportError;
use super::series::NodeSample;
use super::timeline_svg::{Area, Band, broken_line, legend, plot_err, shade};

/// Line colours of nodes 1, 2, 3, ... (repeating).
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// Draws the per-node chart and returns the SVG text.
pub fn draw(title: &str, samples: &[NodeSample], bands: &[Band]) -> Result<String, ReportError> {
    let mut by_node: BTreeMap<u64, Vec<&NodeSample>> = BTreeMap::new();
    for s in samples {
        by_node.entry(s.node).or_default().push(s);
    }
    let x_max = samples
        .iter()
        .map(|s| s.t_s)
        .chain(bands.iter().map(|b| b.to_s))
        .fold(1.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, ("sans-serif", 18)).map_err(plot_err)?;
        let (top, bottom) = root.split_vertically(220);
        let cpu = |s: &NodeSample| s.cpu_pct;
        let rss = |s: &NodeSample| s.rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0));
        panel(
            &top,
            &by_node,
            bands,
            x_max,
            "CPU, % of one core",
            cpu,
            false,
        )?;
        panel(&bottom, &by_node, bands, x_max, "RSS, MiB", rss, true)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn panel(
    area: &Area<'_>,
    by_node: &BTreeMap<u64, Vec<&NodeSample>>,
    bands: &[Band],
    x_max: f64,
    y_desc: &str,
    value: impl Fn(&NodeSample) -> Option<f64>,
    x_axis: bool,
) -> Result<(), ReportError> {
    let y_max = by_node
        .values()
        .flatten()
        .filter_map(|s| value(s))
        .fold(1.0, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(if x_axis { 36 } else { 24 })
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(plot_err)?;
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(y_desc).light_line_style(WHITE.mix(0.0));
    if x_axis {
        mesh.x_desc("seconds since the start");
    }
    mesh.draw().map_err(plot_err)?;
    shade(&mut chart, bands, (0.0, y_max), false)?;
    for (i, (node, samples)) in by_node.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for s in samples {
            match value(s) {
                Some(v) => segments.last_mut().expect("one").push((s.t_s, v)),
                None if !segments.last().expect("one").is_empty() => segments.push(Vec::new()),
                None => {}
            }
        }
        broken_line(&mut chart, segments, color, &format!("node {node}"))?;
    }
    legend(&mut chart)
}
