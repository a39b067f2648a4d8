//! The random source for [`LinkMode::Delay`](super::LinkMode::Delay) jitter: the workspace's
//! one generator (`loadgen::rng`, SplitMix64), each link's seeded from the clock.
//!
//! Jitter only has to look uniform to a Raft node's timers; it is not security-relevant and
//! drills do not replay it. [`Jitter::delay`] draws `latency ± jitter`, never below zero.

pub(super) use loadgen::rng::SplitMix64 as Jitter;
