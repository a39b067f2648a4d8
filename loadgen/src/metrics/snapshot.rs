//! The once-a-second view of the load: [`Snapshot`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::outcome::{ErrorClass, Outcome};
use crate::workload::OpKind;

/// Errors counted by class.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct ErrorCounts {
    /// Client timeouts.
    pub timeout: u64,
    /// Connect failures.
    pub connect: u64,
    /// Connections broken after sending.
    pub reset: u64,
    /// 503 `no_leader`.
    pub no_leader: u64,
    /// Other 5xx.
    #[serde(rename = "5xx")]
    pub http_5xx: u64,
    /// 4xx.
    #[serde(rename = "4xx")]
    pub http_4xx: u64,
}

impl ErrorCounts {
    fn slot(&mut self, class: ErrorClass) -> &mut u64 {
        match class {
            ErrorClass::Timeout => &mut self.timeout,
            ErrorClass::Connect => &mut self.connect,
            ErrorClass::Reset => &mut self.reset,
            ErrorClass::NoLeader => &mut self.no_leader,
            ErrorClass::Http5xx => &mut self.http_5xx,
            ErrorClass::Http4xx => &mut self.http_4xx,
        }
    }

    /// Count one error of `class`.
    pub fn add(&mut self, class: ErrorClass) {
        *self.slot(class) += 1;
    }

    /// The count of `class`.
    pub fn get(&self, class: ErrorClass) -> u64 {
        let mut copy = *self;
        *copy.slot(class)
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        ErrorClass::ALL.iter().map(|c| self.get(*c)).sum()
    }

    /// Add another set of counts.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for c in ErrorClass::ALL {
            *self.slot(c) += other.get(c);
        }
    }
}

/// How one kind's operations ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Completed as asked.
    pub ok: u64,
    /// Definitely not applied.
    pub fail: u64,
    /// May have been applied.
    pub unknown: u64,
}

impl Outcomes {
    /// Count one operation.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }

    /// Add another set of counts.
    pub fn merge(&mut self, other: &Outcomes) {
        self.ok += other.ok;
        self.fail += other.fail;
        self.unknown += other.unknown;
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.ok + self.fail + self.unknown == 0
    }
}

/// Operation counters.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Counts {
    /// Operations completed (ok + fail + unknown).
    pub ops: u64,
    /// Completed as asked.
    pub ok: u64,
    /// Definitely not applied.
    pub fail: u64,
    /// May have been applied.
    pub unknown: u64,
    /// Open loop: operations that started later than the tolerance after their intended time.
    pub late: u64,
    /// Errors by class.
    pub errors: ErrorCounts,
}

impl Counts {
    /// Count one completed operation.
    pub fn add(&mut self, outcome: Outcome, class: Option<ErrorClass>, late: bool) {
        self.ops += 1;
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Unknown => self.unknown += 1,
        }
        if let Some(class) = class {
            self.errors.add(class);
        }
        self.late += u64::from(late);
    }

    /// Add another set of counts.
    pub fn merge(&mut self, other: &Counts) {
        self.ops += other.ops;
        self.ok += other.ok;
        self.fail += other.fail;
        self.unknown += other.unknown;
        self.late += other.late;
        self.errors.merge(&other.errors);
    }

    /// `ok / ops` in percent, or `None` with no operations.
    pub fn success_rate(&self) -> Option<f64> {
        (self.ops > 0).then(|| self.ok as f64 * 100.0 / self.ops as f64)
    }

    /// `(fail + unknown) / ops` in percent, or `None` with no operations.
    pub fn error_rate(&self) -> Option<f64> {
        (self.ops > 0).then(|| (self.fail + self.unknown) as f64 * 100.0 / self.ops as f64)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl LatencySummary {
    /// Summarize a histogram of microseconds (all zeros when it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Upper bounds of [`LatencyBuckets`], milliseconds: from what a loopback write takes to past
/// any request timeout.
pub const BUCKET_BOUNDS_MS: [f64; 16] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0,
    30_000.0, 60_000.0,
];

/// Latencies counted into fixed cumulative buckets, as a Prometheus histogram has them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyBuckets {
    /// For each bound of [`BUCKET_BOUNDS_MS`], how many latencies were at most it.
    pub le: Vec<u64>,
    /// How many latencies in all.
    pub count: u64,
    /// Their sum, milliseconds.
    pub sum_ms: f64,
}

impl LatencyBuckets {
    /// The buckets of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let le = BUCKET_BOUNDS_MS
            .iter()
            .map(|ms| h.count_between(0, (ms * 1000.0) as u64))
            .collect();
        Self {
            le,
            count: h.len(),
            sum_ms: if h.is_empty() {
                0.0
            } else {
                h.mean() * h.len() as f64 / 1000.0
            },
        }
    }
}

/// The load over one interval (about a second), published on a watch channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Seconds from the start of the run to the end of this interval.
    pub t: f64,
    /// Length of the interval in seconds.
    pub interval: f64,
    /// Counts of operations completed in the interval.
    pub counts: Counts,
    /// Operations completed per second in the interval.
    pub tps: f64,
    /// Latency of the interval's operations (from the intended start in open loop).
    pub latency: LatencySummary,
    /// The same per operation kind.
    pub per_kind: BTreeMap<OpKind, LatencySummary>,
    /// Counts since the start of the run (after warmup).
    pub total: Counts,
    /// Outcomes per operation kind since the start of the run (after warmup).
    #[serde(default)]
    pub total_per_kind: BTreeMap<OpKind, Outcomes>,
    /// Whether this is the last snapshot of the run.
    pub last: bool,
    /// Whether the interval lies in the warmup, whose figures the run's totals leave out.
    #[serde(default)]
    pub warmup: bool,
    /// The latency of every operation since the start of the run (after warmup), in buckets:
    /// what live metrics serve as a histogram.
    #[serde(default)]
    pub run_latency: LatencyBuckets,
}
