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
//! - after a failed write or sync the segment is never written again (after a failed `fsync`
//!   the kernel may have dropped the dirty pages and marked them clean): the batch goes again,
//!   whole, into a new segment;
//! - replay reads each segment until its first frame that is cut short or fails its checksum.
//!   Nothing after it in that segment was ever acknowledged: an acknowledgement follows a sync
//!   of everything written before it, and a segment that failed is left for good. Records
//!   that were written but not acknowledged may replay; they are a prefix of the log's history
//!   in order, as if the crash had come a moment later;
//! - every replayed record sets state (entries by index, a truncation, the vote...), so
//!   replaying a batch twice (written, failed, written again) ends where once would;
//! - a closed segment is deleted only once every entry it holds is at or below a purge that is
//!   already on disk; should the deletion itself be lost, replaying it again changes nothing,
//!   because the purge after it drops its entries again.
//!
//! Every start opens a new segment, so a torn tail is never written after.
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
//! - `frame`: the frame format and the records it carries;
//! - `segment`: segment files, their names and their head of saved ids;
//! - `spare`: the zero-filled next segment and the helper thread that fills it;
//! - `replay`: reading the folder back at start ([`Contents`]);
//! - `writer`: the writer's handle on the folder ([`Wal`]): open, batches, rolls, purges.

mod frame;
mod replay;
mod segment;
mod spare;
#[cfg(test)]
mod test_support;
mod writer;

pub(crate) use frame::{RecordRef, frame};
pub(crate) use replay::Contents;
pub(crate) use writer::{Effect, Wal};

/// The folder of segments inside the data dir.
pub(crate) const DIR: &str = "wal";
