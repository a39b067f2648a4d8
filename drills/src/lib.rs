//! raftdrill's drill controller: it starts reference clusters, drives them, and (as the drill
//! issues land) injects faults and judges the run.
//!
//! # Layout
//! - [`admin`]: a typed client of the nodes' admin API
//! - [`capacity`]: the capacity search, its SLO and its curve
//! - [`compare`]: two results folders side by side, with noise and limits
//! - [`check`]: the lost-write check and recovery times
//! - [`cli`]: the clap definitions of the `raftdrill` command line
//! - [`drill`]: the conductor of one drill: rig, poller, faults, judge, results
//! - [`cmd`]: one module per subcommand (`cluster`, the hidden `node`)
//! - [`etcd`]: etcd members as child processes, their status, and link faults between them
//! - [`live`]: the ratatui live view of a running drill
//! - [`local_cluster`]: N reference nodes on loopback, started and watched as child processes
//! - [`report`]: timeline.svg, report.md and report.html from a folder's files; repeats
//! - [`proxy`]: one user-space TCP proxy per directed link, for link faults without root
//! - [`scenario`]: scenario files: parsing, validation, the built-in library
//! - [`supervisor`]: spawning, signalling and reaping node processes; nothing outlives raftdrill
//! - [`signals`]: SIGINT/SIGTERM as a future
//! - [`exit`]: the documented exit codes
#![deny(missing_docs)]

pub mod admin;
pub mod capacity;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod drill;
pub mod etcd;
pub mod exit;
pub mod hosts;
pub mod live;
pub mod local_cluster;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod signals;
pub mod supervisor;
