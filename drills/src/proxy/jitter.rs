//! The random source for [`LinkMode::Delay`](super::LinkMode::Delay) jitter.
//!
//! Jitter only has to look uniform to a Raft node's timers; it is not security-relevant and
//! drills do not replay it. So rather than a new dependency this is xorshift64* (Vigna, "An
//! experimental exploration of Marsaglia's xorshift generators", 2016), seeded from the wall
//! clock mixed with a process-wide counter so pumps started in the same nanosecond still differ.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Added to the seed of every new generator (the golden-ratio constant of splitmix64).
static SEED_STEP: AtomicU64 = AtomicU64::new(0);
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A xorshift64* generator that draws delays of `latency ± jitter`.
#[derive(Debug, Clone)]
pub(super) struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator seeded from the clock.
    pub(super) fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let step = SEED_STEP.fetch_add(GOLDEN, Ordering::Relaxed);
        Self::from_seed(nanos ^ step.wrapping_add(GOLDEN))
    }

    /// A generator with a fixed seed (tests).
    pub(super) fn from_seed(seed: u64) -> Self {
        // Xorshift is stuck at zero; any other state is fine.
        Self {
            state: if seed == 0 { GOLDEN } else { seed },
        }
    }

    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `latency` plus a uniform draw from `[-jitter, +jitter]`, never below zero.
    pub(super) fn delay(&mut self, latency: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return latency;
        }
        let span = jitter.as_nanos().min(u128::from(u64::MAX / 2)) as u64;
        // The modulo bias over 2^64 is far below anything a timer can show.
        let offset = self.next_u64() % (2 * span + 1);
        let early = Duration::from_nanos(span);
        (latency + Duration::from_nanos(offset)).saturating_sub(early)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_jitter_is_the_latency() {
        let mut j = Jitter::from_seed(7);
        assert_eq!(
            j.delay(Duration::from_millis(5), Duration::ZERO),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn draws_stay_in_range_and_cover_both_sides() {
        let mut j = Jitter::from_seed(42);
        let (lat, jit) = (Duration::from_millis(50), Duration::from_millis(10));
        let (mut below, mut above) = (0, 0);
        for _ in 0..10_000 {
            let d = j.delay(lat, jit);
            assert!(d >= lat - jit && d <= lat + jit, "{d:?}");
            if d < lat - jit / 2 {
                below += 1;
            }
            if d > lat + jit / 2 {
                above += 1;
            }
        }
        // Uniform: about a quarter of the draws fall in each outer half of the range.
        assert!((2000..3000).contains(&below), "{below}");
        assert!((2000..3000).contains(&above), "{above}");
    }

    #[test]
    fn jitter_larger_than_latency_clamps_at_zero() {
        let mut j = Jitter::from_seed(3);
        let mut zeros = 0;
        for _ in 0..1000 {
            let d = j.delay(Duration::from_millis(1), Duration::from_millis(10));
            assert!(d <= Duration::from_millis(11));
            zeros += usize::from(d.is_zero());
        }
        assert!(zeros > 0);
    }

    #[test]
    fn clock_seeded_generators_differ() {
        let mut a = Jitter::from_clock();
        let mut b = Jitter::from_clock();
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
