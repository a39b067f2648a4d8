//! The recovery of every fault that fired: its figures from the fault on (judged against
//! `recovery_within` when the scenario sets it), and, for a fault undone during the load, its
//! recovery after the undo, judged by default: a fault that never recovers does not pass.

use loadgen::thresholds::Status;

use super::{Inputs, Limp, RecoveryEntry};
use crate::check::{Observations, after_undo, measure};
use crate::scenario::DEFAULT_RECOVERY_WITHIN;

/// When the load ended, seconds from the start.
pub(super) fn load_end(i: &Inputs<'_>) -> f64 {
    if i.report.canceled {
        i.report.elapsed.min(i.report.planned_duration)
    } else {
        i.report.planned_duration
    }
    .as_secs_f64()
}

/// Recovery of every fault that fired.
pub(super) fn entries(i: &Inputs<'_>) -> Vec<RecoveryEntry> {
    let load_end = load_end(i);
    let expects_writes = i
        .scenario
        .load
        .workload
        .mix()
        .iter()
        .any(|(k, _)| *k != loadgen::workload::OpKind::Read);
    let within = i.scenario.checks.recovery_within.map(|d| d.as_secs_f64());
    let undo_limit = within.unwrap_or(DEFAULT_RECOVERY_WITHIN.as_secs_f64());
    let obs = Observations {
        leaders: &i.poll.leaders,
        terms: &i.poll.terms,
        started: &i.poll.started,
        acked: i.acked,
        ok_invoked: i.ok_invoked,
        load_end,
    };
    i.faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.error.is_none())
        .map(|(n, f)| {
            // Only a fault that takes the leader out of service must be followed by a new one.
            let deposed = f.hit_leader.filter(|_| f.deposes);
            let mut figures = measure(f.at_s, deposed, expects_writes, obs);
            // Undone while the load ran: it must come back, whatever the scenario says.
            let undone = f.healed_at_s.filter(|h| *h < load_end);
            figures.after_undo_s = undone.and_then(|h| after_undo(h, expects_writes, obs));
            let mut entry = RecoveryEntry {
                fault: n,
                action: f.action.clone(),
                at_s: f.at_s,
                figures,
                within_s: within,
                after_undo_within_s: undone.map(|_| undo_limit),
                limp: (f.action == "cpu-limit").then(|| limp(i, f, load_end)),
                status: Status::Ok,
            };
            if !over(&entry).is_empty() {
                entry.status = Status::Break;
            }
            entry
        })
        .collect()
}

/// The figures of `r` over their limits, or never reached, by name.
pub(super) fn over(r: &RecoveryEntry) -> Vec<&'static str> {
    let mut over = r.within_s.map(|w| r.figures.over(w)).unwrap_or_default();
    let late = match (r.figures.after_undo_s, r.after_undo_within_s) {
        (Some(a), Some(limit)) => a > limit,
        (None, Some(_)) => true,
        _ => false,
    };
    if late && !over.contains(&"after_undo_s") {
        over.push("after_undo_s");
    }
    over
}

/// What a limping node (held to a CPU quota) did to the cluster: whether it led when the quota
/// began and was replaced as leader before the quota ended, and for how many seconds the
/// writes' p99 stayed above the break level meanwhile. A finding about the store, not a
/// verdict of its own.
fn limp(i: &Inputs<'_>, f: &crate::fault::FaultRecord, load_end: f64) -> Limp {
    let until = f.healed_at_s.unwrap_or(load_end).min(load_end);
    let replaced = f.hit_leader.is_some_and(|old| {
        i.poll
            .leaders
            .iter()
            .any(|(t, l)| *t >= f.at_s && *t <= until && l.is_some_and(|l| l != old))
    });
    let break_ms = i
        .scenario
        .load
        .thresholds
        .0
        .get(&loadgen::thresholds::Metric::P99)
        .and_then(|l| l.brk);
    let writes_p99 = |s: &loadgen::Snapshot| {
        s.per_kind
            .iter()
            .filter(|(k, _)| **k != loadgen::workload::OpKind::Read)
            .map(|(_, l)| l.p99)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let above_break_s = break_ms.map_or(0.0, |b| {
        i.snapshots
            .iter()
            .filter(|s| s.t > f.at_s && s.t - s.interval < until)
            .filter(|s| writes_p99(s).is_some_and(|p| p > b))
            .map(|s| s.interval)
            // A float sum of nothing is -0.0, which prints as "-0".
            .sum::<f64>()
            + 0.0
    });
    Limp {
        led: f.hit_leader.is_some(),
        replaced,
        above_break_s,
        break_ms,
    }
}
