//! What the filesystem counts, and what a power loss dropped: the controller's view.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::loss::Keep;
use crate::mode::Mode;

/// A snapshot of the filesystem's counters and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The active mode.
    pub mode: Mode,
    /// Reads served.
    pub reads: u64,
    /// Writes served (failed ones included).
    pub writes: u64,
    /// fsync and fdatasync of files and directories.
    pub syncs: u64,
    /// create, mknod, mkdir, unlink, rmdir, rename.
    pub namespace_ops: u64,
    /// Everything else (lookup, getattr, open, readdir, ...).
    pub other_ops: u64,
    /// Bytes returned by reads.
    pub bytes_read: u64,
    /// Bytes accepted by writes.
    pub bytes_written: u64,
    /// Operations failed with EIO by `error` mode.
    pub errors_injected: u64,
    /// Failed fsyncs (of files, under `drop_dirty`) that dropped their file's unsynced data.
    pub dirty_drops: u64,
    /// Unsynced bytes those fsyncs dropped (as reads saw them: an overwrite counts once).
    pub dirty_bytes_dropped: u64,
    /// Writes refused with ENOSPC by `full` mode.
    pub enospc_injected: u64,
    /// Operations slowed by `delay` mode.
    pub delayed: u64,
    /// Operations held by `stall` mode.
    pub stalled: u64,
    /// Stalled operations answered EINTR unperformed because their caller was killed.
    pub stall_abandoned: u64,
    /// Files holding unsynced data or size changes now.
    pub files_unsynced: u64,
    /// Unsynced bytes held in memory now.
    pub bytes_unsynced: u64,
    /// Namespace changes not yet made durable by a directory fsync.
    pub changes_unsynced: u64,
    /// Power losses so far.
    pub power_losses: u64,
}

/// What a power loss kept and dropped.
///
/// Writes and bytes are counted as the application wrote them: a range written twice since
/// the last sync counts twice. They count the writes of files that exist after the loss as
/// well as of files whose pending create the loss undid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossReport {
    /// What survived of the unsynced writes, as asked.
    pub keep: Keep,
    /// The seed of the draws, as asked.
    pub seed: u64,
    /// Files that lost some or all of their unsynced writes or size changes.
    pub files_reverted: u64,
    /// Unsynced writes kept whole.
    pub writes_kept: u64,
    /// Unsynced writes torn at a sector boundary: their head kept, their tail dropped.
    pub writes_torn: u64,
    /// Unsynced writes dropped.
    pub writes_dropped: u64,
    /// Unsynced truncates and extensions kept.
    pub resizes_kept: u64,
    /// Unsynced truncates and extensions dropped.
    pub resizes_dropped: u64,
    /// Bytes of the kept writes and torn heads.
    pub bytes_kept: u64,
    /// Bytes of the dropped writes and torn tails.
    pub bytes_dropped: u64,
    /// Files whose kept writes could not be written to the backing file (each is logged); such
    /// a file may hold only part of what was kept.
    pub write_back_failures: u64,
    /// Namespace changes undone (creates, mkdirs, unlinks, rmdirs, renames).
    pub changes_undone: u64,
    /// Pending changes that a later durable change had overtaken, so undoing them would have
    /// contradicted it (e.g. a create whose file a durable rename had already moved away);
    /// they were left as the durable state has them.
    pub changes_kept: u64,
}

/// The live counters, bumped on the request path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) reads: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) namespace_ops: AtomicU64,
    pub(crate) other_ops: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) errors_injected: AtomicU64,
    pub(crate) dirty_drops: AtomicU64,
    pub(crate) dirty_bytes_dropped: AtomicU64,
    pub(crate) enospc_injected: AtomicU64,
    pub(crate) delayed: AtomicU64,
    pub(crate) stalled: AtomicU64,
    pub(crate) stall_abandoned: AtomicU64,
    pub(crate) power_losses: AtomicU64,
}

/// Adds one.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n`.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// A snapshot, with the state figures the caller measured.
    pub(crate) fn snapshot(&self, mode: Mode, unsynced: (u64, u64, u64)) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            mode,
            reads: get(&self.reads),
            writes: get(&self.writes),
            syncs: get(&self.syncs),
            namespace_ops: get(&self.namespace_ops),
            other_ops: get(&self.other_ops),
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.bytes_written),
            errors_injected: get(&self.errors_injected),
            dirty_drops: get(&self.dirty_drops),
            dirty_bytes_dropped: get(&self.dirty_bytes_dropped),
            enospc_injected: get(&self.enospc_injected),
            delayed: get(&self.delayed),
            stalled: get(&self.stalled),
            stall_abandoned: get(&self.stall_abandoned),
            files_unsynced: unsynced.0,
            bytes_unsynced: unsynced.1,
            changes_unsynced: unsynced.2,
            power_losses: get(&self.power_losses),
        }
    }
}
