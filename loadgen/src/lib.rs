//! raftdrill's load generator.
//!
//! # Layout
//! - [`rng`]: the deterministic generator behind every choice
//! - [`keys`]: key distributions (uniform, zipfian, latest)
//! - [`workload`]: the YCSB workloads and operation generation
#![deny(missing_docs)]

pub mod keys;
pub mod rng;
pub mod workload;
pub mod plan;
pub mod schedule;
pub mod units;
