//! raftdrill's load generator: YCSB-style workloads driven in closed or open loop against a
//! replicated store, with HDR latency metrics published once a second, two-level thresholds,
//! an optional history of every operation, and the files a run leaves behind.
//!
//! Start with [`LoadSpec`] (what a load is), [`LoadConfig`] (a spec and where it runs) and
//! [`LoadRun`] (or [`run`]).
//!
//! # Layout
//! Public: what the drills and the benches use. The engine's parts are private; their types
//! that callers name are re-exported at the root.
//! - `spec` (private; re-exported): [`LoadSpec`]: what a load is, and a generator's share
//! - `run` (private; re-exported): [`LoadConfig`], [`LoadRun`], [`LoadReport`],
//!   [`LoadError`], [`run()`]: the entry, the 1-Hz merger and the end-of-run conductor
//! - `engine` (private; [`Engine`], [`claim_ctrl_c`]): goose users (default) or tokio tasks as
//!   the worker pool
//! - `driver` (private): one worker step: slot, operation, record
//! - `schedule` (private): open-loop intended start times and the closed-loop user gate
//! - `plan` (private; [`LoadModel`], [`Plan`], [`pool_for_rate`]): load models (open/closed)
//!   and plans (constant, ramp, steps)
//! - `clock` (private; [`RunClock`]): the run's time origin
//! - [`workload`]: the YCSB workloads and operation generation
//! - [`keys`]: key distributions (uniform, zipfian, latest)
//! - [`rng`]: the deterministic generator behind every choice
//! - [`target`]: the store adapter trait, the failover every adapter shares, and
//!   [`target::Store`]; [`reference`](mod@reference): the reference cluster's adapter;
//!   [`etcd`]: etcd's, over its v3 JSON gateway (its wire types and HTTP call serve the
//!   drill's member calls too); `balancer` (private): which endpoints to skip
//! - `http1` (private): the reference adapter's keep-alive HTTP/1.1 client
//! - [`outcome`]: ok / fail / unknown and error classes
//! - [`metrics`]: the request path's recorder shards, merged histograms, [`Snapshot`]
//! - `outbox` (private): completed operations on their way to the drill's stream and the history
//! - [`thresholds`]: the warn/break table and its evaluation
//! - [`history`]: `history.jsonl` and the stream of write outcomes
//! - [`output`]: `timeline.csv`, `latency*.hgrm`, the summary.json piece, the final text
//! - [`stream`]: load from several machines: a generator's stream of seconds and operations,
//!   and the controller's merger
//! - [`units`]: durations and percentages
#![deny(missing_docs)]

mod balancer;
mod clock;
mod driver;
mod engine;
pub mod etcd;
pub mod history;
mod http1;
pub mod keys;
pub mod metrics;
mod outbox;
pub mod outcome;
pub mod output;
mod plan;
pub mod reference;
pub mod rng;
mod run;
mod schedule;
mod spec;
pub mod stream;
pub mod target;
pub mod thresholds;
pub mod units;
pub mod workload;

#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod testkit;

pub use clock::{RunClock, unix_us_now};
pub use engine::{Engine, claim_ctrl_c};
pub use metrics::Snapshot;
pub use plan::{LoadModel, Plan, pool_for_rate};
pub use run::{LoadConfig, LoadError, LoadReport, LoadRun, run};
pub use spec::{LoadSpec, ShareError};
pub use tokio_util::sync::CancellationToken;
pub use workload::{WorkloadKind, WorkloadSpec};
