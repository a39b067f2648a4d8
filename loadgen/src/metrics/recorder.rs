//! The per-worker recorder: what a worker touches on the request path.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Accumulator, Counts, new_histogram};
use crate::outcome::{ErrorClass, Outcome};
use crate::workload::OpKind;

/// One worker's histograms and counters for the current interval.
///
/// The lock is a std `Mutex` taken by its own worker once per operation and by the merger
/// once a second for as long as it takes to fold a few histograms in, so the worker almost
/// never waits. Counts are `u32` (half the memory of `u64`): no worker records four billion
/// values in a second.
#[derive(Debug)]
pub struct WorkerRecorder {
    inner: Mutex<Interval>,
}

#[derive(Debug)]
struct Interval {
    counts: Counts,
    latency: [Option<Histogram<u32>>; 4],
    service: [Option<Histogram<u32>>; 4],
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl WorkerRecorder {
    /// A recorder with histograms for `kinds`; other kinds are counted but not timed.
    pub fn new(kinds: impl IntoIterator<Item = OpKind>) -> Self {
        let mut latency: [Option<Histogram<u32>>; 4] = Default::default();
        let mut service: [Option<Histogram<u32>>; 4] = Default::default();
        for k in kinds {
            latency[k.index()] = Some(new_histogram());
            service[k.index()] = Some(new_histogram());
        }
        Self {
            inner: Mutex::new(Interval {
                counts: Counts::default(),
                latency,
                service,
            }),
        }
    }

    /// Record one completed operation. `latency` runs from the intended start (open loop) or
    /// the actual start (closed loop); `service` from the actual start.
    pub fn record(
        &self,
        kind: OpKind,
        latency: Duration,
        service: Duration,
        outcome: Outcome,
        class: Option<ErrorClass>,
        late: bool,
    ) {
        let mut i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        i.counts.add(outcome, class, late);
        if let Some(h) = &mut i.latency[kind.index()] {
            h.saturating_record(micros(latency));
        }
        if let Some(h) = &mut i.service[kind.index()] {
            h.saturating_record(micros(service));
        }
    }

    /// Move this interval's data into `acc` and start a fresh interval.
    pub fn drain_into(&self, acc: &mut Accumulator) {
        let mut i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        acc.counts.merge(&i.counts);
        i.counts = Counts::default();
        for k in OpKind::ALL {
            if let Some(h) = &mut i.latency[k.index()] {
                acc.add_latency(k, h);
                h.reset();
            }
            if let Some(h) = &mut i.service[k.index()] {
                acc.add_service(k, h);
                h.reset();
            }
        }
    }
}
