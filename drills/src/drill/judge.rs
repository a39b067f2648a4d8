//! After the load: evaluate thresholds and recovery, weigh the checks, and decide the verdict
//! and the exit code.

use loadgen::thresholds::{Observed, Status, ThresholdResult, worst};
use loadgen::{LoadReport, Snapshot};
use serde::Serialize;

use super::poller::PollLog;
use crate::check::linear::SummaryStatus;
use crate::check::{
    LinearSummary, LostWriteReport, Observations, Recovery, SessionSummary, WriteTracker, measure,
};
use crate::exit::Exit;
use crate::fault::FaultRecord;
use crate::scenario::Scenario;

/// Above this share of unreadable keys (percent) the lost-write check counts as not carried
/// out.
const MAX_UNREADABLE_PCT: f64 = 1.0;

/// Everything the verdict is made from.
pub struct Inputs<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// What the load measured (after warmup).
    pub report: &'a LoadReport,
    /// Every once-a-second snapshot.
    pub snapshots: &'a [Snapshot],
    /// Leader changes and CPU.
    pub poll: &'a PollLog,
    /// Acknowledged writes as (invoke, complete), in completion order.
    pub acked: &'a [(f64, f64)],
    /// Invoke times of the operations that completed ok, sorted.
    pub ok_invoked: &'a [f64],
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
}

/// Recovery of one fault, judged against `recovery_within`.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// `ok`, or `break` when a figure exceeds the limit.
    pub status: Status,
}

/// The verdict and what it rests on.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `pass`, `warn`, `fail` or `aborted`.
    pub verdict: &'static str,
    /// How raftdrill exits.
    pub exit: Exit,
    /// The thresholds over the judged part of the run.
    pub thresholds: Vec<ThresholdResult>,
    /// Recovery per fault that fired.
    pub recovery: Vec<RecoveryEntry>,
    /// Why the verdict is not `pass`, one line each.
    pub reasons: Vec<String>,
}

/// What the data checks found, as far as the verdict is concerned.
struct Findings {
    /// The history is not linearizable.
    anomaly: bool,
    /// A session read went back in time.
    session_broken: bool,
    /// Linearizability (or the session check) could not be established.
    undecided: bool,
}

/// Judges a run.
pub fn judge(i: &Inputs<'_>) -> Verdict {
    let mut observed = Observed::from_load(i.report.counts(), &i.report.latency(), i.report.tps());
    observed.node_cpu = i.poll.busiest_cpu();
    let thresholds = i.scenario.load.thresholds.evaluate(&observed);
    let recovery = recovery(i);
    let mut reasons = Vec::new();
    threshold_reasons(&thresholds, &mut reasons);
    fault_reasons(i, &recovery, &mut reasons);
    let found = data_reasons(i, &mut reasons);
    // A read-back that failed proves nothing. A few unreadable keys leave the check unknown
    // (at least a warning); many, or any after the whole cluster crashed (where loss is most
    // likely), mean the run could not be checked.
    let unchecked = i.lost.is_some_and(|l| {
        l.unreadable > 0
            && (WriteTracker::unreadable_pct(l) > MAX_UNREADABLE_PCT
                || crashed_a_quorum(i.faults, i.scenario.cluster.nodes))
    });

    // A judged window in which nothing completed measured nothing: that is not a pass.
    let nothing_measured = i.report.counts().ops == 0;
    if nothing_measured {
        reasons.push("no operation completed in the judged part of the run".into());
    }
    let broken = worst(&thresholds) == Status::Break
        || recovery.iter().any(|r| r.status == Status::Break)
        || nothing_measured;
    let warned = worst(&thresholds) == Status::Warn
        || i.faults.iter().any(|f| f.error.is_some())
        || i.lost.is_some_and(|l| l.unreadable > 0)
        || found.undecided;
    let (verdict, exit) =
        if i.lost.is_some_and(|l| l.lost > 0) || found.anomaly || found.session_broken {
            ("fail", Exit::DataAnomaly)
        } else if unchecked && !i.aborted {
            reasons.insert(0, "the lost-write check could not be carried out".into());
            ("fail", Exit::CannotRun)
        } else if i.aborted {
            reasons.insert(0, "stopped before the end (Ctrl-C or SIGTERM)".into());
            ("aborted", Exit::CannotRun)
        } else if broken {
            ("fail", Exit::ThresholdBroken)
        } else if warned {
            ("warn", Exit::Pass)
        } else {
            ("pass", Exit::Pass)
        };
    Verdict {
        verdict,
        exit,
        thresholds,
        recovery,
        reasons,
    }
}

/// Recovery of every fault that fired, judged against the scenario's `recovery_within`.
fn recovery(i: &Inputs<'_>) -> Vec<RecoveryEntry> {
    let load_end = if i.report.canceled {
        i.report.elapsed.min(i.report.planned_duration)
    } else {
        i.report.planned_duration
    }
    .as_secs_f64();
    let expects_writes = i
        .scenario
        .load
        .workload
        .mix()
        .iter()
        .any(|(k, _)| *k != loadgen::workload::OpKind::Read);
    let within = i.scenario.checks.recovery_within.map(|d| d.as_secs_f64());
    i.faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.error.is_none())
        .map(|(n, f)| {
            let obs = Observations {
                leaders: &i.poll.leaders,
                terms: &i.poll.terms,
                started: &i.poll.started,
                acked: i.acked,
                ok_invoked: i.ok_invoked,
                load_end,
            };
            // Only a fault that takes the leader out of service must be followed by a new one.
            let deposed = f.hit_leader.filter(|_| f.deposes);
            let figures = measure(f.at_s, deposed, expects_writes, obs);
            let over = within.map(|w| figures.over(w)).unwrap_or_default();
            let status = if over.is_empty() {
                Status::Ok
            } else {
                Status::Break
            };
            RecoveryEntry {
                fault: n,
                action: f.action.clone(),
                at_s: f.at_s,
                figures,
                within_s: within,
                status,
            }
        })
        .collect()
}

/// A reason per threshold past its warn or break level.
fn threshold_reasons(thresholds: &[ThresholdResult], reasons: &mut Vec<String>) {
    for t in thresholds
        .iter()
        .filter(|t| matches!(t.status, Status::Warn | Status::Break))
    {
        let level = if t.status == Status::Break {
            "break"
        } else {
            "warn"
        };
        reasons.push(format!(
            "{} = {} is past its {level} level",
            t.metric.as_str(),
            show(t.observed)
        ));
    }
}

/// A reason per fault that recovered too slowly, then per fault that could not fire.
fn fault_reasons(i: &Inputs<'_>, recovery: &[RecoveryEntry], reasons: &mut Vec<String>) {
    for r in recovery.iter().filter(|r| r.status == Status::Break) {
        let over = r
            .figures
            .over(r.within_s.unwrap_or(f64::INFINITY))
            .join(", ");
        reasons.push(format!(
            "{} at {:.1}s: {over} over {:.1}s",
            r.action,
            r.at_s,
            r.within_s.unwrap_or(0.0)
        ));
    }
    for f in i.faults.iter().filter(|f| f.error.is_some()) {
        reasons.push(format!(
            "{} {} could not fire: {}",
            f.action,
            f.target,
            f.error.as_deref().unwrap_or("")
        ));
    }
}

/// The reasons of the data checks (lost writes, linearizability, sessions), and what they
/// found.
fn data_reasons(i: &Inputs<'_>, reasons: &mut Vec<String>) -> Findings {
    if let Some(l) = i.lost {
        if l.lost > 0 {
            reasons.push(format!(
                "{} of {} written keys lost acknowledged writes",
                l.lost, l.keys_checked
            ));
        }
        if l.unreadable > 0 {
            reasons.push(format!(
                "lost writes not ruled out: {} of {} keys could not be read back ({} verified)",
                l.unreadable, l.keys_checked, l.verified
            ));
        }
    }
    let anomaly = i.linear.status == SummaryStatus::Anomaly;
    if anomaly {
        // A handful of keys to start from; the whole list is in summary.json and report.md.
        const SHOWN: usize = 5;
        let keys: Vec<&str> = i.linear.anomalies.iter().map(|a| a.key.as_str()).collect();
        let more = match keys.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        reasons.push(format!(
            "the history is not linearizable on {} key(s): {}{more}",
            keys.len(),
            keys[..keys.len().min(SHOWN)].join(", ")
        ));
    }
    let session_broken = i
        .session
        .is_some_and(|s| s.status == SummaryStatus::Anomaly);
    let session_unknown = i
        .session
        .is_some_and(|s| s.status == SummaryStatus::Unknown);
    if let Some(s) = i.session.filter(|s| s.status != SummaryStatus::Ok) {
        reasons.push(s.line());
    }
    let undecided = i.linear.status == SummaryStatus::Unknown || session_unknown;
    if undecided {
        reasons.push(format!(
            "linearizability not established: {}",
            i.linear.reason.clone().unwrap_or_else(|| format!(
                "{} keys undecided within the time limit",
                i.linear.undecided
            ))
        ));
    }
    Findings {
        anomaly,
        session_broken,
        undecided,
    }
}

/// Whether a process fault (kill, stop) took down at least a majority of the voters at once.
fn crashed_a_quorum(faults: &[FaultRecord], nodes: u64) -> bool {
    faults.iter().any(|f| {
        f.error.is_none()
            && matches!(f.action.as_str(), "kill" | "stop" | "power-loss")
            && f.resolved.len() as u64 > nodes / 2
    })
}

fn show(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use loadgen::LoadReport;
    use loadgen::metrics::Accumulator;

    use super::*;
    use crate::check::CheckStatus;
    use crate::scenario::builtin;

    /// A clean report of 1,000 ok operations at 2 ms over a 10 s window.
    fn report() -> LoadReport {
        let mut totals = Accumulator::default();
        totals.counts.ops = 1000;
        totals.counts.ok = 1000;
        for _ in 0..1000 {
            totals.latency.record(2000).unwrap();
        }
        LoadReport {
            elapsed: Duration::from_secs(10),
            planned_duration: Duration::from_secs(10),
            canceled: false,
            started: 1000,
            planned: Some(1000),
            dropped: 0,
            totals,
            history_lines: None,
            warmup: Duration::ZERO,
            snapshots: Vec::new(),
        }
    }

    fn lost(keys: u64, unreadable: u64) -> LostWriteReport {
        LostWriteReport {
            status: if unreadable > 0 {
                CheckStatus::Unknown
            } else {
                CheckStatus::Ok
            },
            acked: keys,
            keys_checked: keys,
            verified: keys - unreadable,
            unreadable,
            ..Default::default()
        }
    }

    fn kill(nodes: &[u64]) -> FaultRecord {
        FaultRecord {
            scheduled_s: 5.0,
            at_s: 5.0,
            action: "kill".into(),
            target: "all".into(),
            resolved: nodes.to_vec(),
            healed_at_s: Some(6.0),
            hit_leader: None,
            deposes: true,
            error: None,
            pending_undo: false,
        }
    }

    fn verdict_of(lost: Option<&LostWriteReport>, faults: &[FaultRecord]) -> Verdict {
        verdict_with(lost, faults, None)
    }

    fn verdict_with(
        lost: Option<&LostWriteReport>,
        faults: &[FaultRecord],
        session: Option<&SessionSummary>,
    ) -> Verdict {
        let scenario = builtin("baseline").unwrap().unwrap();
        let report = report();
        let ok: Vec<f64> = (0..1000).map(|i| f64::from(i) / 100.0).collect();
        judge(&Inputs {
            scenario: &scenario,
            report: &report,
            snapshots: &[],
            poll: &PollLog::default(),
            acked: &[(1.0, 1.1), (6.5, 6.6)],
            ok_invoked: &ok,
            faults,
            lost,
            aborted: false,
            watched_nodes: true,
            disk: None,
            linear: &LinearSummary::skipped("test"),
            session,
        })
    }

    #[test]
    fn a_session_read_that_went_back_in_time_fails_the_run_and_an_unjudged_one_warns() {
        let mut s = SessionSummary {
            status: SummaryStatus::Ok,
            reads_checked: 10,
            reads_unjudged: 0,
            violations: 0,
            examples: Vec::new(),
        };
        assert_eq!(verdict_with(None, &[], Some(&s)).exit, Exit::Pass);
        s.status = SummaryStatus::Anomaly;
        s.violations = 1;
        let v = verdict_with(None, &[], Some(&s));
        assert_eq!((v.verdict, v.exit), ("fail", Exit::DataAnomaly));
        assert!(
            v.reasons.iter().any(|r| r.contains("went back in time")),
            "{:?}",
            v.reasons
        );
        s.status = SummaryStatus::Unknown;
        s.violations = 0;
        let v = verdict_with(None, &[], Some(&s));
        assert_eq!(v.verdict, "warn", "{:?}", v.reasons);
    }

    #[test]
    fn every_key_read_back_passes() {
        let v = verdict_of(Some(&lost(1000, 0)), &[]);
        assert_eq!((v.verdict, v.exit), ("pass", Exit::Pass), "{:?}", v.reasons);
    }

    #[test]
    fn a_few_unreadable_keys_leave_loss_unknown_and_warn() {
        let v = verdict_of(Some(&lost(1000, 5)), &[]);
        assert_eq!((v.verdict, v.exit), ("warn", Exit::Pass));
        assert!(
            v.reasons.iter().any(|r| r.contains("not ruled out")),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn many_unreadable_keys_mean_the_check_could_not_be_done() {
        let v = verdict_of(Some(&lost(1000, 11)), &[]);
        assert_eq!(
            (v.verdict, v.exit),
            ("fail", Exit::CannotRun),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn any_unreadable_key_after_a_whole_cluster_crash_fails() {
        let v = verdict_of(Some(&lost(1000, 1)), &[kill(&[1, 2, 3])]);
        assert_eq!(
            (v.verdict, v.exit),
            ("fail", Exit::CannotRun),
            "{:?}",
            v.reasons
        );
        let one_node = verdict_of(Some(&lost(1000, 1)), &[kill(&[2])]);
        assert_eq!(
            one_node.verdict, "warn",
            "a minority crash keeps the 1 % rule"
        );
    }

    #[test]
    fn a_run_that_measured_nothing_does_not_pass() {
        let scenario = builtin("baseline").unwrap().unwrap();
        let mut empty = report();
        empty.totals = Accumulator::default();
        let v = judge(&Inputs {
            scenario: &scenario,
            report: &empty,
            snapshots: &[],
            poll: &PollLog::default(),
            acked: &[],
            ok_invoked: &[],
            faults: &[],
            lost: None,
            aborted: false,
            watched_nodes: true,
            disk: None,
            linear: &LinearSummary::skipped("test"),
            session: None,
        });
        assert_eq!((v.verdict, v.exit), ("fail", Exit::ThresholdBroken));
    }
}
