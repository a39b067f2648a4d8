//! The request path's side of the metrics: a few shards of histograms and counts that the
//! workers record into, drained once a second.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Accumulator, Counts, Outcomes, new_histogram};
use crate::outcome::{ErrorClass, Outcome};
use crate::workload::OpKind;

/// Histograms and counts for the current interval, in shards that workers share.
///
/// Why shards and not one recorder per worker: a full-range histogram (1 µs to 60 s, 3
/// significant digits) is 17,408 counters, and a worker kept four (latency and service time
/// for each of two kinds), about 280 KB: 145 MB for a pool of 512, and a merge each second
/// that walked every counter of every worker. Workers record into shard `worker % shards`
/// instead, with `shards` a small multiple of the cores: at most one worker per core runs at
/// a time, and a record holds the lock for well under a microsecond, so two workers seldom
/// meet on a lock. The histograms are the same, so every percentile is the same.
///
/// Each lock is a std `Mutex`, taken by a worker once per operation and by the merger once a
/// second, only to swap the shard's interval for an empty one.
#[derive(Debug)]
pub struct Recorders {
    shards: Box<[Mutex<Interval>]>,
    /// An empty interval to swap in; only the merger takes it.
    spare: Mutex<Interval>,
}

#[derive(Debug)]
struct Interval {
    counts: Counts,
    outcomes: [Outcomes; 4],
    latency: [Option<Histogram<u64>>; 4],
    service: [Option<Histogram<u64>>; 4],
}

impl Interval {
    fn new(kinds: &[OpKind]) -> Self {
        let mut latency: [Option<Histogram<u64>>; 4] = Default::default();
        let mut service: [Option<Histogram<u64>>; 4] = Default::default();
        for k in kinds {
            latency[k.index()] = Some(new_histogram());
            service[k.index()] = Some(new_histogram());
        }
        Self {
            counts: Counts::default(),
            outcomes: Default::default(),
            latency,
            service,
        }
    }

    /// Moves everything into `acc` and empties itself.
    fn drain_into(&mut self, acc: &mut Accumulator) {
        acc.counts.merge(&self.counts);
        self.counts = Counts::default();
        for k in OpKind::ALL {
            let o = std::mem::take(&mut self.outcomes[k.index()]);
            if !o.is_empty() {
                acc.outcomes_per_kind.entry(k).or_default().merge(&o);
            }
            if let (Some(l), Some(s)) = (&mut self.latency[k.index()], &mut self.service[k.index()])
            {
                acc.add(k, l, s);
                l.reset();
                s.reset();
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Shards for a pool of `workers`: two per core, at most 16, at most one per worker.
fn shard_count(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).clamp(1, 16).min(workers).max(1)
}

impl Recorders {
    /// Recorders for a pool of `workers`, with histograms for `kinds`; other kinds are counted
    /// but not timed.
    pub fn new(workers: usize, kinds: impl IntoIterator<Item = OpKind>) -> Self {
        let kinds: Vec<OpKind> = kinds.into_iter().collect();
        Self {
            shards: (0..shard_count(workers))
                .map(|_| Mutex::new(Interval::new(&kinds)))
                .collect(),
            spare: Mutex::new(Interval::new(&kinds)),
        }
    }

    /// How many shards there are.
    pub(crate) fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Record one completed operation of `worker`. `latency` runs from the intended start
    /// (open loop) or the actual start (closed loop); `service` from the actual start.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        worker: usize,
        kind: OpKind,
        latency: Duration,
        service: Duration,
        outcome: Outcome,
        class: Option<ErrorClass>,
        late: bool,
    ) {
        let shard = &self.shards[worker % self.shards.len()];
        let mut i = shard.lock().unwrap_or_else(PoisonError::into_inner);
        i.counts.add(outcome, class, late);
        i.outcomes[kind.index()].add(outcome);
        if let Some(h) = &mut i.latency[kind.index()] {
            h.saturating_record(micros(latency));
        }
        if let Some(h) = &mut i.service[kind.index()] {
            h.saturating_record(micros(service));
        }
    }

    /// Move the interval's data into `acc` and start a fresh interval. Each shard's lock is
    /// held only to swap its interval for the empty spare.
    pub fn drain_into(&self, acc: &mut Accumulator) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        for shard in self.shards.iter() {
            std::mem::swap(
                &mut *shard.lock().unwrap_or_else(PoisonError::into_inner),
                &mut *spare,
            );
            spare.drain_into(acc);
        }
    }
}
