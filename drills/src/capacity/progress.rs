//! [`CapacityProgress`]: what the search has done so far, published on a watch channel for
//! whoever shows it (the live view); the search never waits for a reader.

use loadgen::Snapshot;

use super::StepResult;

/// What the search has done so far.
#[derive(Debug, Clone, Default)]
pub struct CapacityProgress {
    /// Finished steps, in order.
    pub steps: Vec<StepResult>,
    /// The rate of the step running now.
    pub current_rate: Option<f64>,
    /// The closed-loop cross-check running now, with this many users.
    pub verifying: Option<usize>,
    /// The last one-second snapshot of the step running now.
    pub current: Snapshot,
    /// The search is over.
    pub done: bool,
}
