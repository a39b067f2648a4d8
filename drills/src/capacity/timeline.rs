//! The whole search on one time axis: `timeline.csv` (every step's seconds, shifted to the
//! search's clock) and `timeline.svg` with each step as a band, green where it met the SLO and
//! red where it did not, and the SLO's latency bound as a line.
//!
//! One picture for the whole search rather than one per step: the search is one story, and the
//! knee is where the bands turn from passing to failing while the latency climbs; a step on its
//! own is a flat line at one rate, and ten of them side by side show less than one axis. With
//! `--with-faults`, each step's own folder still has its full drill timeline.

use std::path::{Path, PathBuf};

use loadgen::output::{TimelineRow, TimelineWriter};
use loadgen::thresholds::Metric;
use serde::Deserialize;

use super::slo::Slo;
use crate::report::timeline_svg::{self, Band, BandKind, Level, TimelinePlot};
use crate::report::{ReportError, read, read_json, series, write as write_file};

/// Rows of one step moved by `offset` seconds onto the search's clock.
pub fn shift(rows: Vec<TimelineRow>, offset: f64) -> Vec<TimelineRow> {
    rows.into_iter()
        .map(|mut r| {
            r.t_s += offset;
            r
        })
        .collect()
}

/// Writes `timeline.csv` and renders `timeline.svg` from the folder's files.
pub fn write(dir: &Path, rows: &[TimelineRow]) -> Result<(), (PathBuf, std::io::Error)> {
    let path = dir.join("timeline.csv");
    let csv = (|| {
        let mut w = TimelineWriter::new(Vec::new())?;
        for r in rows {
            w.write(r)?;
        }
        w.finish()
    })()
    .map_err(|e| (path.clone(), e))?;
    std::fs::write(&path, csv).map_err(|e| (path, e))?;
    render(dir).map_err(|e| match e {
        ReportError::Io { path, source } => (path, source),
        other => (dir.join("timeline.svg"), std::io::Error::other(other)),
    })
}

/// `capacity.json`, the parts the timeline shows.
#[derive(Deserialize)]
struct SearchDoc {
    scenario: String,
    nodes: u64,
    workload: String,
    slo: String,
    steps: Vec<StepDoc>,
    #[serde(default)]
    verify: Option<VerifyDoc>,
}

/// The closed-loop cross-check, drawn as a neutral band after the steps.
#[derive(Deserialize)]
struct VerifyDoc {
    users: usize,
    #[serde(default)]
    started_s: f64,
    #[serde(default)]
    ended_s: f64,
}

#[derive(Deserialize)]
struct StepDoc {
    target_rate: f64,
    verdict: String,
    #[serde(default)]
    started_s: Option<f64>,
    #[serde(default)]
    ended_s: Option<f64>,
    #[serde(default)]
    rerun: bool,
}

/// Renders `timeline.svg` of a capacity folder from `capacity.json` and `timeline.csv`.
pub fn render(dir: &Path) -> Result<(), ReportError> {
    let doc: SearchDoc = read_json(&dir.join("capacity.json"))?;
    let csv = dir.join("timeline.csv");
    let rows = series::parse_timeline(&read(&csv)?, &csv.display().to_string())?;
    let bands = doc
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let (from, to) = (s.started_s?, s.ended_s?);
            let pass = s.verdict == "pass";
            Some(Band {
                from_s: from,
                to_s: to,
                label: format!(
                    "{} {:.0}/s{} {}",
                    i + 1,
                    s.target_rate,
                    if s.rerun { " again" } else { "" },
                    if pass { "✓" } else { "✗" }
                ),
                kind: if pass {
                    BandKind::Passed
                } else {
                    BandKind::Failed
                },
            })
        })
        .chain(
            doc.verify
                .iter()
                .filter(|v| v.ended_s > v.started_s)
                .map(|v| Band {
                    from_s: v.started_s,
                    to_s: v.ended_s,
                    label: format!("closed loop, {} users", v.users),
                    kind: BandKind::Fault,
                }),
        )
        .collect();
    let latency_levels = Slo::parse(&doc.slo)
        .map(|slo| {
            slo.0
                .iter()
                .filter(|t| matches!(t.metric, Metric::P50 | Metric::P99 | Metric::P999))
                .map(|t| Level {
                    label: format!("SLO {} < {} ms", t.metric.as_str(), t.value),
                    value: t.value,
                    brk: true,
                })
                .collect()
        })
        .unwrap_or_default();
    let plot = TimelinePlot {
        title: format!(
            "capacity {}: {} nodes, workload {}, SLO {}",
            doc.scenario, doc.nodes, doc.workload, doc.slo
        ),
        leaders: series::leader_changes(&rows),
        rows,
        bands,
        latency_levels,
        tps_levels: Vec::new(),
    };
    write_file(&dir.join("timeline.svg"), &timeline_svg::draw(&plot)?)
}
