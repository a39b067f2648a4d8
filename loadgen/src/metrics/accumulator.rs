//! Merged histograms and counts: one interval's, or the whole run's.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::{Counts, LatencySummary, Outcomes, new_histogram};
use crate::workload::OpKind;

/// Histograms (microseconds) and counts merged from many workers.
#[derive(Debug, Clone)]
pub struct Accumulator {
    /// Operation counts.
    pub counts: Counts,
    /// Latency of every operation.
    pub latency: Histogram<u64>,
    /// Service time (from the actual start) of every operation.
    pub service: Histogram<u64>,
    /// Latency per kind.
    pub latency_per_kind: BTreeMap<OpKind, Histogram<u64>>,
    /// Service time per kind.
    pub service_per_kind: BTreeMap<OpKind, Histogram<u64>>,
    /// Outcomes per kind (every kind counted, timed or not).
    pub outcomes_per_kind: BTreeMap<OpKind, Outcomes>,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self {
            counts: Counts::default(),
            latency: new_histogram(),
            service: new_histogram(),
            latency_per_kind: BTreeMap::new(),
            service_per_kind: BTreeMap::new(),
            outcomes_per_kind: BTreeMap::new(),
        }
    }
}

impl Accumulator {
    /// Fold in one kind's latency and service-time histograms (of the crate's bounds).
    pub fn add(&mut self, kind: OpKind, latency: &Histogram<u64>, service: &Histogram<u64>) {
        if !latency.is_empty() {
            add(&mut self.latency, latency);
            add(
                self.latency_per_kind
                    .entry(kind)
                    .or_insert_with(new_histogram),
                latency,
            );
        }
        if !service.is_empty() {
            add(&mut self.service, service);
            add(
                self.service_per_kind
                    .entry(kind)
                    .or_insert_with(new_histogram),
                service,
            );
        }
    }

    /// Add everything in `other`.
    pub fn merge(&mut self, other: &Accumulator) {
        self.counts.merge(&other.counts);
        for (k, o) in &other.outcomes_per_kind {
            self.outcomes_per_kind.entry(*k).or_default().merge(o);
        }
        add(&mut self.latency, &other.latency);
        add(&mut self.service, &other.service);
        for (k, h) in &other.latency_per_kind {
            add(
                self.latency_per_kind
                    .entry(*k)
                    .or_insert_with(new_histogram),
                h,
            );
        }
        for (k, h) in &other.service_per_kind {
            add(
                self.service_per_kind
                    .entry(*k)
                    .or_insert_with(new_histogram),
                h,
            );
        }
    }

    /// Empty it, keeping the allocations.
    pub fn reset(&mut self) {
        self.counts = Counts::default();
        self.outcomes_per_kind.clear();
        self.latency.reset();
        self.service.reset();
        self.latency_per_kind
            .values_mut()
            .for_each(Histogram::reset);
        self.service_per_kind
            .values_mut()
            .for_each(Histogram::reset);
    }

    /// Latency percentiles per kind (kinds with no values left out).
    pub fn per_kind_summary(&self) -> BTreeMap<OpKind, LatencySummary> {
        self.latency_per_kind
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(k, h)| (*k, LatencySummary::from_histogram(h)))
            .collect()
    }
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Same bounds on both sides, so this cannot fail; fall back to folding just in case.
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::Recorders;
    use crate::outcome::{ErrorClass, Outcome};

    #[test]
    fn worker_histograms_merge_and_reset() {
        let a = Recorders::new(8, [OpKind::Read, OpKind::Update]);
        let b = Recorders::new(1, [OpKind::Read, OpKind::Update]);
        assert!(a.shards() >= 1 && b.shards() == 1);
        for ms in 1..=100u64 {
            a.record(
                ms as usize,
                OpKind::Read,
                Duration::from_millis(ms),
                Duration::from_millis(1),
                Outcome::Ok,
                None,
                false,
            );
        }
        b.record(
            3,
            OpKind::Update,
            Duration::from_secs(120),
            Duration::from_secs(2),
            Outcome::Unknown,
            Some(ErrorClass::Timeout),
            true,
        );
        let mut interval = Accumulator::default();
        a.drain_into(&mut interval);
        b.drain_into(&mut interval);
        assert_eq!(interval.counts.ops, 101);
        assert_eq!(interval.counts.ok, 100);
        assert_eq!(interval.counts.unknown, 1);
        assert_eq!(interval.counts.late, 1);
        assert_eq!(interval.counts.errors.timeout, 1);
        assert_eq!(interval.latency.len(), 101);
        let by_kind = &interval.outcomes_per_kind;
        assert_eq!(by_kind[&OpKind::Read].ok, 100);
        assert_eq!(by_kind[&OpKind::Update].unknown, 1);
        assert_eq!(by_kind[&OpKind::Update].ok, 0);
        // A kind counted but not timed still counts.
        b.record(
            0,
            OpKind::Insert,
            Duration::ZERO,
            Duration::ZERO,
            Outcome::Fail,
            None,
            false,
        );
        let mut insert = Accumulator::default();
        b.drain_into(&mut insert);
        assert_eq!(insert.outcomes_per_kind[&OpKind::Insert].fail, 1);
        let read = LatencySummary::from_histogram(&interval.latency_per_kind[&OpKind::Read]);
        assert!((read.p50 - 50.0).abs() < 0.1, "{read:?}");
        assert!((read.max - 100.0).abs() < 0.1, "{read:?}");
        // 120 s is clamped to the 60 s ceiling.
        let update = &interval.latency_per_kind[&OpKind::Update];
        assert!(update.max() >= 59_900_000 && update.max() <= 60_100_000);

        let mut run = Accumulator::default();
        run.merge(&interval);
        run.merge(&interval);
        assert_eq!(run.counts.ops, 202);
        assert_eq!(run.outcomes_per_kind[&OpKind::Read].ok, 200);
        assert_eq!(run.latency.len(), 202);

        // Draining again finds the workers empty.
        let mut next = Accumulator::default();
        a.drain_into(&mut next);
        b.drain_into(&mut next);
        assert_eq!(next.counts.ops, 0);
        assert!(next.outcomes_per_kind.is_empty());
        // Outcomes per kind cross the wire to a remote controller (as JSON).
        let sent = crate::stream::Interval {
            snapshot: Default::default(),
            acc: interval.clone(),
        };
        let line = serde_json::to_string(&crate::stream::IntervalWire::new(1, &sent).unwrap());
        let back: crate::stream::IntervalWire = serde_json::from_str(&line.unwrap()).unwrap();
        assert_eq!(
            back.accumulator().unwrap().outcomes_per_kind,
            interval.outcomes_per_kind
        );
        run.reset();
        assert!(run.outcomes_per_kind.is_empty());
        assert!(next.latency.is_empty());
    }
}
