//! The log's file: a folder (`wal/`) of append-only segments of checksummed records, written
//! by the log writer thread with one `fdatasync` per batch (group commit), as etcd's WAL and
//! TiKV's raft-engine are.
//!
//! Why not a database: a B-tree commit writes pages and a header and syncs more than once;
//! measured here a redb durable commit cost about twice a bare `fdatasync` (bench `log_store`),
//! and a write pays two of them in series (leader, then follower). Every entry not yet purged
//! is kept in memory by the log store anyway, so the file only has to be replayed at start.
//!
//! Format. A segment is `<seq>.wal`, 20 decimal digits: the 8-byte magic, then frames. A frame
//! is the payload's length (u32 LE), its CRC-32 (u32 LE) and the payload, a postcard-encoded
//! [`Record`]. A segment starts with the vote, the committed id and the last purged id as they
//! stand, so a segment needs none before it for those.
//!
//! Rules that make a crash at any point safe:
//! - a batch is acknowledged only after its frames are written and the file `fdatasync`ed; the
//!   segment file and its folder were synced when it was made, so its name survives;
//! - after a failed write (EIO, ENOSPC from `write`, a rename, a file creation) the segment is
//!   never written again: the batch goes again, whole, into a new segment. The failure is
//!   reported for the bytes of that call: every earlier batch was synced, so nothing
//!   acknowledged is at stake, and a full or flaky disk only stalls the log until it heals;
//! - after a failed sync (`fdatasync` of a segment, `fsync` of a new one or of the folder)
//!   nothing more is written and the node stops, as PostgreSQL does since "fsyncgate": Linux
//!   may have dropped the pages it could not write and marked them clean, and the next sync
//!   would report success over data that is not on disk. Nothing not synced was acknowledged;
//!   the node is restarted once the disk is sound (the zero-filled spare is the exception: it
//!   holds no record, and a spare whose sync failed is removed, never used);
//! - every start opens a new segment, so a torn tail is never written after; and it syncs each
//!   segment before reading it and drops its cached pages, so that replay sees what is on disk
//!   (pages left dirty by a kill, or left clean and unwritten by a failed sync, would otherwise
//!   replay as if they were durable, and be acknowledged as such);
//! - every replayed record sets state (entries by index, a truncation, the vote...), so
//!   replaying a batch twice (written, failed, written again) ends where once would;
//! - a closed segment is deleted only once every entry it holds is at or below a purge that is
//!   already on disk; should the deletion itself be lost, replaying it again changes nothing,
//!   because the purge after it drops its entries again.
//!
//! Torn tail or damage. Every batch of a syncing log opens with a sync mark: how many bytes of
//! the segment were synced before the batch was written. Replay reads each segment until its
//! first bad frame (cut short, an impossible length, a checksum mismatch, not a record):
//! - when a mark after it says the bytes it starts at had been synced, it is damage: those
//!   bytes were whole on disk once and changed since. The node refuses to start (as etcd does
//!   on a CRC mismatch), naming the segment and the byte: its data cannot be trusted; wipe it
//!   and let the node rejoin, which restores it from the leader;
//! - otherwise it is a torn tail: the segment ends there. Everything from the last sync on was
//!   never acknowledged, and it is all that can be torn. This covers every crash: mid-batch
//!   (any mix of the batch's pages may have reached the disk, and of the unsynced batches
//!   before it: valid frames may follow the torn one, but their marks name the last sync,
//!   before it); after a failed write (the rest of the abandoned segment is that batch, its
//!   mark naming the sync before it); after a failed sync (the same: the node stops there);
//!   zeros of a spare after the last frame, or the end of a plain segment, are no frame at
//!   all. Records that were written but not acknowledged may replay; they are a prefix of the
//!   log's history in order, as if the crash had come a moment later;
//! - a segment is sealed before a roll and on a clean stop: a last mark covers all of it, so
//!   damage anywhere in it is caught. Only a segment left by a crash (a kill, a power loss)
//!   ends unsealed; damage to its last synced batch cannot be told from a torn write, nothing
//!   written after it saying it was synced (etcd reads its last record the same way when it
//!   holds a zeroed sector). When later segments follow, a lost batch of entries is still
//!   found as a hole (below). With `--fsync never` nothing past a segment's head is ever
//!   synced, so every bad frame is a torn tail.
//!
//! Then the entries must run without a hole from just after the last purged one (from 0,
//! openraft's first index, when none was) to the last: a hole (a damaged batch read as a torn
//! tail at the end of a segment that later ones follow, a lost segment) is damage too, refused
//! naming the missing indexes.
//!
//! Preallocation. With `--fsync always` a segment is zero-filled to its full size and synced
//! before its first frame, so a batch overwrites blocks that are already allocated and
//! written: its `fdatasync` flushes data alone. An append would also have to journal the new
//! file size (measured on this machine's ext4, a 420-byte write + `fdatasync`: 0.14 ms over
//! zeros, 0.20 ms appended; `fallocate`d blocks still journal their conversion on first write).
//! A helper thread fills the next segment ahead (`<pid>-<n>.spare`) while this one is written; a
//! roll renames it into place, writes the header over its first bytes and syncs the file and
//! the folder. When the spare is not ready, the roll makes a plain segment that grows by
//! appends, as every segment did before. The zeros end replay: no frame is empty, so a zero
//! length where a frame should start is the end of what was written.
//!
//! # Layout
//! - `frame`: the frame format and the records it carries, sync marks among them;
//! - `segment`: segment files, their names and their head of saved ids; `WriteError`;
//! - `spare`: the zero-filled next segment and the helper thread that fills it;
//! - `replay`: reading the folder back at start ([`Contents`], [`OpenError`]);
//! - `check`: a torn tail or damage, and the entries without a hole;
//! - `writer`: the writer's handle on the folder ([`Wal`]): open, batches, rolls, purges.

mod check;
mod frame;
mod replay;
mod segment;
mod spare;
#[cfg(test)]
mod test_support;
mod writer;

pub(crate) use frame::{RecordRef, frame};
pub(crate) use replay::{Contents, OpenError};
pub(crate) use writer::{Effect, Wal};

/// The folder of segments inside the data dir.
pub(crate) const DIR: &str = "wal";
