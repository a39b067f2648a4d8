//! raftdrill's load generator: YCSB-style workloads driven in closed or open loop against a
//! replicated store, with HDR latency metrics published once a second, two-level thresholds,
//! an optional history of every operation, and the files a run leaves behind.
//!
//! Start with [`LoadConfig`] and [`LoadRun`] (or [`run`]).
//!
//! # Layout
//! - `run` (private; re-exported): [`LoadConfig`], [`LoadRun`], [`LoadReport`],
//!   [`LoadError`], [`run()`]: the entry, the 1-Hz merger and the end-of-run conductor
//! - [`engine`]: goose users (default) or tokio tasks as the worker pool
//! - [`driver`]: one worker step: slot, operation, record
//! - [`schedule`]: open-loop intended start times and the closed-loop user gate
//! - [`plan`]: load models (open/closed) and plans (constant, ramp, steps)
//! - [`workload`]: the YCSB workloads and operation generation
//! - [`keys`]: key distributions (uniform, zipfian, latest)
//! - [`rng`]: the deterministic generator behind every choice
//! - [`target`]: the store adapter trait; [`reference`](mod@reference): the reference cluster's adapter;
//!   [`etcd`]: etcd's, over its v3 JSON gateway; [`balancer`]: the client-side failover both use
//! - [`outcome`]: ok / fail / unknown and error classes
//! - [`metrics`]: per-worker recorders, merged histograms, [`metrics::Snapshot`]
//! - [`thresholds`]: the warn/break table and its evaluation
//! - [`history`]: `history.jsonl` and the stream of write outcomes
//! - [`output`]: `timeline.csv`, `latency*.hgrm`, the summary.json piece, the final text
//! - [`units`]: durations and percentages
#![deny(missing_docs)]

pub mod balancer;
pub mod clock;
pub mod driver;
pub mod engine;
pub mod etcd;
pub mod history;
mod http1;
mod outbox;
pub mod keys;
pub mod metrics;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod reference;
pub mod rng;
mod run;
pub mod schedule;
pub mod target;
pub mod thresholds;
pub mod units;
pub mod workload;

#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod testkit;

pub use clock::RunClock;
pub use engine::{Engine, claim_ctrl_c};
pub use metrics::Snapshot;
pub use plan::{LoadModel, Plan, pool_for_rate};
pub use run::{LoadConfig, LoadError, LoadReport, LoadRun, run};
pub use tokio_util::sync::CancellationToken;
pub use workload::{WorkloadKind, WorkloadSpec};
