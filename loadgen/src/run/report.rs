//! [`LoadReport`]: what a finished (or canceled) run measured.

use std::time::Duration;

use crate::metrics::{Accumulator, Counts, LatencySummary, Snapshot};
use crate::workload::OpKind;

/// What a finished (or canceled) run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Wall time from the start of the clock (the pool ready) to the last completion.
    pub elapsed: Duration,
    /// The planned length of the run, warmup included (a steps plan may shorten it).
    pub planned_duration: Duration,
    /// Whether the caller canceled the run.
    pub canceled: bool,
    /// Operations begun.
    pub started: u64,
    /// Open loop: slots the plan held before the end; `None` in closed loop.
    pub planned: Option<u64>,
    /// Open loop: planned slots never begun (the run was canceled, or the pool could not keep
    /// up even in the grace period after the end).
    pub dropped: u64,
    /// Whole-run histograms and counts.
    pub totals: Accumulator,
    /// Lines written to the history, when one was kept.
    pub history_lines: Option<u64>,
    /// The warmup left out of `totals`.
    pub warmup: Duration,
    /// Every once-a-second snapshot, the last one included: the record of the run (the watch
    /// channel of [`crate::LoadRun::snapshots`] is for live readers and may skip a value).
    pub snapshots: Vec<Snapshot>,
}

impl LoadReport {
    /// Counts for the whole run.
    pub fn counts(&self) -> &Counts {
        &self.totals.counts
    }

    /// The judged window: the planned duration less warmup, or for a canceled run the part of
    /// it that ran.
    pub fn window(&self) -> Duration {
        let ran = if self.canceled {
            self.elapsed.min(self.planned_duration)
        } else {
            self.planned_duration
        };
        ran.saturating_sub(self.warmup)
    }

    /// Completed operations per second over the judged window. The operations the open loop
    /// planned inside the window may complete a little after it; they are still its own, so the
    /// rate of a run that kept up is its target rate.
    pub fn tps(&self) -> f64 {
        let secs = self.window().as_secs_f64();
        if secs > 0.0 {
            self.totals.counts.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// Latency over the run (from the intended start in open loop).
    pub fn latency(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.totals.latency)
    }

    /// Raw service time over the run (from the actual start).
    pub fn service(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.totals.service)
    }

    /// Latency per operation kind.
    pub fn per_kind(&self) -> std::collections::BTreeMap<OpKind, LatencySummary> {
        self.totals.per_kind_summary()
    }
}
