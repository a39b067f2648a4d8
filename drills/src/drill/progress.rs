//! The headless progress line, once a second on stderr:
//! `t=12s tps=498 p99=12.3ms err=0.0% leader=2 next: kill leader in 8s`.

use tokio_util::sync::CancellationToken;

use super::DrillWatch;
use crate::scenario::FaultSpec;

/// Formats one progress line; `faults` is the schedule, to say what comes next.
pub fn line(faults: &[FaultSpec], w: &DrillWatch) -> String {
    let s = w.snapshots.borrow().clone();
    let view = w.cluster.borrow().clone();
    let phase = *w.phase.borrow();
    let t = w.clock.now_s();
    let err = s.counts.error_rate().unwrap_or(0.0);
    let leader = view.leader.map_or("-".into(), |l| l.to_string());
    let fired = w.faults.lock().map(|f| f.len()).unwrap_or(0);
    let next = faults
        .get(fired)
        .map(|f| {
            let wait = (f.at.as_secs_f64() - t).max(0.0);
            format!(" next: {} {} in {:.0}s", f.action.name(), f.target, wait)
        })
        .unwrap_or_default();
    format!(
        "t={t:.0}s [{}] tps={:.0} p99={:.1}ms err={err:.1}% late={} leader={leader}{next}",
        phase.name(),
        s.tps,
        s.latency.p99,
        s.counts.late
    )
}

/// Prints a line each time a snapshot arrives, until the load ends or `stop`.
pub async fn run(faults: Vec<FaultSpec>, mut w: DrillWatch, stop: CancellationToken) {
    loop {
        tokio::select! {
            r = w.snapshots.changed() => if r.is_err() { return },
            _ = stop.cancelled() => return,
        }
        let (last, interval) = {
            let s = w.snapshots.borrow();
            (s.last, s.interval)
        };
        // The last snapshot covers only the tail of the run; its rate says nothing.
        if !last || interval >= 0.5 {
            eprintln!("{}", line(&faults, &w));
        }
        if last {
            return;
        }
    }
}
