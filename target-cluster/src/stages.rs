//! Where a write's time goes, stage by stage: a small histogram per stage that the node fills
//! as it works and `GET /admin/stages` reads (`?reset=true` starts over), so a benchmark can
//! put the breakdown beside the client's own latency.
//!
//! The stages a write passes through, as the node sees them:
//! - `write`: on the leader, `client_write` from the proposal until openraft returns it applied
//!   (everything below, plus the time the entry waits in openraft's core);
//! - `log_append`: on every node, a log append from the call until the writer thread has made
//!   it durable (queueing behind other jobs, the write and its fdatasync); a leader that
//!   reports its own appends early (`LogStore::reports_early`) lets replication start before
//!   this ends;
//! - `replicate`: on the leader, one AppendEntries round trip to a follower (HTTP both ways,
//!   the follower's append and its fsync); heartbeats without entries are not counted;
//! - `replicate_empty`: on the leader, one AppendEntries round trip without entries (a
//!   heartbeat, or openraft telling a follower the new commit index);
//! - `replicate_wait`: on the leader, per follower, from the answer of one AppendEntries with
//!   entries to the start of the next one (while entries keep coming, this is the time openraft
//!   takes to hand the stream its next batch);
//! - `follower_append`: on a follower, openraft's handling of one AppendEntries with entries
//!   (its append and fsync, then the answer);
//! - `apply`: on every node, one call applying committed entries to the state machine.
//!
//! Two more split the leader's `write` by the moments its entry passed: `write_to_flush`, from
//! the proposal until the leader's own log append of that entry was durable, and
//! `write_to_apply`, until the leader's state machine applied it.
//!
//! Each stage also counts the items it carried (entries per append, per round trip, per
//! apply), which shows how well the node batches under load.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use raftdrill_wire::StageTimes;

/// One of the measured stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// `client_write` on the leader: proposal to applied.
    Write,
    /// A log append until durable.
    LogAppend,
    /// One AppendEntries round trip with entries, leader side.
    Replicate,
    /// One AppendEntries round trip without entries, leader side.
    ReplicateEmpty,
    /// From one AppendEntries answer to the next AppendEntries with entries, leader side.
    ReplicateWait,
    /// One AppendEntries with entries, follower side.
    FollowerAppend,
    /// One state-machine apply call.
    Apply,
    /// A write, from the proposal until its entry was durable in the leader's log.
    WriteToFlush,
    /// A write, from the proposal until the leader's state machine applied its entry.
    WriteToApply,
}

impl Stage {
    /// The name in `/admin/stages`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Write => "write",
            Stage::LogAppend => "log_append",
            Stage::Replicate => "replicate",
            Stage::ReplicateWait => "replicate_wait",
            Stage::ReplicateEmpty => "replicate_empty",
            Stage::FollowerAppend => "follower_append",
            Stage::Apply => "apply",
            Stage::WriteToFlush => "write_to_flush",
            Stage::WriteToApply => "write_to_apply",
        }
    }
}

struct Hist {
    micros: hdrhistogram::Histogram<u64>,
    items: u64,
}

impl Hist {
    fn new() -> Self {
        Self {
            micros: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("constant bounds are valid"),
            items: 0,
        }
    }
}

/// Slots of the per-index moment tables: more entries than a node commits within a request
/// timeout, so a write finds its own entry's moment, not a later entry's in the same slot.
const MOMENT_SLOTS: usize = 1 << 17;

/// When each recent log index passed a point (nanoseconds after `base`, plus one; 0: unknown).
struct Moments {
    slots: Box<[AtomicU64]>,
}

impl Moments {
    fn new() -> Self {
        Self {
            slots: (0..MOMENT_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, index: u64) -> &AtomicU64 {
        &self.slots[(index % MOMENT_SLOTS as u64) as usize]
    }
}

/// The node's stage timings.
pub struct Stages {
    inner: Mutex<BTreeMap<Stage, Hist>>,
    base: Instant,
    flushed: Moments,
    applied: Moments,
}

impl Default for Stages {
    fn default() -> Self {
        Self {
            inner: Mutex::new(BTreeMap::new()),
            base: Instant::now(),
            flushed: Moments::new(),
            applied: Moments::new(),
        }
    }
}

impl std::fmt::Debug for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stages").finish_non_exhaustive()
    }
}

impl Stages {
    /// One pass through `stage` that took `took` and carried `items`.
    pub fn record(&self, stage: Stage, took: Duration, items: usize) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut m) = self.inner.lock() {
            let h = m.entry(stage).or_insert_with(Hist::new);
            h.micros.saturating_record(us.max(1));
            h.items += items as u64;
        }
    }

    /// Log entries `first..=last` are durable in this node's log now.
    pub fn flushed(&self, first: u64, last: u64) {
        self.mark(&self.flushed, first, last);
    }

    /// Log entries `first..=last` are applied to this node's state machine now.
    pub fn applied(&self, first: u64, last: u64) {
        self.mark(&self.applied, first, last);
    }

    fn mark(&self, table: &Moments, first: u64, last: u64) {
        let now = self.base.elapsed().as_nanos() as u64 + 1;
        for index in first..=last.min(first + MOMENT_SLOTS as u64) {
            table.slot(index).store(now, Ordering::Relaxed);
        }
    }

    /// A write proposed at `started` came back applied at `index`: splits its time by when
    /// its entry was flushed and applied here.
    pub fn write_done(&self, started: Instant, index: u64, took: Duration) {
        self.record(Stage::Write, took, 1);
        let Some(from) = started.checked_duration_since(self.base) else {
            return;
        };
        let from = from.as_nanos() as u64 + 1;
        for (table, stage) in [
            (&self.flushed, Stage::WriteToFlush),
            (&self.applied, Stage::WriteToApply),
        ] {
            let at = table.slot(index).load(Ordering::Relaxed);
            // A moment before the proposal is another (older) entry's in the same slot.
            if at >= from {
                self.record(stage, Duration::from_nanos(at - from), 1);
            }
        }
    }

    /// The figures so far, by stage name; with `reset`, starts over afterwards.
    pub fn report(&self, reset: bool) -> BTreeMap<String, StageTimes> {
        let Ok(mut m) = self.inner.lock() else {
            return BTreeMap::new();
        };
        let out = m
            .iter()
            .map(|(stage, h)| {
                let ms = |us: u64| us as f64 / 1000.0;
                let n = h.micros.len();
                let times = StageTimes {
                    count: n,
                    items_per_pass: if n == 0 {
                        0.0
                    } else {
                        h.items as f64 / n as f64
                    },
                    mean_ms: h.micros.mean() / 1000.0,
                    p50_ms: ms(h.micros.value_at_quantile(0.5)),
                    p99_ms: ms(h.micros.value_at_quantile(0.99)),
                    max_ms: ms(h.micros.max()),
                };
                (stage.as_str().to_string(), times)
            })
            .collect();
        if reset {
            m.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_stage_and_resets() {
        let s = Stages::default();
        for ms in 1..=100 {
            s.record(Stage::Write, Duration::from_millis(ms), 1);
        }
        s.record(Stage::Replicate, Duration::from_millis(2), 10);
        s.record(Stage::Replicate, Duration::from_millis(4), 30);
        let r = s.report(true);
        let w = &r["write"];
        assert_eq!(w.count, 100);
        assert!((w.p50_ms - 50.0).abs() < 0.5, "{w:?}");
        assert!((w.p99_ms - 99.0).abs() < 0.5, "{w:?}");
        assert!((w.mean_ms - 50.5).abs() < 0.5, "{w:?}");
        let rep = &r["replicate"];
        assert_eq!(rep.count, 2);
        assert!((rep.items_per_pass - 20.0).abs() < 1e-9);
        assert!(!r.contains_key("apply"));
        assert!(s.report(false).is_empty(), "reset starts over");
    }
}
