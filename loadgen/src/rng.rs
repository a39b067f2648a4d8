//! The deterministic random number generator behind every choice of the load: the workspace's
//! one generator, SplitMix64 (`raftdrill-rng`), re-exported here so that callers name it as
//! before.
//!
//! The load generator promises that the same seed gives the same operation sequence, across
//! platforms and across versions of its dependencies; SplitMix64 is fully specified, and the
//! test below pins the numbers a seed gives.

pub use raftdrill_rng::SplitMix64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_numbers_it_always_gave() {
        let mut r = SplitMix64::for_stream(7, 3);
        let stream: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            stream,
            [
                15_279_880_449_357_748_040,
                2_306_056_970_584_711_772,
                14_679_405_529_615_250_791,
            ]
        );
        let mut r = SplitMix64::new(42);
        let keys: Vec<u64> = (0..3).map(|_| r.below(10_000)).collect();
        assert_eq!(keys, [7415, 1599, 2786]);
        assert_eq!(SplitMix64::new(42).next_f64(), 0.7415648787718233);
    }
}
