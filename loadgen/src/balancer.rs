//! Client-side endpoint failover, as etcd's client balancer does it.
//!
//! A real client that talks to a cluster does not keep sending a third of its requests to a
//! node that refuses connections or has lost its quorum. The reference adapter therefore skips
//! an endpoint for a cool-down after it refused, timed out, broke the connection or said it
//! has no leader, and retries an operation that *definitely* failed (not applied, so a retry is
//! safe for any operation) on another endpoint until its timeout is spent. Operations whose outcome is unknown are
//! never retried: that would hide a possible double write from the checkers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::outcome::{ErrorClass, OpError, Outcome};

/// Health of each endpoint, shared by every worker (atomics only; no lock on the request path).
///
/// An endpoint that failed is skipped for the cool-down; then it is *half open*, as a circuit
/// breaker is: one operation is let through to probe it, and the others keep skipping it for
/// another cool-down. A success makes it healthy for everyone; a failure starts the cool-down
/// again. Without the probe, every worker would return to a node that still hangs as soon as
/// the cool-down ended, and a node frozen by a stalled disk would time out about a second's
/// worth of its share of the load in every cool-down: failures of the client's policy, not of
/// the store.
#[derive(Debug)]
pub struct Balancer {
    /// Per endpoint: 0 when healthy; otherwise 1 + the millisecond (since `epoch`) until which
    /// it is skipped.
    bad_until: Vec<AtomicU64>,
    epoch: Instant,
    cooldown: Duration,
}

impl Balancer {
    /// A balancer over `n` endpoints that skips a failing one for `cooldown`.
    pub fn new(n: usize, cooldown: Duration) -> Self {
        Self {
            bad_until: (0..n).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            cooldown,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether endpoint `i` may take an operation at `now`: it is healthy, or its cool-down
    /// has ended and this caller won the right to probe it (which skips it for everyone else
    /// for another cool-down).
    fn claim(&self, i: usize, now: u64) -> bool {
        let v = self.bad_until[i].load(Ordering::Relaxed);
        if v == 0 {
            return true;
        }
        v - 1 <= now
            && self.bad_until[i]
                .compare_exchange(
                    v,
                    self.skip_until(now),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn skip_until(&self, now: u64) -> u64 {
        now + self.cooldown.as_millis() as u64 + 1
    }

    /// The endpoint to use for an operation that prefers `preferred`: it, unless it is cooling
    /// down, then the next one that may take it; when none may, `preferred` anyway.
    pub fn pick(&self, preferred: usize) -> usize {
        self.pick_at(preferred, self.now_ms())
    }

    fn pick_at(&self, preferred: usize, now: u64) -> usize {
        let n = self.bad_until.len();
        (0..n)
            .map(|k| (preferred + k) % n)
            .find(|&i| self.claim(i, now))
            .unwrap_or(preferred % n)
    }

    /// An endpoint other than `tried` that may take the retry of a definite failure.
    pub fn alternative(&self, tried: usize) -> Option<usize> {
        self.alternative_at(tried, self.now_ms())
    }

    fn alternative_at(&self, tried: usize, now: u64) -> Option<usize> {
        let n = self.bad_until.len();
        (1..n)
            .map(|k| (tried + k) % n)
            .find(|&i| self.claim(i, now))
    }

    /// Notes what an error says about endpoint `i`.
    pub fn observe(&self, i: usize, e: &OpError) {
        self.observe_at(i, e, self.now_ms());
    }

    fn observe_at(&self, i: usize, e: &OpError, now: u64) {
        if matches!(
            e.class,
            ErrorClass::Connect | ErrorClass::Timeout | ErrorClass::Reset | ErrorClass::NoLeader
        ) {
            self.bad_until[i].store(self.skip_until(now), Ordering::Relaxed);
        }
    }

    /// Notes that endpoint `i` answered: it is healthy again.
    pub fn succeeded(&self, i: usize) {
        if self.bad_until[i].load(Ordering::Relaxed) != 0 {
            self.bad_until[i].store(0, Ordering::Relaxed);
        }
    }

    /// Whether an error may be retried elsewhere: only when nothing was applied.
    pub fn retryable(e: &OpError) -> bool {
        e.outcome == Outcome::Fail
    }

    /// Runs `call` on the endpoint picked for `preferred`. A definite failure (nothing was
    /// applied: refused, no leader) is retried on the next healthy endpoint, with a short pause
    /// when every endpoint is cooling down, until `budget` is spent, as etcd's client retries
    /// "unavailable" errors. An unknown outcome is never retried.
    pub async fn with_failover<R, F, Fut>(
        &self,
        preferred: usize,
        budget: Duration,
        call: F,
    ) -> Result<R, OpError>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<R, OpError>>,
    {
        let deadline = tokio::time::Instant::now() + budget;
        let mut at = self.pick(preferred);
        loop {
            let err = match call(at).await {
                Ok(r) => {
                    self.succeeded(at);
                    return Ok(r);
                }
                Err(e) => e,
            };
            self.observe(at, &err);
            if !Self::retryable(&err) || tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                return Err(err);
            }
            match self.alternative(at) {
                Some(next) => at = next,
                None => tokio::time::sleep(RETRY_PAUSE).await,
            }
        }
    }
}

/// Pause before retrying a definite failure when no other endpoint is healthy.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusing_endpoint_is_skipped_until_its_cooldown_ends() {
        let b = Balancer::new(3, Duration::from_secs(60));
        assert_eq!(b.pick(1), 1);
        b.observe(1, &OpError::fail(ErrorClass::Connect, "refused"));
        assert_eq!(b.pick(1), 2);
        assert_eq!(b.alternative(0), Some(2));
        let short = Balancer::new(2, Duration::ZERO);
        short.observe(0, &OpError::fail(ErrorClass::Connect, "refused"));
        assert_eq!(short.pick(0), 0, "a zero cooldown ends at once");
    }

    #[test]
    fn a_4xx_does_not_mark_the_endpoint_and_only_failures_retry() {
        let b = Balancer::new(2, Duration::from_secs(60));
        b.observe(0, &OpError::fail(ErrorClass::Http4xx, "bad"));
        assert_eq!(b.pick(0), 0);
        assert!(Balancer::retryable(&OpError::fail(
            ErrorClass::NoLeader,
            "x"
        )));
        assert!(!Balancer::retryable(&OpError::unknown(
            ErrorClass::Timeout,
            "x"
        )));
    }

    #[test]
    fn after_the_cooldown_one_operation_probes_and_its_answer_decides() {
        let b = Balancer::new(3, Duration::from_millis(1000));
        b.observe_at(0, &OpError::unknown(ErrorClass::Timeout, "hung"), 0);
        assert_eq!(b.pick_at(0, 500), 1, "cooling down");
        assert_eq!(
            b.pick_at(0, 1001),
            0,
            "the first after the cool-down probes"
        );
        for now in [1001, 1500, 2000] {
            assert_eq!(
                b.pick_at(0, now),
                1,
                "the others skip it while it is probed"
            );
        }
        b.observe_at(
            0,
            &OpError::unknown(ErrorClass::Timeout, "still hung"),
            2001,
        );
        assert_eq!(
            b.pick_at(0, 2500),
            1,
            "a failed probe starts the cool-down again"
        );
        assert_eq!(b.pick_at(0, 3002), 0, "the next probe");
        b.succeeded(0);
        for now in [3002, 3003] {
            assert_eq!(
                b.pick_at(0, now),
                0,
                "a successful probe heals it for everyone"
            );
        }
        assert_eq!(b.alternative_at(2, 3003), Some(0));
    }

    #[test]
    fn with_every_endpoint_down_the_preferred_one_is_used() {
        let b = Balancer::new(2, Duration::from_secs(60));
        b.observe(0, &OpError::fail(ErrorClass::Connect, "x"));
        b.observe(1, &OpError::fail(ErrorClass::Connect, "x"));
        assert_eq!(b.pick(1), 1);
        assert_eq!(b.alternative(1), None);
    }
}
