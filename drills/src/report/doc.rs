//! [`RunDoc`]: `summary.json` as the renderers and `compare` read it back. It is its own type
//! (not the writer's `Summary`) so that a folder written by an older raftdrill, or one with
//! fields added since (`checks.linearizability`), still reads: optional parts default, and
//! unknown fields are ignored.

use std::collections::BTreeMap;

use loadgen::output::LatencyMs;
use loadgen::thresholds::{Status, ThresholdResult};
use raftdrill_wire::CommitTimes;
use serde::{Deserialize, Serialize};

/// `summary.json` of one run.
#[derive(Debug, Clone, Deserialize)]
pub struct RunDoc {
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    #[serde(default)]
    pub description: String,
    /// UTC start, RFC 3339.
    pub started_at: String,
    /// Load phase length, warmup included.
    pub duration_s: f64,
    /// Warmup.
    #[serde(default)]
    pub warmup_s: f64,
    /// The workload seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The cluster (absent in very old load-only summaries).
    #[serde(default)]
    pub cluster: Option<ClusterDoc>,
    /// A load-only run: the endpoints it drove.
    #[serde(default)]
    pub endpoints: Option<Vec<String>>,
    /// The load.
    pub load: LoadDoc,
    /// Totals.
    pub totals: TotalsDoc,
    /// Latency.
    pub latency_ms: LatencyDoc,
    /// Thresholds as judged.
    pub thresholds: Vec<ThresholdResult>,
    /// Errors by class.
    #[serde(default)]
    pub counts: Option<loadgen::metrics::Counts>,
    /// Faults as they fired.
    #[serde(default)]
    pub faults: Vec<FaultDoc>,
    /// Recovery per fault.
    #[serde(default)]
    pub recovery: Vec<RecoveryDoc>,
    /// The data checks.
    #[serde(default)]
    pub checks: ChecksDoc,
    /// Mean CPU of the busiest node.
    #[serde(default)]
    pub busiest_node_cpu_pct: Option<f64>,
    /// Elections during the load.
    #[serde(default)]
    pub elections: Option<u64>,
    /// fdatasync latency of the disk under the nodes.
    #[serde(default)]
    pub disk: Option<DiskDoc>,
    /// Durable log commit times per node.
    #[serde(default)]
    pub log_commits: BTreeMap<String, CommitTimes>,
    /// Node processes that exited without the drill's doing (absent before raftdrill 0.1's
    /// fail-closed verdicts).
    #[serde(default)]
    pub node_exits: Vec<NodeExitDoc>,
    /// Whether the load reached its planned rate outside the fault windows.
    #[serde(default)]
    pub validity: Option<ValidityDoc>,
    /// `pass`, `warn`, `fail`, `inconclusive` or `aborted`.
    pub verdict: String,
    /// Why it is not `pass`.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The exit code.
    pub exit_code: u8,
}

/// `cluster`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ClusterDoc {
    /// Initial voters.
    pub nodes: u64,
    /// The store under test.
    pub target: String,
    /// `disk` or `memory`.
    #[serde(default)]
    pub store: Option<String>,
    /// `always` or `never`.
    #[serde(default)]
    pub fsync: Option<String>,
}

/// `load`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
pub struct LoadDoc {
    /// Workload letter.
    pub workload: String,
    /// `open` or `closed`.
    #[schemars(extend("enum" = ["open", "closed"]))]
    pub model: String,
    /// Open loop rate.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Closed loop users.
    #[serde(default)]
    pub users: Option<u64>,
    /// The per-request timeout, when the summary says (a latency held there cannot show a
    /// change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
    /// Late starts (a run's own; a repeat's summary leaves it to each run's).
    #[serde(default, skip_serializing)]
    pub late: u64,
    /// Planned operations never started (likewise).
    #[serde(default, skip_serializing)]
    pub dropped: u64,
}

/// `latency_ms`: overall, and per operation.
#[derive(Debug, Clone, Deserialize)]
pub struct LatencyDoc {
    /// Every operation.
    #[serde(flatten)]
    pub overall: LatencyMs,
    /// Per operation kind.
    #[serde(default)]
    pub per_op: BTreeMap<String, LatencyMs>,
}

/// `totals`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct TotalsDoc {
    /// Operations.
    pub ops: u64,
    /// Ok.
    pub ok: u64,
    /// Failed or unknown.
    pub errors: u64,
    /// Operations per second over the judged window.
    pub tps: f64,
}

/// One fault of `faults`.
#[derive(Debug, Clone, Deserialize)]
pub struct FaultDoc {
    /// When it fired.
    pub at_s: f64,
    /// The action.
    pub action: String,
    /// The target as written.
    pub target: String,
    /// The nodes it resolved to.
    #[serde(default)]
    pub resolved: Vec<u64>,
    /// When it was undone.
    #[serde(default)]
    pub healed_at_s: Option<f64>,
    /// Why it could not fire.
    #[serde(default)]
    pub error: Option<String>,
    /// Why its undo failed.
    #[serde(default)]
    pub heal_error: Option<String>,
    /// What a `corrupt` damaged, and what each node made of it.
    #[serde(default)]
    pub corruption: Vec<CorruptionDoc>,
}

/// `faults[].corruption[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct CorruptionDoc {
    /// The node.
    pub node: u64,
    /// The file.
    pub file: String,
    /// flip, zero or truncate.
    pub how: String,
    /// Where the range starts.
    pub offset: u64,
    /// How long it is.
    pub len: u64,
    /// started, refused-start or no-answer.
    pub outcome: String,
    /// How a refusal ended.
    #[serde(default)]
    pub detail: Option<String>,
}

impl CorruptionDoc {
    /// `node 3: flip 1 B at 5120 of …/00000000000000000001.wal: refused-start (exit 1: …)`.
    pub fn sentence(&self) -> String {
        let range = match self.how.as_str() {
            "truncate" => format!("cut at {} ({} B gone)", self.offset, self.len),
            how => format!("{how} {} B at {}", self.len, self.offset),
        };
        let detail = self
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        format!(
            "node {}: {range} of {}: {}{detail}",
            self.node, self.file, self.outcome
        )
    }
}

impl FaultDoc {
    /// `kill leader [2]`: what a band or a table row says of the fault.
    pub fn label(&self) -> String {
        let nodes: Vec<String> = self.resolved.iter().map(u64::to_string).collect();
        if nodes.is_empty() {
            format!("{} {}", self.action, self.target)
        } else {
            format!("{} {} [{}]", self.action, self.target, nodes.join(","))
        }
    }
}

/// One entry of `recovery`.
#[derive(Debug, Clone, Deserialize)]
pub struct RecoveryDoc {
    /// Index into `faults`.
    pub fault: usize,
    /// Time to a new leader.
    #[serde(default)]
    pub leader_elected_after_s: Option<f64>,
    /// Time to the first acknowledged write.
    #[serde(default)]
    pub first_success_after_s: Option<f64>,
    /// Time to 90 % of the TPS before.
    #[serde(default)]
    pub tps_90pct_after_s: Option<f64>,
    /// The limit.
    #[serde(default)]
    pub within_s: Option<f64>,
    /// Figures that applied and never came.
    #[serde(default)]
    pub unrecovered: Vec<String>,
    /// Time from the undo to a leader and a first acknowledged write invoked after it.
    #[serde(default)]
    pub after_undo_s: Option<f64>,
    /// The limit of `after_undo_s`, when the fault was undone during the load.
    #[serde(default)]
    pub after_undo_within_s: Option<f64>,
    /// For a limping node: what it did to the cluster.
    #[serde(default)]
    pub limp: Option<LimpDoc>,
    /// `ok` or `break`.
    pub status: Status,
}

impl RecoveryDoc {
    /// The recovery after the undo: its time, `never` when it was due and never came, `–`
    /// when the fault was not undone during the load.
    pub fn after_undo(&self) -> String {
        match (self.after_undo_s, self.after_undo_within_s) {
            (Some(a), _) => format!("{a:.2}s"),
            (None, Some(_)) => "never".into(),
            (None, None) => "–".into(),
        }
    }
}

/// `recovery[].limp`.
#[derive(Debug, Clone, Deserialize)]
pub struct LimpDoc {
    /// It led when the quota began.
    pub led: bool,
    /// Another node took over before the quota was lifted.
    pub replaced: bool,
    /// Seconds with the writes' p99 over the break level.
    pub above_break_s: f64,
    /// The break level, ms.
    #[serde(default)]
    pub break_ms: Option<f64>,
}

impl LimpDoc {
    /// The finding in words, for node(s) `nodes` held to a quota.
    pub fn sentence(&self, nodes: &str) -> String {
        let who = if self.led {
            format!("Node {nodes} limped while it led")
        } else {
            format!("Node {nodes} limped as a follower")
        };
        let kept = match (self.led, self.replaced) {
            (true, true) => "and the cluster replaced it as leader",
            (true, false) => "and the cluster kept it as leader",
            (false, _) => "and the leader stayed where it was",
        };
        let slow = match self.break_ms {
            Some(b) => format!(
                "writes stayed above the p99 break level ({b:.0} ms) for {:.0} s of it",
                self.above_break_s
            ),
            None => "no p99 break level was set to measure the writes against".into(),
        };
        format!(
            "{who}, {kept}; {slow}. That is a finding about the store: a limping node is slow but alive, and clients wait on it for as long as the store keeps it in their path."
        )
    }
}

/// A node that exited on its own.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeExitDoc {
    /// The node.
    pub node: u64,
    /// When.
    pub at_s: f64,
    /// How it ended.
    pub status: String,
    /// The end of its log.
    #[serde(default)]
    pub log_tail: String,
}

/// `validity`.
#[derive(Debug, Clone, Deserialize)]
pub struct ValidityDoc {
    /// The floor, when one applied.
    pub floor: Option<String>,
    /// Fault-free seconds checked.
    pub seconds_checked: usize,
    /// The seconds below the floor.
    #[serde(default)]
    pub below: Vec<serde_json::Value>,
}

impl ValidityDoc {
    /// One line: the floor and how the load kept it.
    pub fn line(&self) -> String {
        match &self.floor {
            None => "no load floor applies (closed loop without min_ops_per_s)".into(),
            Some(floor) if self.below.is_empty() => format!(
                "the load kept its floor ({floor}) in all {} fault-free seconds",
                self.seconds_checked
            ),
            Some(floor) => format!(
                "the load fell below its floor ({floor}) in {} of {} fault-free seconds",
                self.below.len(),
                self.seconds_checked
            ),
        }
    }
}

impl RecoveryDoc {
    /// The three figures with their names.
    pub fn figures(&self) -> [(&'static str, Option<f64>); 3] {
        [
            ("leader_elected_after_s", self.leader_elected_after_s),
            ("first_success_after_s", self.first_success_after_s),
            ("tps_90pct_after_s", self.tps_90pct_after_s),
        ]
    }
}

/// `checks`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChecksDoc {
    /// The lost-write check, when it ran.
    #[serde(default)]
    pub lost_writes: Option<LostWritesDoc>,
    /// The recovery limit.
    #[serde(default)]
    pub recovery_within_s: Option<f64>,
    /// The limit of the recovery after an undo (the scenario's, or the default).
    #[serde(default)]
    pub recovery_after_undo_within_s: Option<f64>,
    /// The linearizability check, when the summary has one.
    #[serde(default)]
    pub linearizability: Option<LinearDoc>,
    /// The session check, when the reads were session reads.
    #[serde(default)]
    pub session: Option<crate::check::SessionSummary>,
}

/// `checks.lost_writes`.
#[derive(Debug, Clone, Deserialize)]
pub struct LostWritesDoc {
    /// `ok`, `lost`, or `unknown` when keys could not be read back.
    #[serde(default)]
    pub status: Option<String>,
    /// Acknowledged writes.
    pub acked: u64,
    /// Writes with an unknown outcome.
    #[serde(default)]
    pub unknown: u64,
    /// Keys read back.
    #[serde(default)]
    pub keys_checked: u64,
    /// Keys accepted.
    pub verified: u64,
    /// Keys not readable at the end.
    #[serde(default)]
    pub unreadable: u64,
    /// Keys that failed.
    pub lost: u64,
    /// The failing keys, with their evidence.
    #[serde(default)]
    pub lost_keys: Vec<LostKeyDoc>,
}

/// One failing key.
#[derive(Debug, Clone, Deserialize)]
pub struct LostKeyDoc {
    /// The key.
    pub key: String,
    /// `missing`, `stale`, ...
    pub kind: String,
    /// The last acknowledged value.
    #[serde(default)]
    pub expected: Option<String>,
    /// Its log index.
    #[serde(default)]
    pub expected_index: Option<u64>,
    /// What the final read found.
    #[serde(default)]
    pub found: Option<String>,
}

/// `checks.linearizability`: only what the reports show of it.
#[derive(Debug, Clone, Deserialize)]
pub struct LinearDoc {
    /// `ok`, `anomaly`, `unknown` or `skipped`.
    pub status: String,
    /// Keys checked.
    #[serde(default)]
    pub keys: Option<u64>,
    /// Operations checked.
    #[serde(default)]
    pub ops: Option<u64>,
    /// Why it was skipped or undecided.
    #[serde(default)]
    pub reason: Option<String>,
    /// The failing keys and their pictures.
    #[serde(default)]
    pub anomalies: Vec<AnomalyDoc>,
}

/// One failing key of the linearizability check.
#[derive(Debug, Clone, Deserialize)]
pub struct AnomalyDoc {
    /// The key.
    pub key: String,
    /// The operations of its failing window.
    #[serde(default)]
    pub op_ids: Vec<u64>,
    /// Its picture, relative to the run folder.
    pub file: String,
}

/// `disk`.
#[derive(Debug, Clone, Deserialize)]
pub struct DiskDoc {
    /// Samples.
    pub samples: u64,
    /// fdatasync p50, ms.
    pub fdatasync_p50_ms: f64,
    /// fdatasync p99, ms.
    pub fdatasync_p99_ms: f64,
    /// fdatasync max, ms.
    pub fdatasync_max_ms: f64,
}

impl RunDoc {
    /// Percent of operations ok, when any completed.
    pub fn success_rate(&self) -> Option<f64> {
        (self.totals.ops > 0).then(|| self.totals.ok as f64 * 100.0 / self.totals.ops as f64)
    }

    /// `reference`, or what the summary names.
    pub fn target(&self) -> &str {
        self.cluster
            .as_ref()
            .map_or("reference", |c| c.target.as_str())
    }

    /// The linearizability status, or `–` when the summary has none.
    pub fn consistency(&self) -> String {
        self.checks
            .linearizability
            .as_ref()
            .map_or_else(|| "–".into(), |l| l.status.clone())
    }
}
