//! Scenario files: parsing, validation, and the built-in library.
//!
//! A scenario is TOML (see ARCHITECTURE.md for the shape). Parsing is strict: an unknown key, a
//! bad duration, `at` past `duration`, a target that cannot exist, a negative rate or a `for` on
//! an action that cannot be undone is a [`ScenarioError`] that names the file and the line and
//! column, and nothing is started.

mod fault;
mod find;
pub mod hosts_file;
mod library;
mod raw;

use std::path::Path;
use std::time::Duration;

pub use fault::{
    Action, ClockChange, CorruptFile, CorruptHow, Direction, DiskOp, FaultSpec, Selector,
};
pub use library::{BUILTIN, DEFAULT, builtin};
pub use loadgen::target::TargetKind;
use loadgen::{LoadConfig, LoadSpec};
use target_cluster::store::{FsyncPolicy, StoreKind};

/// A validated scenario: every value parsed into its type, so nothing downstream parses again.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name (used in the results folder name).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// The cluster to start.
    pub cluster: ClusterSpec,
    /// The load to drive: `[load]`, its `duration` (warmup included) and its `[thresholds]`
    /// (the seed's defaults, overridden by the file's table).
    pub load: LoadSpec,
    /// Hosts (by name) that run the load over SSH (`[load] from`), each at its share of the
    /// rate or users; empty: this machine runs it. Where the load runs is not part of what
    /// it is, so it stands beside the spec.
    pub load_from: Vec<String>,
    /// The fault schedule, sorted by `at`.
    pub faults: Vec<FaultSpec>,
    /// The data and recovery checks.
    pub checks: Checks,
    /// The worst verdict the scenario's author expects on the reference cluster (`expect`).
    pub expect: Option<Expect>,
    /// `[[host]]` tables: run the nodes on these hosts over SSH (`--hosts FILE` overrides).
    pub hosts: Option<hosts_file::HostsFile>,
}

/// The worst verdict a scenario documents for the reference cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expect {
    /// Every threshold met, every check clean.
    Pass,
    /// A warn level may be crossed (recovery errors in a fault window, say).
    Warn,
    /// The drill is meant to fail (a planted bug).
    Fail,
}

impl Expect {
    /// The verdict's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Pass => "pass",
            Expect::Warn => "warn",
            Expect::Fail => "fail",
        }
    }
}

impl std::str::FromStr for Expect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pass" => Ok(Expect::Pass),
            "warn" => Ok(Expect::Warn),
            "fail" => Ok(Expect::Fail),
            other => Err(format!(
                "unknown verdict {other:?} (expected pass, warn or fail)"
            )),
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// Number of voters at the start.
    pub nodes: u64,
    /// The store under test.
    pub target: TargetKind,
    /// `--store` of every node.
    pub store: StoreKind,
    /// `--fsync` of every node.
    pub fsync: FsyncPolicy,
    /// `--snapshot-every`.
    pub snapshot_every: Option<u64>,
    /// `--apply-delay` (testing aid).
    pub apply_delay: Option<Duration>,
    /// `--heartbeat`.
    pub heartbeat: Option<Duration>,
    /// `--election-timeout` as (min, max).
    pub election_timeout: Option<(Duration, Duration)>,
    /// `--unsafe-reads`: the planted stale-read bug.
    pub unsafe_reads: bool,
    /// `--unsafe-fsync-retry`: the planted bug that retries a failed fsync and carries on.
    pub unsafe_fsync_retry: bool,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            nodes: 3,
            target: TargetKind::default(),
            store: StoreKind::default(),
            fsync: FsyncPolicy::default(),
            snapshot_every: None,
            apply_delay: None,
            heartbeat: None,
            election_timeout: None,
            unsafe_reads: false,
            unsafe_fsync_retry: false,
        }
    }
}

impl ClusterSpec {
    /// The node flags this spec stands for.
    pub fn node_flags(&self) -> Vec<String> {
        let mut f = vec![
            "--store".into(),
            self.store.as_str().into(),
            "--fsync".into(),
            self.fsync.as_str().into(),
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
        if self.unsafe_reads {
            f.push("--unsafe-reads".into());
        }
        if self.unsafe_fsync_retry {
            f.push("--unsafe-fsync-retry".into());
        }
        f
    }
}

/// `[checks]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    /// Read back every written key at the end and compare with what was acknowledged.
    pub lost_writes: bool,
    /// Check the whole history for linearizability (needs `history`).
    pub linearizability: bool,
    /// How long the linearizability check may spend on one key before calling it undecided.
    pub check_time_limit: Duration,
    /// Every recovery figure must be within this; a fault's recovery after its undo must be
    /// within this, or [`DEFAULT_RECOVERY_WITHIN`] when it is not set.
    pub recovery_within: Option<Duration>,
    /// Nodes that may exit on their own without making the run inconclusive.
    pub may_stay_down: Vec<target_cluster::typ::NodeId>,
    /// Open loop: the share (0..=1) of the planned rate that every fault-free second outside
    /// the fault windows must reach for the verdict to mean anything.
    pub min_load_share: f64,
    /// Closed loop: the operations per second every such second must reach, when set.
    pub min_ops_per_s: Option<f64>,
}

/// How soon a fault must recover after its undo when `[checks] recovery_within` is not set: a
/// leader and a first acknowledged write invoked after the undo.
pub const DEFAULT_RECOVERY_WITHIN: Duration = Duration::from_secs(10);

/// The share of the planned rate a fault-free second must reach by default (open loop).
pub const DEFAULT_MIN_LOAD_SHARE: f64 = 0.9;

impl Default for Checks {
    fn default() -> Self {
        Self {
            lost_writes: true,
            linearizability: true,
            check_time_limit: Duration::from_secs(30),
            recovery_within: None,
            may_stay_down: Vec::new(),
            min_load_share: DEFAULT_MIN_LOAD_SHARE,
            min_ops_per_s: None,
        }
    }
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

    /// The load configuration of this scenario against `endpoints`: the one place where a
    /// scenario becomes a [`LoadConfig`] (`run`, `capacity` and `load` all come here). With
    /// `out`, the history (when the spec keeps one), goose's report and the interval log are
    /// written there.
    pub fn load_config(&self, endpoints: Vec<String>, out: Option<&Path>, seed: u64) -> LoadConfig {
        let mut c = LoadConfig::new(self.load.clone(), endpoints);
        c.target = self.cluster.target;
        c.seed = seed;
        c.stream_ops = true;
        if let Some(dir) = out {
            c.history_path = Some(dir.join("history.jsonl"));
            c.goose_report = Some(dir.join("goose-report.html"));
            c.hlog_path = Some(dir.join("latency.hlog"));
        }
        c
    }

    /// The scenario run for `duration` instead: when that is shorter, every time of the
    /// schedule (fault times, their `for`, the warmup) shrinks in proportion, so every fault
    /// still fires and heals inside the run. A longer duration keeps the schedule as written.
    pub fn fit_to(mut self, duration: Duration) -> Scenario {
        let planned = self.load.duration;
        if duration < planned && !planned.is_zero() {
            let f = duration.as_secs_f64() / planned.as_secs_f64();
            for fault in &mut self.faults {
                fault.at = fault.at.mul_f64(f);
                fault.undo_after = fault.undo_after.map(|d| d.mul_f64(f));
            }
            self.load.warmup = self.load.warmup.mul_f64(f);
        }
        self.load.duration = duration;
        self
    }

    /// Checks what the scenario asks of its target store (after `--target` overrides the
    /// file): etcd has no lease reads, no memory store, no fsync switch, no planted bugs and
    /// cannot restart a member empty under its old identity. One line says why.
    pub fn check_target(&self) -> Result<(), String> {
        let c = &self.cluster;
        if c.target != TargetKind::Etcd {
            return Ok(());
        }
        let mut refused = Vec::new();
        if !c.target.supports(self.load.consistency) {
            refused.push(format!(
                "consistency = \"{}\" (etcd has neither lease nor session reads; use linearizable or stale)",
                self.load.consistency.as_str()
            ));
        }
        if c.store != StoreKind::Disk {
            refused.push("store = \"memory\"".into());
        }
        if c.fsync != FsyncPolicy::Always {
            refused.push("fsync = \"never\"".into());
        }
        if c.apply_delay.is_some() {
            refused.push("apply_delay".into());
        }
        if c.unsafe_reads {
            refused.push("unsafe_reads".into());
        }
        if c.unsafe_fsync_retry {
            refused.push("unsafe_fsync_retry".into());
        }
        if c.snapshot_every.is_some() {
            refused.push("snapshot_every".into());
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the etcd target does not support {}",
                refused.join(", ")
            ))
        }
    }

    /// Whether any fault needs the fault-injecting filesystem under the nodes' data.
    pub fn uses_disk_faults(&self) -> bool {
        self.faults.iter().any(|f| f.action.is_disk_fault())
    }

    /// Whether a fault changes a node's clock (every node then starts under libfaketime).
    pub fn uses_clock_faults(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.action, Action::Clock { .. }))
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
