//! Load from several machines: what one generator streams to the controller, one JSON line at
//! a time, and how the controller merges the generators' seconds into one run.
//!
//! A generator (`raftdrill load --stream`) writes [`Line`]s: its clock's origin on its wall
//! clock, every completed operation (for the drill's lost-write check and recovery figures),
//! each second's histograms (HdrHistogram's V2 deflate encoding in base64, the encoding of an
//! interval log's lines) and, at the end, its report. The controller decodes each second with
//! [`IntervalWire::accumulator`] and folds the generators' seconds with a [`Merger`]: HDR
//! histograms of the same bounds add bucket by bucket, so the merged percentiles are those of
//! the pooled raw values, exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::LoadReport;
use crate::history::{OpRecord, WriteRecord};
use crate::metrics::{Accumulator, Counts, LatencySummary, Snapshot};
use crate::outcome::Outcome;
use crate::workload::OpKind;

/// One second of a run as its merger saw it: the published snapshot and the histograms behind
/// it (from [`crate::LoadRun::take_intervals`]).
#[derive(Debug, Clone)]
pub struct Interval {
    /// The snapshot published for the second.
    pub snapshot: Snapshot,
    /// The second's histograms and counts.
    pub acc: Accumulator,
}

/// A line of a generator's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// The generator's clock started: its origin on its own wall clock.
    Origin {
        /// Unix microseconds.
        unix_us: u64,
    },
    /// A completed operation.
    Op(OpWire),
    /// One second's figures.
    Interval(IntervalWire),
    /// The run's end.
    End(EndWire),
}

impl Line {
    /// The line as one line of JSON with its newline.
    pub fn to_json_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("stream lines serialize");
        s.push('\n');
        s
    }
}

/// A completed operation on the wire (times from the generator's origin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpWire {
    /// Intended start, µs.
    pub i: u64,
    /// Actual start, µs.
    pub s: u64,
    /// Completion, µs.
    pub c: u64,
    /// How it ended.
    pub o: Outcome,
    /// A write's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<WriteRecord>,
}

impl From<&OpRecord> for OpWire {
    fn from(r: &OpRecord) -> Self {
        Self {
            i: r.intended_us,
            s: r.invoke_us,
            c: r.complete_us,
            o: r.outcome,
            w: r.write.clone(),
        }
    }
}

impl OpWire {
    /// The record, its times moved by `shift_us` (this generator's origin less the
    /// controller's, on the controller's clock; times before the origin clamp to 0).
    pub fn record(self, shift_us: i64) -> OpRecord {
        let at = |us: u64| (us as i64 + shift_us).max(0) as u64;
        OpRecord {
            intended_us: at(self.i),
            invoke_us: at(self.s),
            complete_us: at(self.c),
            outcome: self.o,
            write: self.w,
        }
    }
}

/// One second of one generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalWire {
    /// The second's number, from 1.
    pub n: u32,
    /// Seconds from the generator's origin to the end of the interval.
    pub t: f64,
    /// Length of the interval, seconds.
    pub interval: f64,
    /// In the warmup (left out of the totals).
    pub warmup: bool,
    /// The generator's last interval.
    pub last: bool,
    /// Counts of the interval.
    pub counts: Counts,
    /// Latency histogram (µs), encoded.
    pub latency: String,
    /// Service-time histogram (µs), encoded.
    pub service: String,
    /// Per kind: (latency, service), encoded.
    pub per_kind: BTreeMap<OpKind, (String, String)>,
    /// Per kind: how the operations ended.
    #[serde(default)]
    pub outcomes_per_kind: BTreeMap<OpKind, crate::metrics::Outcomes>,
}

/// A stream line could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A histogram could not be encoded.
    #[error("cannot encode a histogram: {0}")]
    Encode(String),
    /// A histogram could not be decoded.
    #[error("cannot decode a histogram: {0}")]
    Decode(String),
}

/// A histogram in V2 deflate encoding, base64: what an interval log line carries.
pub fn encode(h: &Histogram<u64>) -> Result<String, StreamError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| StreamError::Encode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram of [`encode`].
pub fn decode(text: &str) -> Result<Histogram<u64>, StreamError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| StreamError::Decode(e.to_string()))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| StreamError::Decode(format!("{e:?}")))
}

impl IntervalWire {
    /// Second `n` of a generator, from what its merger published.
    pub fn new(n: u32, i: &Interval) -> Result<Self, StreamError> {
        let mut per_kind = BTreeMap::new();
        for (kind, lat) in &i.acc.latency_per_kind {
            let svc = i
                .acc
                .service_per_kind
                .get(kind)
                .cloned()
                .unwrap_or_else(crate::metrics::new_histogram);
            per_kind.insert(*kind, (encode(lat)?, encode(&svc)?));
        }
        Ok(Self {
            n,
            t: i.snapshot.t,
            interval: i.snapshot.interval,
            warmup: i.snapshot.warmup,
            last: i.snapshot.last,
            counts: i.acc.counts,
            latency: encode(&i.acc.latency)?,
            service: encode(&i.acc.service)?,
            per_kind,
            outcomes_per_kind: i.acc.outcomes_per_kind.clone(),
        })
    }

    /// The second's counts and histograms.
    pub fn accumulator(&self) -> Result<Accumulator, StreamError> {
        let mut acc = Accumulator {
            counts: self.counts,
            outcomes_per_kind: self.outcomes_per_kind.clone(),
            ..Accumulator::default()
        };
        for (kind, (lat, svc)) in &self.per_kind {
            acc.add(*kind, &decode(lat)?, &decode(svc)?);
        }
        // Kinds carry every value; the overall histograms are checked against them.
        let (latency, service) = (decode(&self.latency)?, decode(&self.service)?);
        if latency.len() != acc.latency.len() || service.len() != acc.service.len() {
            return Err(StreamError::Decode(format!(
                "second {}: the overall histograms hold {} values, the kinds {}",
                self.n,
                latency.len(),
                acc.latency.len()
            )));
        }
        Ok(acc)
    }
}

/// A generator's report at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndWire {
    /// Seconds from its origin to its last completion.
    pub elapsed_s: f64,
    /// Its planned length, seconds.
    pub planned_duration_s: f64,
    /// Whether it was stopped early.
    pub canceled: bool,
    /// Operations begun.
    pub started: u64,
    /// Open loop: slots planned.
    pub planned: Option<u64>,
    /// Open loop: slots never begun.
    pub dropped: u64,
    /// Its warmup, seconds.
    pub warmup_s: f64,
    /// Its totals (warmup left out).
    pub totals: Counts,
}

impl From<&LoadReport> for EndWire {
    fn from(r: &LoadReport) -> Self {
        Self {
            elapsed_s: r.elapsed.as_secs_f64(),
            planned_duration_s: r.planned_duration.as_secs_f64(),
            canceled: r.canceled,
            started: r.started,
            planned: r.planned,
            dropped: r.dropped,
            warmup_s: r.warmup.as_secs_f64(),
            totals: r.totals.counts,
        }
    }
}

/// Seconds not yet complete: some generator still owes its figures.
#[derive(Default)]
struct Pending {
    acc: Accumulator,
    from: Vec<bool>,
    t: f64,
    warmup: bool,
}

/// Folds the seconds of several generators into one run's snapshots and totals. Second `n`
/// is published once every generator still running has sent its own second `n`.
pub struct Merger {
    /// Per generator: its origin less the controller's, seconds.
    shift_s: Vec<f64>,
    /// Per generator: the number of its last second, once it sent it or its stream ended.
    ended: Vec<Option<u32>>,
    pending: BTreeMap<u32, Pending>,
    /// The whole run, every generator's non-warmup seconds.
    run: Accumulator,
    record: Vec<Snapshot>,
    last_t: f64,
}

impl Merger {
    /// A merger of `generators` streams.
    pub fn new(generators: usize) -> Self {
        Self {
            shift_s: vec![0.0; generators],
            ended: vec![None; generators],
            pending: BTreeMap::new(),
            run: Accumulator::default(),
            record: Vec::new(),
            last_t: 0.0,
        }
    }

    /// Generator `g`'s origin lies `shift_s` after the controller's.
    pub fn set_shift(&mut self, g: usize, shift_s: f64) {
        self.shift_s[g] = shift_s;
    }

    /// Takes generator `g`'s second; returns the merged seconds it completed, in order.
    pub fn push(&mut self, g: usize, w: &IntervalWire) -> Result<Vec<Interval>, StreamError> {
        let acc = w.accumulator()?;
        // The totals are the generators' own: each leaves out its own warmup seconds.
        if !w.warmup {
            self.run.merge(&acc);
        }
        let generators = self.ended.len();
        let p = self.pending.entry(w.n).or_insert_with(|| Pending {
            from: vec![false; generators],
            ..Pending::default()
        });
        p.acc.merge(&acc);
        p.from[g] = true;
        p.t = p.t.max(w.t + self.shift_s[g]);
        p.warmup |= w.warmup;
        if w.last {
            self.ended[g] = Some(w.n);
        }
        Ok(self.complete())
    }

    /// Generator `g`'s stream ended (its last second sent, or it broke off).
    pub fn end(&mut self, g: usize) -> Vec<Interval> {
        if self.ended[g].is_none() {
            let seen = self
                .pending
                .iter()
                .filter(|(_, p)| p.from[g])
                .map(|(n, _)| *n)
                .max();
            let published = self.record.len() as u32;
            self.ended[g] = Some(seen.unwrap_or(0).max(published));
        }
        self.complete()
    }

    /// Publishes every leading second that no running generator still owes.
    fn complete(&mut self) -> Vec<Interval> {
        let mut out = Vec::new();
        while let Some((&n, p)) = self.pending.iter().next() {
            let owed = self
                .ended
                .iter()
                .zip(&p.from)
                .any(|(ended, sent)| !sent && ended.is_none_or(|last| n <= last));
            if owed {
                break;
            }
            let p = self.pending.remove(&n).expect("listed");
            // The run's last second: every generator has ended at or before it.
            let last =
                self.pending.is_empty() && self.ended.iter().all(|e| e.is_some_and(|l| l <= n));
            out.push(self.publish(p, last));
        }
        out
    }

    fn publish(&mut self, p: Pending, last: bool) -> Interval {
        let t = p.t.max(self.last_t);
        let interval = t - self.last_t;
        self.last_t = t;
        let snapshot = Snapshot {
            t,
            interval,
            counts: p.acc.counts,
            tps: if interval > 0.0 {
                p.acc.counts.ops as f64 / interval
            } else {
                0.0
            },
            latency: LatencySummary::from_histogram(&p.acc.latency),
            per_kind: p.acc.per_kind_summary(),
            total: self.run.counts,
            total_per_kind: self.run.outcomes_per_kind.clone(),
            last,
            warmup: p.warmup,
            run_latency: crate::metrics::LatencyBuckets::of(&self.run.latency),
        };
        self.record.push(snapshot.clone());
        Interval {
            snapshot,
            acc: p.acc,
        }
    }

    /// Ends the run: publishes whatever is left (seconds a broken generator never sent), marks
    /// the last snapshot (already so when every generator ended in order), and returns the
    /// totals and every snapshot.
    pub fn finish(mut self) -> (Accumulator, Vec<Snapshot>) {
        let rest: Vec<Pending> = std::mem::take(&mut self.pending).into_values().collect();
        for p in rest {
            self.publish(p, false);
        }
        match self.record.last_mut() {
            Some(last) => last.last = true,
            None => self.record.push(Snapshot {
                last: true,
                ..Snapshot::default()
            }),
        }
        (self.run, self.record)
    }
}

/// The report of a run made of several generators' reports and the merged figures.
pub fn merged_report(
    ends: &[EndWire],
    totals: Accumulator,
    snapshots: Vec<Snapshot>,
) -> LoadReport {
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    let max = |f: fn(&EndWire) -> f64| ends.iter().map(f).fold(0.0, f64::max);
    let planned = ends
        .iter()
        .map(|e| e.planned)
        .try_fold(0u64, |sum, p| p.map(|p| sum + p));
    LoadReport {
        elapsed: secs(max(|e| e.elapsed_s)),
        planned_duration: secs(max(|e| e.planned_duration_s)),
        canceled: ends.iter().any(|e| e.canceled),
        started: ends.iter().map(|e| e.started).sum(),
        planned: planned.filter(|_| !ends.is_empty()),
        dropped: ends.iter().map(|e| e.dropped).sum(),
        totals,
        history_lines: None,
        warmup: secs(max(|e| e.warmup_s)),
        snapshots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;
    use crate::rng::SplitMix64;

    /// Three generators' seconds of synthetic latencies, each with its own spread.
    fn synthetic(seed: u64, seconds: u32, per_second: u64, scale_us: u64) -> Vec<Vec<u64>> {
        let mut rng = SplitMix64::new(seed);
        (0..seconds)
            .map(|_| {
                (0..per_second)
                    .map(|_| {
                        // A long tail: most values near `scale`, a few far above.
                        let u = (rng.next_u64() % 10_000) as f64 / 10_000.0;
                        (scale_us as f64 / (1.0 - u * 0.999)) as u64
                    })
                    .collect()
            })
            .collect()
    }

    fn wire(n: u32, t: f64, values: &[u64], last: bool) -> IntervalWire {
        let mut acc = Accumulator::default();
        let mut h = new_histogram::<u64>();
        for v in values {
            h.record(*v).unwrap();
            acc.counts.add(Outcome::Ok, None, false);
        }
        acc.add(OpKind::Read, &h, &h);
        let snapshot = Snapshot {
            t,
            interval: 1.0,
            last,
            ..Snapshot::default()
        };
        IntervalWire::new(n, &Interval { snapshot, acc }).unwrap()
    }

    #[test]
    fn merged_percentiles_equal_those_of_the_pooled_raw_values() {
        let gens = [
            synthetic(1, 5, 700, 800),
            synthetic(2, 5, 300, 2_500),
            synthetic(3, 4, 1_000, 150),
        ];
        let mut merger = Merger::new(gens.len());
        let mut published = Vec::new();
        // Interleaved as streams arrive: second by second, generators in turn.
        for n in 0..5u32 {
            for (g, secs) in gens.iter().enumerate() {
                if let Some(values) = secs.get(n as usize) {
                    let last = n as usize + 1 == secs.len();
                    // Through JSON, as over SSH.
                    let line = Line::Interval(wire(n + 1, f64::from(n + 1), values, last));
                    let back: Line = serde_json::from_str(line.to_json_line().trim()).unwrap();
                    let Line::Interval(w) = back else { panic!() };
                    published.extend(merger.push(g, &w).unwrap());
                }
            }
        }
        let (totals, record) = merger.finish();
        assert_eq!(published.len(), 5);
        assert!(
            published[4].snapshot.last,
            "every generator sent its last second"
        );
        assert_eq!(record.len(), 5);
        assert!(record.last().unwrap().last);

        let pooled = |pick: &dyn Fn(usize) -> bool| {
            let mut h = new_histogram::<u64>();
            for (n, secs) in gens.iter().flat_map(|g| g.iter().enumerate()) {
                if pick(n) {
                    secs.iter().for_each(|v| h.record(*v).unwrap());
                }
            }
            h
        };
        let all = pooled(&|_| true);
        assert_eq!(totals.counts.ops, all.len());
        assert_eq!(totals.latency.len(), all.len());
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                totals.latency.value_at_quantile(q),
                all.value_at_quantile(q),
                "whole run, quantile {q}"
            );
        }
        assert_eq!(
            LatencySummary::from_histogram(&totals.latency),
            LatencySummary::from_histogram(&all)
        );
        // And second by second.
        for (n, snap) in record.iter().enumerate() {
            let second = pooled(&|i| i == n);
            assert_eq!(
                snap.latency,
                LatencySummary::from_histogram(&second),
                "second {n}"
            );
            assert_eq!(snap.counts.ops, second.len());
        }
        // The pooled values are not those of any one generator: the merge did something.
        let first = {
            let mut h = new_histogram::<u64>();
            gens[0].iter().flatten().for_each(|v| h.record(*v).unwrap());
            h
        };
        assert_ne!(first.value_at_quantile(0.99), all.value_at_quantile(0.99));
    }

    #[test]
    fn a_second_waits_for_every_running_generator_and_not_for_a_dead_one() {
        let mut m = Merger::new(2);
        m.set_shift(1, 0.25);
        assert!(m.push(0, &wire(1, 1.0, &[100], false)).unwrap().is_empty());
        let s = m.push(1, &wire(1, 1.0, &[300], false)).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].snapshot.counts.ops, 2);
        assert_eq!(s[0].acc.latency.len(), 2);
        let t = s[0].snapshot.t;
        assert!((t - 1.25).abs() < 1e-9, "the later generator's clock: {t}");
        // Generator 0 sends two seconds; generator 1 breaks off after its first.
        assert!(m.push(0, &wire(2, 2.0, &[100], false)).unwrap().is_empty());
        assert!(m.push(0, &wire(3, 3.0, &[100], true)).unwrap().is_empty());
        let rest = m.end(1);
        assert_eq!(rest.len(), 2, "nothing more is owed");
        assert!(
            rest[1].snapshot.last && !rest[0].snapshot.last,
            "the run ended with it"
        );
        assert_eq!(rest.iter().map(|s| s.snapshot.counts.ops).sum::<u64>(), 2);
        let (totals, record) = m.finish();
        assert_eq!(totals.counts.ops, 4);
        assert_eq!(record.len(), 3);
        assert!(record[2].last);
        assert_eq!(record[2].total.ops, 4);
    }

    #[test]
    fn warmup_seconds_stay_out_of_the_totals() {
        let mut m = Merger::new(1);
        let mut w = wire(1, 1.0, &[10, 20], false);
        w.warmup = true;
        m.push(0, &w).unwrap();
        m.push(0, &wire(2, 2.0, &[30], true)).unwrap();
        let (totals, record) = m.finish();
        assert_eq!(totals.counts.ops, 1);
        assert!(record[0].warmup && !record[1].warmup);
    }

    #[test]
    fn a_damaged_histogram_is_an_error() {
        let mut w = wire(1, 1.0, &[10], false);
        w.latency = "not base64!".into();
        assert!(matches!(w.accumulator(), Err(StreamError::Decode(_))));
        let mut w = wire(1, 1.0, &[10], false);
        w.latency = encode(&new_histogram()).unwrap();
        assert!(w.accumulator().is_err(), "overall and per-kind disagree");
    }

    #[test]
    fn ops_move_to_the_controllers_clock() {
        let op = OpWire {
            i: 1_000,
            s: 1_500,
            c: 9_000,
            o: Outcome::Ok,
            w: None,
        };
        let r = op.clone().record(250_000);
        assert_eq!(
            (r.intended_us, r.invoke_us, r.complete_us),
            (251_000, 251_500, 259_000)
        );
        let r = op.record(-1_200);
        assert_eq!((r.intended_us, r.invoke_us), (0, 300));
    }
}
