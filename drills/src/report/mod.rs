//! The pictures and pages of a results folder, rendered from the folder's own files
//! (`summary.json`, `timeline.csv`, `nodes.csv`), so that a run and `raftdrill report DIR`
//! take one path, and an old run can be rendered again.
//!
//! # Layout
//! - this file: [`RunFolder`] (a run's files, read back), [`render_run`], [`ReportError`]
//! - [`doc`]: reads `summary.json` back
//! - [`series`]: reads `timeline.csv` back; writes `nodes.csv` and the per-node series behind it
//! - [`timeline_svg`]: draws `timeline.svg` (throughput, latency, fault bands, leaders, levels)
//! - [`nodes_svg`]: per-node CPU and RSS over time
//! - [`markdown`]: writes `report.md`
//! - [`html`]: writes `report.html`, self-contained
//! - [`figures`]: the named figures of a run, and their median, min and max over runs
//! - [`repeat`]: the summary and pages of a repeat (one scenario, N seeds)
//! - [`suite`]: the index of a suite (one row per scenario)
//! - [`terminal`]: the closing lines a run and a repeat print on the terminal

pub mod doc;
pub mod figures;
pub mod html;
pub mod markdown;
pub mod nodes_svg;
pub mod repeat;
pub mod series;
pub mod suite;
pub mod terminal;
pub mod timeline_svg;

use std::path::{Path, PathBuf};

use loadgen::output::TimelineRow;
use loadgen::thresholds::Metric;

use self::doc::RunDoc;
use self::series::NodeSample;
use self::timeline_svg::{Band, BandKind, Level, TimelinePlot};

/// A folder's files could not be read, or its pictures not drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what raftdrill writes.
    #[error("{file}: {message}")]
    Parse {
        /// The file (and line, for CSV).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// plotters could not draw.
    #[error("cannot draw: {0}")]
    Plot(String),
}

/// Reads a file of a folder.
pub fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file of a folder.
pub fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    write_bytes(path, text.as_bytes())
}

/// Writes a file of a folder, or says which one could not be written.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses a JSON file of a folder into `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    serde_json::from_str(&read(path)?).map_err(|e| ReportError::Parse {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The files of one run folder, read back.
#[derive(Debug, Clone)]
pub struct RunFolder {
    /// The folder.
    pub dir: PathBuf,
    /// `summary.json`.
    pub summary: RunDoc,
    /// `timeline.csv` (empty when the folder has none).
    pub timeline: Vec<TimelineRow>,
    /// `nodes.csv` (empty when the folder has none: a load-only run, or an older raftdrill).
    pub nodes: Vec<NodeSample>,
}

impl RunFolder {
    /// Reads `summary.json` and, where present, `timeline.csv` and `nodes.csv`.
    pub fn load(dir: &Path) -> Result<RunFolder, ReportError> {
        let summary = read_json(&dir.join("summary.json"))?;
        let optional = |name: &str| {
            let p = dir.join(name);
            p.exists().then(|| read(&p)).transpose()
        };
        let timeline = match optional("timeline.csv")? {
            Some(t) => series::parse_timeline(&t, &dir.join("timeline.csv").display().to_string())?,
            None => Vec::new(),
        };
        let nodes = match optional("nodes.csv")? {
            Some(t) => series::parse_nodes(&t, &dir.join("nodes.csv").display().to_string())?,
            None => Vec::new(),
        };
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            summary,
            timeline,
            nodes,
        })
    }

    /// The fault windows as bands: from firing to heal (or to the end, if never healed).
    pub fn bands(&self) -> Vec<Band> {
        let s = &self.summary;
        s.faults
            .iter()
            .filter(|f| f.error.is_none())
            .map(|f| Band {
                from_s: f.at_s,
                to_s: f.healed_at_s.unwrap_or(f.at_s),
                label: f.label(),
                kind: BandKind::Fault,
            })
            .collect()
    }

    /// What `timeline.svg` shows of this run.
    pub fn timeline_plot(&self) -> TimelinePlot {
        let s = &self.summary;
        let mut latency_levels = Vec::new();
        let mut tps_levels = Vec::new();
        for t in &s.thresholds {
            let into = match t.metric {
                Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max => {
                    &mut latency_levels
                }
                Metric::Tps => &mut tps_levels,
                Metric::SuccessRate | Metric::ErrorRate | Metric::NodeCpu => continue,
            };
            let unit = if t.metric == Metric::Tps {
                " ops/s"
            } else {
                " ms"
            };
            for (name, v, brk) in [("warn", t.warn, false), ("break", t.brk, true)] {
                if let Some(value) = v {
                    into.push(Level {
                        label: format!("{} {name} {value}{unit}", t.metric.as_str()),
                        value,
                        brk,
                    });
                }
            }
        }
        TimelinePlot {
            title: format!(
                "{}: {}, workload {}, {}",
                s.scenario,
                markdown::cluster_text(s),
                s.load.workload,
                markdown::load_text(s)
            ),
            rows: self.timeline.clone(),
            bands: self.bands(),
            latency_levels,
            tps_levels,
            leaders: series::leader_changes(&self.timeline),
        }
    }
}

/// Renders `timeline.svg`, `nodes.svg` (when the folder has node samples), `report.md` and
/// `report.html` of the run folder `dir` from its files.
pub fn render_run(dir: &Path) -> Result<(), ReportError> {
    let run = RunFolder::load(dir)?;
    let timeline = if run.timeline.is_empty() {
        None
    } else {
        let svg = timeline_svg::draw(&run.timeline_plot())?;
        write(&dir.join("timeline.svg"), &svg)?;
        Some(svg)
    };
    let nodes = if run.nodes.is_empty() {
        None
    } else {
        let title = format!("{}: CPU and memory per node", run.summary.scenario);
        let svg = nodes_svg::draw(&title, &run.nodes, &run.bands())?;
        write(&dir.join("nodes.svg"), &svg)?;
        Some(svg)
    };
    write(
        &dir.join("report.md"),
        &markdown::render(&run.summary, timeline.is_some()),
    )?;
    write(
        &dir.join("report.html"),
        &html::render(
            &run.summary,
            timeline.as_deref(),
            nodes.as_deref(),
            &run.nodes,
        ),
    )
}

#[cfg(test)]
pub(crate) mod tests;
