//! When each worker runs its next operation: the open-loop rate scheduler and the closed-loop
//! user gate.
//!
//! Open loop follows wrk2: operation `n` has a fixed intended start, `start + offset(n)`, taken
//! from the plan. A worker claims the next `n` from a shared counter, sleeps until the intended
//! start and runs it; latency is measured from the intended start, so time spent waiting for a
//! free worker counts against the system under test (coordinated-omission correction). A slot
//! that begins more than `late_tolerance` after its intended start is counted late, like k6's
//! dropped iterations, but it is still run. When the run's time is up, workers go on claiming
//! slots whose intended start was before the end for one grace period more; slots still unclaimed
//! then are reported as dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::plan::{LoadModel, Plan};

/// What a worker should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Run operation `n`, intended to start at `intended` (it is now at or after that time).
    Run {
        /// Operation number.
        n: u64,
        /// Intended start; latency is measured from here.
        intended: Instant,
    },
    /// No more work: the run is over or was stopped.
    Finished,
}

/// The shared scheduler of one run.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    end: Instant,
    grace: Duration,
    model: LoadModel,
    plan: Plan,
    next_op: AtomicU64,
    late_tolerance: Duration,
}

impl Schedule {
    /// A schedule that starts at `start` and lasts `duration` (cut short by a steps plan).
    /// Open-loop slots may still start up to `grace` after the end.
    pub fn new(
        start: Instant,
        duration: Duration,
        grace: Duration,
        model: LoadModel,
        plan: Plan,
        late_tolerance: Duration,
    ) -> Self {
        let duration = plan.length().map_or(duration, |l| l.min(duration));
        Self {
            start,
            end: start + duration,
            grace,
            model,
            plan,
            next_op: AtomicU64::new(0),
            late_tolerance,
        }
    }

    /// When the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// After this no slot is claimed any more: the open-loop backlog left is dropped.
    pub fn claim_deadline(&self) -> Instant {
        self.end + self.grace
    }

    /// When the run's time is up.
    pub fn end(&self) -> Instant {
        self.end
    }

    /// How many workers the run needs.
    pub fn pool_size(&self) -> usize {
        match &self.model {
            LoadModel::Open { max_in_flight, .. } => (*max_in_flight).max(1),
            LoadModel::Closed { users, .. } => {
                (self.plan.peak(*users as f64).ceil() as usize).max(1)
            }
        }
    }

    /// Pause after each operation (closed loop only).
    pub fn think(&self) -> Option<Duration> {
        match &self.model {
            LoadModel::Closed { think, .. } => *think,
            LoadModel::Open { .. } => None,
        }
    }

    /// Whether a slot that begins at `actual` started late.
    pub fn is_late(&self, intended: Instant, actual: Instant) -> bool {
        actual.saturating_duration_since(intended) > self.late_tolerance
    }

    /// Operation numbers handed out so far.
    pub fn claimed(&self) -> u64 {
        self.next_op.load(Ordering::Relaxed)
    }

    /// Open loop: how many slots the plan holds before the end. Closed loop: `None`.
    pub fn planned(&self) -> Option<u64> {
        let LoadModel::Open { rate, .. } = self.model else {
            return None;
        };
        // Binary search for the first slot at or after the end.
        let horizon = self.end - self.start;
        let before_end = |n: u64| {
            self.plan
                .intended_offset(rate, n)
                .is_some_and(|t| t < horizon)
        };
        let (mut lo, mut hi) = (0u64, 1u64);
        while before_end(hi) {
            lo = hi;
            hi *= 2;
        }
        if !before_end(lo) {
            return Some(0);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if before_end(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(hi)
    }

    /// Wait for and return the next slot of `worker`, or [`Slot::Finished`].
    pub async fn next(&self, worker: usize, stop: &CancellationToken) -> Slot {
        if stop.is_cancelled() {
            return Slot::Finished;
        }
        match self.model {
            LoadModel::Open { rate, .. } => self.next_open(rate, stop).await,
            LoadModel::Closed { users, .. } => self.next_closed(users, worker, stop).await,
        }
    }

    async fn next_open(&self, rate: f64, stop: &CancellationToken) -> Slot {
        if Instant::now() >= self.end + self.grace {
            return Slot::Finished;
        }
        let n = self.next_op.fetch_add(1, Ordering::Relaxed);
        let Some(offset) = self.plan.intended_offset(rate, n) else {
            return Slot::Finished;
        };
        let intended = self.start + offset;
        if intended >= self.end {
            return Slot::Finished;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(intended) => Slot::Run { n, intended },
            _ = stop.cancelled() => Slot::Finished,
        }
    }

    async fn next_closed(&self, users: usize, worker: usize, stop: &CancellationToken) -> Slot {
        loop {
            let now = Instant::now();
            if now >= self.end {
                return Slot::Finished;
            }
            let t = now - self.start;
            if worker < self.plan.users_at(users, t) {
                let n = self.next_op.fetch_add(1, Ordering::Relaxed);
                return Slot::Run { n, intended: now };
            }
            let Some(from) = self.plan.active_from(users, worker, t) else {
                return Slot::Finished;
            };
            // Wake at the activation time; a tiny step past it avoids rounding back to idle.
            let wake = (self.start + from + Duration::from_micros(1)).min(self.end);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.cancelled() => return Slot::Finished,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(rate: f64, plan: Plan, secs: u64) -> Schedule {
        Schedule::new(
            Instant::now(),
            Duration::from_secs(secs),
            Duration::from_secs(1),
            LoadModel::Open {
                rate,
                max_in_flight: 4,
            },
            plan,
            Duration::from_millis(5),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_slots_start_exactly_at_intended_times() {
        let s = open(10.0, Plan::Constant, 1);
        let stop = CancellationToken::new();
        for i in 0..10u64 {
            let Slot::Run { n, intended } = s.next(0, &stop).await else {
                panic!("finished early at {i}");
            };
            assert_eq!(n, i);
            assert_eq!(intended - s.start(), Duration::from_millis(100 * i));
            assert_eq!(Instant::now(), intended);
            assert!(!s.is_late(intended, Instant::now()));
        }
        assert_eq!(s.next(0, &stop).await, Slot::Finished);
        assert_eq!(s.planned(), Some(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_pool_starts_late_and_keeps_the_intended_time() {
        let s = open(100.0, Plan::Constant, 1);
        let stop = CancellationToken::new();
        // Hold the only worker past three slots.
        tokio::time::sleep(Duration::from_millis(35)).await;
        let Slot::Run { n, intended } = s.next(0, &stop).await else {
            panic!()
        };
        assert_eq!(n, 0);
        assert_eq!(intended, s.start());
        assert!(s.is_late(intended, Instant::now()));
        s.next(0, &stop).await;
        s.next(0, &stop).await;
        let Slot::Run {
            n: n3,
            intended: i3,
        } = s.next(0, &stop).await
        else {
            panic!()
        };
        assert_eq!(n3, 3);
        assert_eq!(i3 - s.start(), Duration::from_millis(30));
        assert!(!s.is_late(i3, Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn stop_wakes_a_sleeping_worker() {
        let s = open(0.5, Plan::Constant, 10);
        let stop = CancellationToken::new();
        assert!(matches!(s.next(0, &stop).await, Slot::Run { .. }));
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            stopper.cancel();
        });
        assert_eq!(s.next(0, &stop).await, Slot::Finished);
        assert!(Instant::now() - s.start() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_ramp_gates_workers() {
        let s = Schedule::new(
            Instant::now(),
            Duration::from_secs(10),
            Duration::ZERO,
            LoadModel::Closed {
                users: 4,
                think: None,
            },
            Plan::Ramp {
                over: Duration::from_secs(4),
            },
            Duration::from_millis(5),
        );
        assert_eq!(s.pool_size(), 4);
        let stop = CancellationToken::new();
        assert!(matches!(s.next(0, &stop).await, Slot::Run { .. }));
        assert_eq!(Instant::now(), s.start());
        assert!(matches!(s.next(3, &stop).await, Slot::Run { .. }));
        let waited = Instant::now() - s.start();
        assert!(waited >= Duration::from_secs(3) && waited < Duration::from_millis(3010));
    }
}
