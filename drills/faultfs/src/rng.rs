//! The random source of delay jitter and error draws.
//!
//! Draws only have to look uniform and be replayable from a seed; nothing here is
//! security-relevant. So rather than a dependency this is xorshift64* (Vigna 2016), the same
//! generator the link proxies use for their jitter.

use std::time::Duration;

/// Used for a zero seed, on which xorshift would be stuck (the golden-ratio constant).
const NONZERO: u64 = 0x9E37_79B9_7F4A_7C15;

/// A xorshift64* generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with a fixed seed.
    pub(crate) fn from_seed(seed: u64) -> Self {
        Self {
            state: if seed == 0 { NONZERO } else { seed },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform draw from `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (1 always, 0 never).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p >= 1.0 || (p > 0.0 && self.unit() < p)
    }

    /// `latency` plus a uniform draw from `[-jitter, +jitter]`, never below zero.
    pub(crate) fn delay(&mut self, latency: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return latency;
        }
        let span = jitter.as_nanos().min(u128::from(u64::MAX / 2)) as u64;
        let offset = self.next_u64() % (2 * span + 1);
        (latency + Duration::from_nanos(offset)).saturating_sub(Duration::from_nanos(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_follows_the_probability() {
        let mut r = Rng::from_seed(11);
        assert!((0..1000).all(|_| r.chance(1.0)));
        assert!((0..1000).all(|_| !r.chance(0.0)));
        let hits = (0..10_000).filter(|_| r.chance(0.3)).count();
        assert!((2700..3300).contains(&hits), "{hits}");
    }

    #[test]
    fn same_seed_same_draws() {
        let (mut a, mut b) = (Rng::from_seed(5), Rng::from_seed(5));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn delays_stay_within_the_jitter() {
        let mut r = Rng::from_seed(0);
        let (lat, jit) = (Duration::from_millis(50), Duration::from_millis(10));
        for _ in 0..10_000 {
            let d = r.delay(lat, jit);
            assert!(d >= lat - jit && d <= lat + jit, "{d:?}");
        }
        assert_eq!(r.delay(lat, Duration::ZERO), lat);
    }
}
