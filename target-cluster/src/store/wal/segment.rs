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
) -> io::Result<(File, u64)> {
    let head = head(meta)?;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    file.write_all(&head)?;
    if sync {
        file.sync_all()?;
        crate::store::sync_dir(dir)?;
    }
    Ok((file, head.len() as u64))
}
