//! A fault-injecting passthrough FUSE filesystem for raftdrill, with power-loss semantics in
//! the manner of LazyFS: it goes under a node's data directory, passes every call through to a
//! backing directory, and can be switched at run time to delay, stall or fail I/O, to act as a
//! full disk, or to lose everything that was not fsynced.
//!
//! One `raftdrill faultfs` process serves one mount, so a SIGKILL of the node leaves the
//! filesystem (and what it holds in memory) alive for the power loss that follows. The
//! controller talks to it over a Unix socket ([`FaultFsClient`]) and owns it through a
//! [`FaultFsProcess`] guard.
//!
//! # Layout
//! - [`mode`]: the fault modes ([`Mode`], [`Op`]) as they travel over the control channel
//! - [`stats`]: counters ([`Stats`]) and what a power loss kept and dropped
//!   ([`PowerLossReport`])
//! - [`loss`]: what a power loss keeps of the unsynced writes ([`PowerLoss`], [`Keep`]: none,
//!   torn, reordered), drawn per file from a seed
//! - `overlay`: one file's unsynced bytes and size, held in memory over the backing file
//!   (`overlay::pending`: the same changes in order, which a power loss chooses from)
//! - `journal`: the namespace changes not yet made durable by a directory fsync
//! - `vfs`: the filesystem without FUSE: nodes, handles, data, namespace, durability
//! - `faults`: the active mode applied to each request: delay, park (stall), fail
//! - `fuse`: the `fuser::Filesystem` adapter: requests in, faults applied, replies out
//!   (`fuse::convert`: attributes, file types, errnos and shared replies)
//! - [`control`]: the line-delimited JSON protocol and its server
//! - [`client`]: [`FaultFsClient`], the typed async client
//! - [`serve`]: one filesystem process: mount, control, ready file, clean unmount
//! - [`mounts`]: [`available`], [`cleanup_stale`], lazy unmounts, `/proc/self/mountinfo`
//! - [`process`]: [`FaultFsProcess`], the guard of a spawned `faultfs` process
#![deny(missing_docs)]

pub mod client;
pub mod control;
mod faults;
mod fuse;
mod journal;
pub mod loss;
pub mod mode;
pub mod mounts;
mod overlay;
pub mod process;
pub mod serve;
pub mod stats;
mod vfs;

pub use client::{ClientError, FaultFsClient};
pub use loss::{Keep, PowerLoss, SECTOR};
pub use mode::{ErrorOn, Mode, Op};
pub use mounts::{CleanedMount, CleanupScope, MountError, available, cleanup_stale};
pub use process::{FaultFsLaunch, FaultFsProcess, ProcessError};
pub use serve::{ServeError, ServeOptions};
pub use stats::{PowerLossReport, Stats};

/// The filesystem type this crate mounts, as `/proc/self/mountinfo` shows it
/// (`fuse.raftdrill-faultfs`); [`cleanup_stale`] finds its mounts by it.
pub const FS_TYPE: &str = "fuse.raftdrill-faultfs";
