//! What the check found, as `linearizability.json` carries it, the `summary.json` shape, and
//! the files written beside the history.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::anomaly::KeyAnomaly;
use super::svg;

/// The file the full report is written to, beside the history.
pub const REPORT_FILE: &str = "linearizability.json";

/// The verdict over a whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every key is linearizable.
    Ok,
    /// At least one key is not (whatever the others are).
    Anomaly,
    /// No key is known to be bad, but some were not decided: never a pass.
    Unknown,
}

/// The result of checking a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinearReport {
    /// The verdict.
    pub status: Status,
    /// The history file, when the records came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<PathBuf>,
    /// Keys with at least one operation that constrains the register.
    pub keys: usize,
    /// Operations checked (records that constrain the register).
    pub ops: usize,
    /// Records read, checked or not.
    pub records: usize,
    /// Records that constrain nothing and were left out: failed operations, reads that did
    /// not complete, swaps that were never sent.
    pub dropped: usize,
    /// Wall-clock time of the check, seconds.
    pub elapsed_s: f64,
    /// The time limit of each key, seconds.
    pub time_limit_s: f64,
    /// The keys that are not linearizable, sorted by key.
    pub anomalies: Vec<KeyAnomaly>,
    /// The keys that were not decided in time, sorted by key.
    pub undecided: Vec<UndecidedKey>,
}

/// One key the check could not decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UndecidedKey {
    /// The key.
    pub key: String,
    /// Its operations.
    pub ops: usize,
    /// Why: the time limit, or a cancelled check.
    pub reason: String,
}

/// `summary.json`'s `checks.linearizability`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinearSummary {
    /// The verdict, or `skipped` when the check did not run.
    pub status: SummaryStatus,
    /// Keys checked.
    pub keys: usize,
    /// Operations checked.
    pub ops: usize,
    /// The failing keys.
    pub anomalies: Vec<SummaryAnomaly>,
    /// Keys not decided in time.
    pub undecided: usize,
    /// Time the check took, seconds.
    pub elapsed_s: f64,
    /// Why the check was skipped or undecided, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// [`LinearSummary::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SummaryStatus {
    /// Linearizable.
    Ok,
    /// Not linearizable.
    Anomaly,
    /// Not decided.
    Unknown,
    /// Not run (no history was recorded, say).
    Skipped,
}

/// A failing key in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SummaryAnomaly {
    /// The key.
    pub key: String,
    /// The operations of its failing window.
    pub op_ids: Vec<u64>,
    /// Its picture, relative to the run folder.
    pub file: String,
}

impl LinearSummary {
    /// The summary of a check that did not run, with the reason.
    pub fn skipped(reason: impl Into<String>) -> Self {
        LinearSummary {
            status: SummaryStatus::Skipped,
            keys: 0,
            ops: 0,
            anomalies: Vec::new(),
            undecided: 0,
            elapsed_s: 0.0,
            reason: Some(reason.into()),
        }
    }
}

impl LinearReport {
    /// The `summary.json` form.
    pub fn summary(&self) -> LinearSummary {
        let status = match self.status {
            Status::Ok => SummaryStatus::Ok,
            Status::Anomaly => SummaryStatus::Anomaly,
            Status::Unknown => SummaryStatus::Unknown,
        };
        let reason = (!self.undecided.is_empty()).then(|| {
            format!(
                "{} key(s) not decided within {} s",
                self.undecided.len(),
                self.time_limit_s
            )
        });
        LinearSummary {
            status,
            keys: self.keys,
            ops: self.ops,
            anomalies: self
                .anomalies
                .iter()
                .map(|a| SummaryAnomaly {
                    key: a.key.clone(),
                    op_ids: a.op_ids(),
                    file: a.file.clone(),
                })
                .collect(),
            undecided: self.undecided.len(),
            elapsed_s: self.elapsed_s,
            reason,
        }
    }

    /// Writes `linearizability.json` and one `anomaly-<key>.svg` per failing key into `dir`;
    /// returns the paths written.
    pub fn write_files(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::with_capacity(1 + self.anomalies.len());
        let json = crate::versioned::to_json(self, crate::versioned::schema::LINEARIZABILITY);
        let path = dir.join(REPORT_FILE);
        std::fs::write(&path, json)?;
        written.push(path);
        for a in &self.anomalies {
            let path = dir.join(&a.file);
            std::fs::write(&path, svg::render(a))?;
            written.push(path);
        }
        Ok(written)
    }

    /// One line for a person: the verdict and its figures.
    pub fn headline(&self) -> String {
        let verdict = match self.status {
            Status::Ok => "linearizable",
            Status::Anomaly => "NOT linearizable",
            Status::Unknown => "undecided",
        };
        format!(
            "linearizability: {verdict}: {} keys, {} operations ({} records, {} dropped), \
             {} anomalies, {} undecided, {:.2} s",
            self.keys,
            self.ops,
            self.records,
            self.dropped,
            self.anomalies.len(),
            self.undecided.len(),
            self.elapsed_s
        )
    }
}
