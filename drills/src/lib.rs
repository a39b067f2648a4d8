//! raftdrill's drill controller: it starts reference clusters, drives them, and (as the drill
//! issues land) injects faults and judges the run.
//!
//! # Layout
//! - [`cli`]: the clap definitions of the `raftdrill` command line
//! - [`cmd`]: one module per subcommand (`cluster`, the hidden `node`)
//! - [`local_cluster`]: N reference nodes on loopback, started and watched as child processes
//! - [`supervisor`]: spawning, signalling and reaping node processes; nothing outlives raftdrill
//! - [`signals`]: SIGINT/SIGTERM as a future
//! - [`exit`]: the documented exit codes
#![deny(missing_docs)]

pub mod cli;
pub mod cmd;
pub mod exit;
pub mod local_cluster;
pub mod signals;
pub mod supervisor;
