//! What the drill follows while the load runs, off the request path: the stream of completed
//! operations (for the lost-write check and the recovery figures), the load's phase, and the
//! one-line notes of the checks for the event log.

use std::time::Duration;

use loadgen::Snapshot;
use loadgen::history::OpRecord;
use tokio::sync::{mpsc, watch};

use super::Phase;
use crate::check::WriteTracker;

/// What the drill learns from the stream of completed operations.
#[derive(Default)]
pub struct Tracked {
    /// Every write, for the lost-write check.
    pub writes: WriteTracker,
    /// Acknowledged writes as (invoke, complete) seconds, in completion order.
    pub acked: Vec<(f64, f64)>,
    /// Intended start times of the operations that completed ok, sorted (the actual start in
    /// closed loop): an open loop's intended starts are evenly spread whatever the scheduler
    /// did, so a window of them measures the store, not this machine's jitter.
    pub ok_invoked: Vec<f64>,
    /// Intended start times of every operation that completed, whatever its outcome, sorted:
    /// what the load carried out of its plan (the validity check).
    pub done_intended: Vec<f64>,
}

/// Folds the load's operation stream until it ends.
pub async fn track_ops(mut rx: mpsc::UnboundedReceiver<OpRecord>) -> Tracked {
    let secs = |us: u64| us as f64 / 1e6;
    let mut t = Tracked::default();
    while let Some(op) = rx.recv().await {
        t.done_intended.push(secs(op.intended_us));
        if op.outcome == loadgen::outcome::Outcome::Ok {
            t.ok_invoked.push(secs(op.intended_us));
        }
        if let Some(w) = &op.write {
            if w.status == loadgen::history::WriteStatus::Acked {
                t.acked.push((secs(op.invoke_us), secs(op.complete_us)));
            }
            t.writes.observe(w);
        }
    }
    t.ok_invoked.sort_by(f64::total_cmp);
    t.done_intended.sort_by(f64::total_cmp);
    if crate::testing::hook(crate::testing::Hook::PanicTracker) {
        panic!("the operation tracker: {}", crate::testing::PLANTED);
    }
    t
}

/// Moves the phase from warmup to load when the first judged snapshot arrives, until the
/// load's last snapshot. (The record of every snapshot comes with the load's report.)
pub async fn follow_phase(
    mut snaps: watch::Receiver<Snapshot>,
    phase: watch::Sender<Phase>,
    warmup: Duration,
) {
    phase.send_replace(if warmup.is_zero() {
        Phase::Load
    } else {
        Phase::Warmup
    });
    while snaps.changed().await.is_ok() {
        let (judged, last) = {
            let s = snaps.borrow_and_update();
            (!s.warmup, s.last)
        };
        if judged {
            phase.send_if_modified(|p| (*p == Phase::Warmup).then(|| *p = Phase::Load).is_some());
        }
        if last {
            break;
        }
    }
}

/// The event line of the linearizability check.
pub fn linear_note(l: &crate::check::LinearSummary) -> String {
    use crate::check::linear::SummaryStatus;
    match l.status {
        SummaryStatus::Ok => format!(
            "linearizable: {} keys, {} ops checked in {:.1}s",
            l.keys, l.ops, l.elapsed_s
        ),
        SummaryStatus::Anomaly => format!(
            "NOT linearizable: {} of {} keys (see anomaly-*.svg)",
            l.anomalies.len(),
            l.keys
        ),
        SummaryStatus::Unknown => format!(
            "linearizability undecided: {}",
            l.reason
                .clone()
                .unwrap_or_else(|| format!("{} keys past the time limit", l.undecided))
        ),
        SummaryStatus::Skipped => format!(
            "linearizability not checked: {}",
            l.reason.as_deref().unwrap_or("skipped")
        ),
    }
}

/// What a task that panicked said.
pub(crate) fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "it panicked".into()),
        Err(e) => e.to_string(),
    }
}
