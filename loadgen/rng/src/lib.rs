//! The one random generator of raftdrill: loadgen's workloads and key choices, the link
//! proxies' delay jitter, and faultfs's injected errors and delays all draw from it.
//!
//! The load generator promises that the same seed gives the same operation sequence, across
//! platforms and across versions of its dependencies. `rand`'s `StdRng` makes no such promise,
//! so this is SplitMix64 (Steele, Lea and Flood, 2014), which is tiny, fast and fully
//! specified. Nothing drawn here is security-relevant. The crate has no dependencies, so that
//! faultfs, which knows neither drills nor any store, can use it too.
#![deny(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// SplitMix64: a 64-bit generator with a 64-bit state.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

/// Counts the generators seeded from the clock, so that two made in the same nanosecond
/// still draw different numbers.
static CLOCK_STREAMS: AtomicU64 = AtomicU64::new(0);

impl SplitMix64 {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one element of a stream: the same `(seed, stream)` always gives the same
    /// numbers, and neighbouring streams are unrelated.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut mixer = Self::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self::new(mixer.next_u64())
    }

    /// A generator seeded from the wall clock, for draws nobody replays (a link's jitter).
    pub fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::for_stream(nanos, CLOCK_STREAMS.fetch_add(1, Ordering::Relaxed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, bound)`; `bound` must be positive.
    pub fn below(&mut self, bound: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias for huge bounds does not matter here.
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// True with probability `p` (1 always, 0 never).
    pub fn chance(&mut self, p: f64) -> bool {
        p >= 1.0 || (p > 0.0 && self.next_f64() < p)
    }

    /// `latency` plus a uniform draw from `[-jitter, +jitter]`, never below zero.
    pub fn delay(&mut self, latency: Duration, jitter: Duration) -> Duration {
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
    fn the_reference_sequence() {
        // The published SplitMix64 outputs for seed 1234567.
        let mut r = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn same_seed_same_numbers_and_streams_differ() {
        let a: Vec<u64> = {
            let mut r = SplitMix64::for_stream(7, 3);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SplitMix64::for_stream(7, 3);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SplitMix64::for_stream(7, 4);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn floats_are_in_the_unit_interval() {
        let mut r = SplitMix64::new(1);
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(10) < 10);
        }
    }

    #[test]
    fn chance_follows_the_probability() {
        let mut r = SplitMix64::new(11);
        assert!((0..1000).all(|_| r.chance(1.0)));
        assert!((0..1000).all(|_| !r.chance(0.0)));
        let hits = (0..10_000).filter(|_| r.chance(0.3)).count();
        assert!((2700..3300).contains(&hits), "{hits}");
    }

    #[test]
    fn zero_jitter_is_the_latency() {
        let mut r = SplitMix64::new(7);
        assert_eq!(
            r.delay(Duration::from_millis(5), Duration::ZERO),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn delays_stay_in_range_and_cover_both_sides() {
        let mut r = SplitMix64::new(42);
        let (lat, jit) = (Duration::from_millis(50), Duration::from_millis(10));
        let (mut below, mut above) = (0, 0);
        for _ in 0..10_000 {
            let d = r.delay(lat, jit);
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
        let mut r = SplitMix64::new(3);
        let mut zeros = 0;
        for _ in 0..1000 {
            let d = r.delay(Duration::from_millis(1), Duration::from_millis(10));
            assert!(d <= Duration::from_millis(11));
            zeros += usize::from(d.is_zero());
        }
        assert!(zeros > 0);
    }

    #[test]
    fn clock_seeded_generators_differ() {
        let mut a = SplitMix64::from_clock();
        let mut b = SplitMix64::from_clock();
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
