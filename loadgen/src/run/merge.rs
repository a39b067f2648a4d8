//! The 1-Hz merger: every worker's interval folded into one [`Snapshot`] a second.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::metrics::{Accumulator, LatencyBuckets, LatencySummary, Recorders, Snapshot};
use crate::stream::Interval;

/// Once a second, fold every worker's interval into a [`Snapshot`] and publish it; when `done`
/// fires, publish the last one and return the run's totals (intervals that began before the
/// end of `warmup` left out) and every snapshot.
pub(super) async fn merge_every_second(
    recorders: Arc<Recorders>,
    clock: Arc<RunClock>,
    warmup: Duration,
    snapshots: watch::Sender<Snapshot>,
    intervals: Vec<mpsc::UnboundedSender<Interval>>,
    done: CancellationToken,
) -> (Accumulator, Vec<Snapshot>) {
    let start = tokio::select! {
        origin = clock.started() => origin,
        // Stopped before the pool was ready: nothing ran, nothing to publish but the end.
        _ = done.cancelled() => {
            let last = Snapshot { last: true, ..Snapshot::default() };
            snapshots.send_replace(last.clone());
            return (Accumulator::default(), vec![last]);
        }
    };
    let mut record = Vec::new();
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interval = Accumulator::default();
    let mut run = Accumulator::default();
    let mut last = start;
    loop {
        let finished = tokio::select! {
            _ = ticker.tick() => false,
            _ = done.cancelled() => true,
        };
        let now = Instant::now();
        recorders.drain_into(&mut interval);
        // A few milliseconds of tick jitter must not put the first window after warmup out.
        let in_warmup = (last - start) + Duration::from_millis(50) < warmup;
        if !in_warmup {
            run.merge(&interval);
        }
        let secs = (now - last).as_secs_f64();
        let snapshot = Snapshot {
            t: (now - start).as_secs_f64(),
            interval: secs,
            counts: interval.counts,
            tps: if secs > 0.0 {
                interval.counts.ops as f64 / secs
            } else {
                0.0
            },
            latency: LatencySummary::from_histogram(&interval.latency),
            per_kind: interval.per_kind_summary(),
            total: run.counts,
            total_per_kind: run.outcomes_per_kind.clone(),
            last: finished,
            warmup: in_warmup,
            run_latency: LatencyBuckets::of(&run.latency),
        };
        record.push(snapshot.clone());
        for out in &intervals {
            let _ = out.send(Interval {
                snapshot: snapshot.clone(),
                acc: interval.clone(),
            });
        }
        snapshots.send_replace(snapshot);
        interval.reset();
        last = now;
        if finished {
            return (run, record);
        }
    }
}
