//! After the load: evaluate thresholds and recovery, weigh the checks, and decide the verdict
//! and the exit code. It fails closed: whatever the scenario asked to be checked and could
//! not be is `inconclusive` (exit 5), never a pass.
//!
//! The order of the verdicts, first match wins: a data anomaly (`fail`, exit 3); a run stopped
//! before its end (`aborted`, 4); something unchecked (`inconclusive`, 5); a broken threshold,
//! a recovery over its limit or a failed heal (`fail`, 1); a threshold at its warn level
//! (`warn`, 0); else `pass` (0).
//!
//! # Layout
//! - this file: [`Inputs`], [`Verdict`], [`judge`]
//! - `recovery`: the recovery figures of every fault, during it and after its undo
//! - `reasons`: one line per reason, by kind (thresholds, faults, data, unchecked)
//! - `validity`: whether the load reached its planned rate where no fault was in effect

mod reasons;
mod recovery;
mod validity;

use loadgen::thresholds::{Observed, Status, ThresholdResult, worst};
use loadgen::{LoadReport, Snapshot};
use serde::Serialize;

use super::poller::PollLog;
use crate::check::{LinearSummary, LostWriteReport, Recovery, SessionSummary};
use crate::exit::Exit;
use crate::fault::FaultRecord;
use crate::scenario::Scenario;
pub use validity::Validity;

/// Everything the verdict is made from.
pub struct Inputs<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// What the load measured (after warmup).
    pub report: &'a LoadReport,
    /// Every once-a-second snapshot.
    pub snapshots: &'a [Snapshot],
    /// Leader changes, CPU, and nodes that exited on their own.
    pub poll: &'a PollLog,
    /// Acknowledged writes as (invoke, complete), in completion order.
    pub acked: &'a [(f64, f64)],
    /// Invoke times of the operations that completed ok, sorted.
    pub ok_invoked: &'a [f64],
    /// Intended start times of every operation that completed, whatever its outcome, sorted.
    pub done_intended: &'a [f64],
    /// The faults as they happened.
    pub faults: &'a [FaultRecord],
    /// The lost-write check, when it ran.
    pub lost: Option<&'a LostWriteReport>,
    /// Whether the run was stopped early.
    pub aborted: bool,
    /// Whether raftdrill watched the nodes (a drill), or only drove endpoints (`load`).
    pub watched_nodes: bool,
    /// The disk probe's figures, when it ran.
    pub disk: Option<&'a super::disk_probe::DiskProbe>,
    /// The linearizability check.
    pub linear: &'a LinearSummary,
    /// The session check, when the reads were session reads and a history was recorded.
    pub session: Option<&'a SessionSummary>,
    /// At the end, the nodes the scenario expects up that were not up and caught up with the
    /// leader, one line each.
    pub behind: &'a [String],
    /// Checking tasks that panicked, with their message.
    pub panics: &'a [String],
}

/// Recovery of one fault, judged against `recovery_within`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RecoveryEntry {
    /// Index into `faults`.
    pub fault: usize,
    /// Its action.
    pub action: String,
    /// When it fired.
    pub at_s: f64,
    /// The figures.
    #[serde(flatten)]
    pub figures: Recovery,
    /// The limit, when the scenario sets one.
    pub within_s: Option<f64>,
    /// The limit of the recovery after the fault's undo (the scenario's, or the default),
    /// when it was undone during the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_undo_within_s: Option<f64>,
    /// For a limping node (`cpu-limit`): what it did to the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limp: Option<Limp>,
    /// `ok`, or `break` when a figure exceeds its limit or was never reached.
    pub status: Status,
}

/// What a node held to a CPU quota did to the cluster while it limped.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Limp {
    /// It led when the quota began.
    pub led: bool,
    /// It led, and another node took over before the quota was lifted.
    pub replaced: bool,
    /// Seconds during the quota in which the writes' p99 was above the break level.
    pub above_break_s: f64,
    /// That break level, ms (none when the scenario sets no p99 break).
    pub break_ms: Option<f64>,
}

/// The verdict and what it rests on.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `pass`, `warn`, `fail`, `inconclusive` or `aborted`.
    pub verdict: &'static str,
    /// How raftdrill exits.
    pub exit: Exit,
    /// The thresholds over the judged part of the run.
    pub thresholds: Vec<ThresholdResult>,
    /// Recovery per fault that fired.
    pub recovery: Vec<RecoveryEntry>,
    /// Whether the load reached its planned rate outside the fault windows.
    pub validity: Validity,
    /// Why the verdict is not `pass`, one line each, the deciding ones first.
    pub reasons: Vec<String>,
}

/// Judges a run.
pub fn judge(i: &Inputs<'_>) -> Verdict {
    let mut observed = Observed::from_load(i.report.counts(), &i.report.latency(), i.report.tps());
    observed.node_cpu = i.poll.busiest_cpu();
    let thresholds = i.scenario.load.thresholds.evaluate(&observed);
    let recovery = recovery::entries(i);
    let validity = validity::judge(i, &recovery);
    let mut reasons = Vec::new();
    let anomaly = reasons::data(i, &mut reasons);
    let unchecked = reasons::unchecked(i, &validity, &mut reasons);
    reasons::faults(i, &recovery, &mut reasons);
    reasons::thresholds(&thresholds, &mut reasons);
    // A judged window in which nothing completed measured nothing: that is not a pass.
    let nothing_measured = i.report.counts().ops == 0;
    if nothing_measured {
        reasons.push("no operation completed in the judged part of the run".into());
    }
    let broken = worst(&thresholds) == Status::Break
        || recovery.iter().any(|r| r.status == Status::Break)
        || i.faults.iter().any(|f| f.heal_error.is_some())
        || nothing_measured;
    let (verdict, exit) = if anomaly {
        ("fail", Exit::DataAnomaly)
    } else if i.aborted {
        reasons.insert(0, "stopped before the end (Ctrl-C or SIGTERM)".into());
        ("aborted", Exit::CannotRun)
    } else if unchecked {
        ("inconclusive", Exit::Inconclusive)
    } else if broken {
        ("fail", Exit::ThresholdBroken)
    } else if worst(&thresholds) == Status::Warn {
        ("warn", Exit::Pass)
    } else {
        ("pass", Exit::Pass)
    };
    Verdict {
        verdict,
        exit,
        thresholds,
        recovery,
        validity,
        reasons,
    }
}

#[cfg(test)]
mod tests;
