//! The token bucket behind [`LinkMode::Bandwidth`](super::LinkMode::Bandwidth).
//!
//! One bucket per direction is shared by every connection of a link, so the cap is the link's,
//! not each connection's: two Raft connections from A to B split the bandwidth between them, as
//! they would on a real slow link.
//!
//! The bucket lends: [`TokenBucket::reserve`] takes the tokens at once, letting the balance go
//! negative, and says how long the caller must wait before it may send them. Callers therefore
//! queue in the order they asked (nobody starves behind smaller requests), and a sleep that
//! wakes late is paid back by the next reservation, so timer slack does not add up over a run.

use std::time::{Duration, Instant};

/// The smallest burst, so a low rate still moves a useful chunk (a Raft heartbeat) at once.
const MIN_BURST: u64 = 1024;

/// The most bytes one reservation may take at `bytes_per_sec`: max(1 KiB, rate / 20), i.e. 50 ms
/// of traffic. Small, so the cap holds over short windows too.
pub(super) fn burst_for(bytes_per_sec: u64) -> usize {
    usize::try_from(MIN_BURST.max(bytes_per_sec / 20)).unwrap_or(usize::MAX)
}

/// A token bucket in bytes that may run into debt.
#[derive(Debug)]
pub(super) struct TokenBucket {
    /// Bytes per second; 0 until the first reservation configures it.
    rate: u64,
    /// Balance in bytes; negative while reservations wait for their turn.
    tokens: f64,
    /// Cap of the balance.
    burst: f64,
    /// When `tokens` was last refilled.
    last: Instant,
}

impl TokenBucket {
    /// An empty bucket; the first [`reserve`](Self::reserve) sets its rate.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            rate: 0,
            tokens: 0.0,
            burst: 0.0,
            last: now,
        }
    }

    /// Takes `n` bytes' worth of tokens at `bytes_per_sec` and returns how long after `now` the
    /// caller may send them. A new rate starts a full bucket. `bytes_per_sec` must not be 0 (the
    /// proxy treats a zero rate as a blackhole and never asks).
    pub(super) fn reserve(&mut self, bytes_per_sec: u64, n: usize, now: Instant) -> Duration {
        debug_assert!(bytes_per_sec > 0, "a zero rate never reserves");
        let rate = bytes_per_sec.max(1) as f64;
        if bytes_per_sec != self.rate {
            self.rate = bytes_per_sec;
            self.burst = burst_for(bytes_per_sec) as f64;
            self.tokens = self.burst;
            self.last = now;
        }
        // Several pumps read the clock before taking the lock, so `now` may be a little older
        // than `last`; such a caller simply gets no refill.
        if now > self.last {
            let earned = now.duration_since(self.last).as_secs_f64() * rate;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.last = now;
        }
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_a_twentieth_of_the_rate_but_at_least_a_kib() {
        assert_eq!(burst_for(1), 1024);
        assert_eq!(burst_for(20 * 1024), 1024);
        assert_eq!(burst_for(256 * 1024), 256 * 1024 / 20);
    }

    #[test]
    fn first_burst_is_free_then_the_rate_applies() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0);
        let rate = 100_000;
        let burst = burst_for(rate);
        assert_eq!(b.reserve(rate, burst, t0), Duration::ZERO);
        // The bucket is now empty: 1000 more bytes cost 10 ms.
        let wait = b.reserve(rate, 1000, t0);
        assert!((wait.as_secs_f64() - 0.010).abs() < 1e-6, "{wait:?}");
    }

    #[test]
    fn debt_queues_callers_in_order() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0);
        let rate = 10_000;
        b.reserve(rate, burst_for(rate), t0);
        let first = b.reserve(rate, 500, t0);
        let second = b.reserve(rate, 500, t0);
        assert!(second > first, "{first:?} then {second:?}");
        assert!((second.as_secs_f64() - 0.1).abs() < 1e-6, "{second:?}");
    }

    #[test]
    fn long_run_rate_matches_and_late_wakeups_are_paid_back() {
        // Simulate a sender that always wakes 3 ms late: the throughput must still be the rate.
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0);
        let rate = 256 * 1024;
        let chunk = burst_for(rate);
        let mut now = t0;
        let mut sent = 0usize;
        for _ in 0..400 {
            let wait = b.reserve(rate, chunk, now);
            now += wait;
            sent += chunk;
            now += Duration::from_millis(3);
        }
        let secs = now.duration_since(t0).as_secs_f64();
        let measured = sent as f64 / secs;
        // Each late wakeup is paid back by a shorter next wait, so only the free first burst
        // and the last 3 ms separate the measured rate from the configured one.
        assert!(measured <= rate as f64 * 1.05, "{measured} B/s");
        assert!(measured >= rate as f64 * 0.95, "{measured} B/s");
    }

    #[test]
    fn idle_time_refills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0);
        let rate = 10_000;
        let burst = burst_for(rate);
        b.reserve(rate, burst, t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.reserve(rate, burst, later), Duration::ZERO);
        assert!(b.reserve(rate, 1, later) > Duration::ZERO);
    }

    #[test]
    fn a_new_rate_starts_a_fresh_bucket() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0);
        b.reserve(1000, 100_000, t0);
        assert_eq!(b.reserve(2000, 1024, t0), Duration::ZERO);
    }
}
