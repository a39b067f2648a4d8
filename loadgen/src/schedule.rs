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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::plan::{LoadModel, Plan};

/// How long the pool may take to arrive at its first claim before the clock starts anyway.
const START_WAIT: Duration = Duration::from_secs(10);

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
///
/// Its clock starts when every worker of the pool has arrived at its first claim (see
/// [`RunClock`]): intended start times, the end of the run and every reported time count from
/// there, so the engine's own start-up is never charged to the store.
#[derive(Debug)]
pub struct Schedule {
    clock: Arc<RunClock>,
    duration: Duration,
    grace: Duration,
    model: LoadModel,
    plan: Plan,
    next_op: AtomicU64,
    late_tolerance: Duration,
    arrived: Box<[AtomicBool]>,
    arrivals: AtomicUsize,
    start_deadline: Instant,
    not_before: Option<Instant>,
}

impl Schedule {
    /// A schedule that lasts `duration` (cut short by a steps plan) from the moment its pool is
    /// ready. Open-loop slots may still start up to `grace` after the end.
    pub fn new(
        clock: Arc<RunClock>,
        duration: Duration,
        grace: Duration,
        model: LoadModel,
        plan: Plan,
        late_tolerance: Duration,
    ) -> Self {
        let duration = plan.length().map_or(duration, |l| l.min(duration));
        let pool = pool_size(&model, &plan);
        Self {
            clock,
            duration,
            grace,
            model,
            plan,
            next_op: AtomicU64::new(0),
            late_tolerance,
            arrived: (0..pool).map(|_| AtomicBool::new(false)).collect(),
            arrivals: AtomicUsize::new(0),
            start_deadline: Instant::now() + START_WAIT,
            not_before: None,
        }
    }

    /// The clock starts no earlier than `at`, even when the pool is ready before: generators
    /// on several machines, each told the same moment, count their seconds from one origin.
    pub fn not_before(mut self, at: Instant) -> Self {
        self.start_deadline = self.start_deadline.max(at);
        self.not_before = Some(at);
        self
    }

    /// The run's clock.
    pub fn clock(&self) -> &Arc<RunClock> {
        &self.clock
    }

    /// When the run started, once it has.
    pub fn start(&self) -> Option<Instant> {
        self.clock.origin()
    }

    /// The planned length of the run (a steps plan may make it shorter than asked).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// When the run's time is up, for a run that started at `origin`.
    pub fn end_from(&self, origin: Instant) -> Instant {
        origin + self.duration
    }

    /// After this no slot is claimed any more: the open-loop backlog left is dropped.
    pub fn claim_deadline_from(&self, origin: Instant) -> Instant {
        origin + self.duration + self.grace
    }

    /// How many workers the run needs.
    pub fn pool_size(&self) -> usize {
        self.arrived.len()
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
        let horizon = self.duration;
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
        let Some(origin) = self.ready(worker, stop).await else {
            return Slot::Finished;
        };
        match self.model {
            LoadModel::Open { rate, .. } => self.next_open(origin, rate, stop).await,
            LoadModel::Closed { users, .. } => self.next_closed(origin, users, worker, stop).await,
        }
    }

    /// The origin, once the whole pool has arrived (or the start deadline passed); `None` when
    /// stopped first.
    async fn ready(&self, worker: usize, stop: &CancellationToken) -> Option<Instant> {
        if let Some(origin) = self.clock.origin() {
            return Some(origin);
        }
        let first_visit = self
            .arrived
            .get(worker)
            .is_some_and(|a| !a.swap(true, Ordering::AcqRel));
        if first_visit && self.arrivals.fetch_add(1, Ordering::AcqRel) + 1 >= self.arrived.len() {
            if let Some(at) = self.not_before {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    origin = self.clock.started() => return Some(origin),
                    _ = stop.cancelled() => return None,
                }
            }
            return Some(self.clock.start_now());
        }
        tokio::select! {
            origin = self.clock.started() => Some(origin),
            _ = tokio::time::sleep_until(self.start_deadline) => {
                tracing::warn!(
                    arrived = self.arrivals.load(Ordering::Relaxed),
                    pool = self.arrived.len(),
                    "the worker pool was not ready in time; starting the clock anyway"
                );
                Some(self.clock.start_now())
            }
            _ = stop.cancelled() => None,
        }
    }

    async fn next_open(&self, origin: Instant, rate: f64, stop: &CancellationToken) -> Slot {
        let end = self.end_from(origin);
        if Instant::now() >= end + self.grace {
            return Slot::Finished;
        }
        let n = self.next_op.fetch_add(1, Ordering::Relaxed);
        let Some(offset) = self.plan.intended_offset(rate, n) else {
            return Slot::Finished;
        };
        let intended = origin + offset;
        if intended >= end {
            return Slot::Finished;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(intended) => Slot::Run { n, intended },
            _ = stop.cancelled() => Slot::Finished,
        }
    }

    async fn next_closed(
        &self,
        origin: Instant,
        users: usize,
        worker: usize,
        stop: &CancellationToken,
    ) -> Slot {
        let end = self.end_from(origin);
        loop {
            let now = Instant::now();
            if now >= end {
                return Slot::Finished;
            }
            let t = now - origin;
            if worker < self.plan.users_at(users, t) {
                let n = self.next_op.fetch_add(1, Ordering::Relaxed);
                return Slot::Run { n, intended: now };
            }
            let Some(from) = self.plan.active_from(users, worker, t) else {
                return Slot::Finished;
            };
            // Wake at the activation time; a tiny step past it avoids rounding back to idle.
            let wake = (origin + from + Duration::from_micros(1)).min(end);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.cancelled() => return Slot::Finished,
            }
        }
    }
}

/// How many workers a model and plan need.
fn pool_size(model: &LoadModel, plan: &Plan) -> usize {
    match model {
        LoadModel::Open { max_in_flight, .. } => (*max_in_flight).max(1),
        LoadModel::Closed { users, .. } => (plan.peak(*users as f64).ceil() as usize).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open-loop schedule of a pool of 4 whose clock has started.
    fn open(rate: f64, plan: Plan, secs: u64) -> Schedule {
        let s = unstarted(rate, plan, secs);
        s.clock().start_now();
        s
    }

    fn unstarted(rate: f64, plan: Plan, secs: u64) -> Schedule {
        Schedule::new(
            Arc::new(RunClock::new()),
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
            assert_eq!(
                intended - s.start().unwrap(),
                Duration::from_millis(100 * i)
            );
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
        assert_eq!(intended, s.start().unwrap());
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
        assert_eq!(i3 - s.start().unwrap(), Duration::from_millis(30));
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
        assert!(Instant::now() - s.start().unwrap() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_ramp_gates_workers() {
        let s = Schedule::new(
            Arc::new(RunClock::new()),
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
        s.clock().start_now();
        let stop = CancellationToken::new();
        assert!(matches!(s.next(0, &stop).await, Slot::Run { .. }));
        assert_eq!(Instant::now(), s.start().unwrap());
        assert!(matches!(s.next(3, &stop).await, Slot::Run { .. }));
        let waited = Instant::now() - s.start().unwrap();
        assert!(waited >= Duration::from_secs(3) && waited < Duration::from_millis(3010));
    }

    /// A pool that takes its time to start (goose builds its users one by one) must not be
    /// charged for it: the clock starts when the last worker arrives, so no slot is late.
    #[tokio::test(start_paused = true)]
    async fn the_clock_starts_when_the_whole_pool_has_arrived() {
        let s = Arc::new(unstarted(100.0, Plan::Constant, 1));
        let stop = CancellationToken::new();
        let mut early = tokio::task::JoinSet::new();
        for w in 0..3 {
            let (s, stop) = (s.clone(), stop.clone());
            early.spawn(async move { s.next(w, &stop).await });
        }
        // The last worker of the pool comes 700 ms later.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(s.start(), None, "three of four workers are not a pool");
        let arrived_at = Instant::now();
        let last = s.next(3, &stop).await;
        assert_eq!(s.start(), Some(arrived_at));
        let mut slots = vec![last];
        while let Some(r) = early.join_next().await {
            slots.push(r.unwrap());
        }
        for slot in slots {
            let Slot::Run { intended, .. } = slot else {
                panic!("{slot:?}")
            };
            assert!(intended >= arrived_at);
            assert!(
                !s.is_late(intended, intended),
                "no slot starts before the clock"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pool_that_never_fills_starts_at_the_deadline_and_stop_wins_over_waiting() {
        let s = unstarted(100.0, Plan::Constant, 1);
        let stop = CancellationToken::new();
        assert!(matches!(s.next(0, &stop).await, Slot::Run { .. }));
        assert!(s.start().is_some(), "started by the deadline");
        let s = unstarted(100.0, Plan::Constant, 1);
        let stopped = CancellationToken::new();
        stopped.cancel();
        assert_eq!(s.next(0, &stopped).await, Slot::Finished);
        assert_eq!(s.start(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_pool_waits_for_the_agreed_moment() {
        let at = Instant::now() + Duration::from_millis(2500);
        let s = Arc::new(unstarted(100.0, Plan::Constant, 1).not_before(at));
        let stop = CancellationToken::new();
        let mut pool = tokio::task::JoinSet::new();
        for w in 0..s.pool_size() {
            let (s, stop) = (s.clone(), stop.clone());
            pool.spawn(async move { s.next(w, &stop).await });
        }
        while let Some(slot) = pool.join_next().await {
            let Slot::Run { intended, .. } = slot.unwrap() else {
                panic!("every worker gets a slot")
            };
            assert!(intended >= at, "no slot before the agreed moment");
        }
        assert_eq!(s.start(), Some(at), "the clock starts at the agreed moment");

        // Stopped while waiting for the moment: nothing starts.
        let later = Instant::now() + Duration::from_secs(60);
        let s = Arc::new(unstarted(100.0, Plan::Constant, 1).not_before(later));
        let stop = CancellationToken::new();
        let mut pool = tokio::task::JoinSet::new();
        for w in 0..s.pool_size() {
            let (s, stop) = (s.clone(), stop.clone());
            pool.spawn(async move { s.next(w, &stop).await });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.cancel();
        while let Some(slot) = pool.join_next().await {
            assert_eq!(slot.unwrap(), Slot::Finished);
        }
        assert_eq!(s.start(), None);
    }
}
