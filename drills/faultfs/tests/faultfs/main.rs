//! faultfs mounted for real: each test starts its own `raftdrill-faultfs` process over a
//! temporary backing directory and drives it through the kernel. They need root and
//! `/dev/fuse` (as CI has) and fail, saying so, without them.
//!
//! No test leaves a mount behind, even when it fails: every mount is owned by a
//! `FaultFsProcess` guard that stops the process and detaches the mount on drop.

mod lifecycle;
mod modes;
mod overhead;
mod power_loss;
mod redb;
mod support;
