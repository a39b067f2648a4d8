//! Latency and outcome metrics: per-worker recorders on the request path, a once-a-second
//! merge into [`Snapshot`]s, and the whole run's cumulative histograms.
//!
//! Histograms cover 1 µs to 60 s with 3 significant digits and record microseconds.

mod accumulator;
mod recorder;
mod snapshot;

pub use accumulator::Accumulator;
pub use recorder::Recorders;
pub use snapshot::{
    BUCKET_BOUNDS_MS, Counts, ErrorCounts, LatencyBuckets, LatencySummary, Outcomes, Snapshot,
};

use hdrhistogram::{Counter, Histogram};

/// Lowest trackable value, in microseconds.
pub(crate) const LOWEST_US: u64 = 1;
/// Highest trackable value, in microseconds (60 s); longer latencies are clamped to it.
pub(crate) const HIGHEST_US: u64 = 60_000_000;
/// Significant decimal digits kept.
pub(crate) const SIGFIG: u8 = 3;

/// An empty histogram with the crate's bounds.
pub fn new_histogram<T: Counter>() -> Histogram<T> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
        .expect("constant histogram bounds are valid")
}
