//! The lines that say why a verdict is not a pass, by kind, and what each kind found.

use loadgen::thresholds::{Status, ThresholdResult};

use super::recovery::over;
use super::{Inputs, RecoveryEntry, Validity};
use crate::check::linear::SummaryStatus;

/// The data checks (lost writes, linearizability, sessions): their reasons, and whether they
/// found an anomaly.
pub(super) fn data(i: &Inputs<'_>, reasons: &mut Vec<String>) -> bool {
    let lost = i.lost.is_some_and(|l| l.lost > 0);
    if let Some(l) = i.lost.filter(|l| l.lost > 0) {
        reasons.push(format!(
            "{} of {} written keys lost acknowledged writes",
            l.lost, l.keys_checked
        ));
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
    if let Some(s) = i.session.filter(|s| s.status == SummaryStatus::Anomaly) {
        reasons.push(s.line());
    }
    lost || anomaly || session_broken
}

/// What the scenario asked to be checked and was not: its reasons, and whether there was any.
/// A run stopped early is `aborted`, not unchecked: what it skipped for that is not listed.
pub(super) fn unchecked(i: &Inputs<'_>, validity: &Validity, reasons: &mut Vec<String>) -> bool {
    let before = reasons.len();
    for (n, f) in i
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.error.is_some())
    {
        reasons.push(format!(
            "fault {} ({} {}) did not fire: {}",
            n + 1,
            f.action,
            f.target,
            f.error.as_deref().unwrap_or("")
        ));
    }
    if let Some(l) = i.lost.filter(|l| l.unreadable > 0) {
        reasons.push(format!(
            "lost writes not ruled out: {} of {} keys could not be read back ({} verified)",
            l.unreadable, l.keys_checked, l.verified
        ));
    }
    if !i.aborted {
        linearizability(i, reasons);
    }
    if let Some(s) = i.session.filter(|s| s.status == SummaryStatus::Unknown) {
        reasons.push(s.line());
    }
    let may = &i.scenario.checks.may_stay_down;
    for e in i.poll.exits.iter().filter(|e| !may.contains(&e.node)) {
        reasons.push(format!(
            "node {} exited on its own ({}) at {:.1}s",
            e.node, e.status, e.at_s
        ));
    }
    reasons.extend(i.behind.iter().cloned());
    reasons.extend(validity.reason());
    for p in i.panics {
        reasons.push(format!("a check could not finish: {p}"));
    }
    reasons.len() > before
}

/// The linearizability check left undecided, or skipped though the scenario asked for it.
fn linearizability(i: &Inputs<'_>, reasons: &mut Vec<String>) {
    match i.linear.status {
        SummaryStatus::Unknown => reasons.push(format!(
            "linearizability not established: {}",
            i.linear.reason.clone().unwrap_or_else(|| format!(
                "{} keys undecided within the time limit",
                i.linear.undecided
            ))
        )),
        SummaryStatus::Skipped if i.scenario.checks.linearizability => reasons.push(format!(
            "linearizability not checked: {}",
            i.linear.reason.as_deref().unwrap_or("skipped")
        )),
        _ => {}
    }
}

/// A reason per fault that recovered too slowly (or never), and per heal that failed.
pub(super) fn faults(i: &Inputs<'_>, recovery: &[RecoveryEntry], reasons: &mut Vec<String>) {
    for r in recovery.iter().filter(|r| r.status == Status::Break) {
        let over = over(r).join(", ");
        let limit = r.after_undo_within_s.or(r.within_s).unwrap_or(0.0);
        reasons.push(format!(
            "{} at {:.1}s did not recover in time: {over} over {limit:.1}s (or never reached)",
            r.action, r.at_s
        ));
    }
    for (n, f) in i.faults.iter().enumerate() {
        if let Some(e) = &f.heal_error {
            reasons.push(format!(
                "the heal of fault {} ({} {}) failed: {e}",
                n + 1,
                f.action,
                f.target
            ));
        }
    }
}

/// A reason per threshold past its warn or break level.
pub(super) fn thresholds(thresholds: &[ThresholdResult], reasons: &mut Vec<String>) {
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
            t.observed.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
        ));
    }
}
