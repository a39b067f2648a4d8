//! Scenario files: parsing, validation, and the built-in library.
//!
//! A scenario is TOML (see ARCHITECTURE.md for the shape). Parsing is strict: an unknown key, a
//! bad duration, `at` past `duration`, a target that cannot exist, a negative rate or a `for` on
//! an action that cannot be undone is a [`ScenarioError`] that names the file and the line and
//! column, and nothing is started.

mod fault;
mod library;
mod raw;

use std::path::Path;
use std::time::Duration;

pub use fault::{Action, Direction, FaultSpec, Selector, parse_bytes_per_sec};
pub use library::{BUILTIN, DEFAULT, builtin};
use loadgen::thresholds::Thresholds;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name (used in the results folder name).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// Length of the load phase, warmup included.
    pub duration: Duration,
    /// The cluster to start.
    pub cluster: ClusterSpec,
    /// The load to drive.
    pub load: LoadSpec,
    /// The fault schedule, sorted by `at`.
    pub faults: Vec<FaultSpec>,
    /// The two-level thresholds (the seed's defaults, overridden by the file's table).
    pub thresholds: Thresholds,
    /// The data and recovery checks.
    pub checks: Checks,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// Number of voters at the start.
    pub nodes: u64,
    /// `--store` of every node: `disk` or `memory`.
    pub store: String,
    /// `--fsync` of every node: `always` or `never`.
    pub fsync: String,
    /// `--snapshot-every`.
    pub snapshot_every: Option<u64>,
    /// `--apply-delay` (testing aid).
    pub apply_delay: Option<Duration>,
    /// `--heartbeat`.
    pub heartbeat: Option<Duration>,
    /// `--election-timeout` as (min, max).
    pub election_timeout: Option<(Duration, Duration)>,
}

impl ClusterSpec {
    /// The node flags this spec stands for.
    pub fn node_flags(&self) -> Vec<String> {
        let mut f = vec![
            "--store".into(),
            self.store.clone(),
            "--fsync".into(),
            self.fsync.clone(),
        ];
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        if let Some(n) = self.snapshot_every {
            f.extend(["--snapshot-every".into(), n.to_string()]);
        }
        if let Some(d) = self.apply_delay {
            f.extend(["--apply-delay".into(), format!("{}us", d.as_micros())]);
        }
        if let Some(d) = self.heartbeat {
            f.extend(["--heartbeat".into(), ms(d)]);
        }
        if let Some((a, b)) = self.election_timeout {
            f.extend([
                "--election-timeout".into(),
                format!("{}..{}", a.as_millis(), b.as_millis()),
            ]);
        }
        f
    }
}

/// `[load]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// YCSB workload letter: a b c d f w.
    pub workload: String,
    /// Key space size.
    pub keys: u64,
    /// `uniform | zipfian | latest`, overriding the workload's default.
    pub distribution: Option<String>,
    /// Bytes per value.
    pub value_size: usize,
    /// Open loop: operations per second.
    pub rate: Option<f64>,
    /// Closed loop: concurrent users.
    pub users: Option<u32>,
    /// Closed loop: pause between a user's operations.
    pub think_time: Option<Duration>,
    /// Leading part of the run whose figures are not judged.
    pub warmup: Duration,
    /// Read consistency: `linearizable | lease | stale`.
    pub consistency: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Record every operation to `history.jsonl`.
    pub history: bool,
}

/// `[checks]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    /// Read back every written key at the end and compare with what was acknowledged.
    pub lost_writes: bool,
    /// Every recovery figure must be within this.
    pub recovery_within: Option<Duration>,
}

/// A scenario that cannot be used. The message is one line that names the place.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{origin}:{place}: {message}")]
pub struct ScenarioError {
    /// The file, or `builtin:NAME`.
    pub origin: String,
    /// `LINE:COL`, or the field path when no position is known.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            origin: origin.clone(),
            place: "0:0".into(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        raw::parse(text, origin)
    }

    /// The largest node id the scenario can refer to (initial nodes plus added ones).
    pub fn max_node_id(&self) -> u64 {
        let added = self
            .faults
            .iter()
            .filter(|f| f.action == Action::AddNode)
            .count() as u64;
        self.cluster.nodes + added
    }
}

#[cfg(test)]
mod tests;
