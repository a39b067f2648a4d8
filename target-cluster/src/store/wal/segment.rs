//! Segment files: `<seq>.wal`, 20 decimal digits, holding the 8-byte magic and then frames. A
//! segment starts with the vote, the committed id and the last purged id as they stand
//! ([`head`]), so a segment needs none before it for those.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::frame::{RecordRef, frame};
use crate::typ::{LogId, Vote};

pub(super) const MAGIC: &[u8; 8] = b"RDWAL\x00\x00\x01";
pub(super) const SUFFIX: &str = ".wal";
/// A segment is closed and a new one started once it has grown past this.
pub(crate) const SEGMENT_BYTES: u64 = 16 << 20;

/// The ids a new segment starts with.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Meta {
    pub(super) vote: Option<Vote>,
    pub(super) committed: Option<LogId>,
    pub(super) purged: Option<LogId>,
}

#[derive(Debug)]
pub(super) struct Segment {
    pub(super) path: PathBuf,
    /// The highest entry index appended to it.
    pub(super) max_index: Option<u64>,
}

/// The segment being written.
#[derive(Debug)]
pub(super) struct Active {
    pub(super) seg: Segment,
    pub(super) file: File,
    pub(super) len: u64,
    /// How many of its bytes a sync has made durable (the next batch's sync mark).
    pub(super) synced: u64,
}

/// A batch, or a new segment, that could not be written. The two are handled apart (see the
/// module doc of `wal`): after a failed write the log goes on in a new segment, after a failed
/// sync it must stop.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// A write, a rename or a file creation failed (EIO, ENOSPC): nothing earlier is lost.
    #[error("{0}")]
    Write(io::Error),
    /// An `fsync`/`fdatasync` of a segment or of the log's folder failed: the kernel may have
    /// dropped the dirty pages it could not write and marked them clean, so that the next
    /// sync reports success over data that is not on disk.
    #[error("fsync failed: {0}")]
    Sync(io::Error),
}

impl WriteError {
    /// Whether the failure was a sync's.
    pub(crate) fn is_sync(&self) -> bool {
        matches!(self, WriteError::Sync(_))
    }

    /// A failed sync of `path` (a segment or the folder), named in the error.
    pub(super) fn sync(path: &Path, e: io::Error) -> Self {
        WriteError::Sync(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

/// The sequence number of the segment at `path`; `None` for any other file.
pub(super) fn seq_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(SUFFIX)?.parse().ok()
}

/// Where segment `seq` of the folder `dir` lives.
pub(super) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SUFFIX}"))
}

/// The segment's first frames: the magic and the ids it starts with.
pub(super) fn head(meta: &Meta) -> io::Result<Vec<u8>> {
    let mut head = MAGIC.to_vec();
    let m = *meta;
    let encode = |r: &RecordRef<'_>| frame(r).map_err(io::Error::other);
    if let Some(v) = &m.vote {
        head.extend(encode(&RecordRef::Vote(v))?);
    }
    if m.committed.is_some() {
        head.extend(encode(&RecordRef::Committed(&m.committed))?);
    }
    if let Some(p) = &m.purged {
        head.extend(encode(&RecordRef::Purge(p))?);
    }
    Ok(head)
}

/// A plain segment at `path` in `dir`: the head alone, grown by appends; the file and the
/// folder are synced when the log syncs.
pub(super) fn make_segment(
    path: &Path,
    meta: &Meta,
    sync: bool,
    dir: &Path,
) -> Result<(File, u64), WriteError> {
    let head = head(meta).map_err(WriteError::Write)?;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(WriteError::Write)?;
    file.write_all(&head).map_err(WriteError::Write)?;
    if sync {
        file.sync_all().map_err(|e| WriteError::sync(path, e))?;
        crate::store::sync_dir(dir).map_err(|e| WriteError::sync(dir, e))?;
    }
    Ok((file, head.len() as u64))
}
