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

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::typ::{Entry, LogId, Vote};

/// The folder of segments inside the data dir.
pub(crate) const DIR: &str = "wal";
const MAGIC: &[u8; 8] = b"RDWAL\x00\x00\x01";
const SUFFIX: &str = ".wal";
/// The suffix of the next segment, zero-filled ahead by a helper thread; never replayed.
/// Each spare has a name of its own (`<pid>-<n>.spare`): a helper still running for a log
/// that was closed can then only ever write to its own file, never to a later log's.
const SPARE: &str = ".spare";
static SPARES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn spare_path(dir: &Path) -> PathBuf {
    let n = SPARES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!("{}-{n}{SPARE}", std::process::id()))
}
/// A segment is closed and a new one started once it has grown past this.
pub(crate) const SEGMENT_BYTES: u64 = 16 << 20;
const HEAD: usize = 8;
/// Larger lengths are torn or corrupt frames, not records.
const MAX_PAYLOAD: usize = 1 << 30;

/// A record as written. Same variants, in the same order, as [`Record`].
#[derive(Serialize)]
pub(crate) enum RecordRef<'a> {
    Append(&'a [Entry]),
    Truncate(u64),
    Purge(&'a LogId),
    Vote(&'a Vote),
    Committed(&'a Option<LogId>),
}

/// A record as read back.
#[derive(Deserialize, Debug)]
enum Record {
    Append(Vec<Entry>),
    Truncate(u64),
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

/// Encodes `record` as one frame.
pub(crate) fn frame(record: &RecordRef<'_>) -> Result<Vec<u8>, postcard::Error> {
    let out = postcard::to_extend(record, vec![0u8; HEAD])?;
    let mut out = out;
    let len = u32::try_from(out.len() - HEAD).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let crc = crc32fast::hash(&out[HEAD..]);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..HEAD].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The log as replayed: every entry after the last purged one, and the saved ids.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    pub entries: BTreeMap<u64, Entry>,
    pub last_purged: Option<LogId>,
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
}

impl Contents {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Append(entries) => {
                for e in entries {
                    self.entries.insert(e.log_id.index, e);
                }
            }
            Record::Truncate(from) => {
                self.entries.split_off(&from);
            }
            Record::Purge(upto) => {
                if self.last_purged.is_none_or(|p| p.index < upto.index) {
                    self.entries = self.entries.split_off(&(upto.index + 1));
                    self.last_purged = Some(upto);
                }
            }
            Record::Vote(v) => self.vote = Some(v),
            Record::Committed(c) => self.committed = c,
        }
    }
}

/// What a written frame changes in the writer's own bookkeeping.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Effect {
    Append { last: u64 },
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
    Other,
}

/// The ids a new segment starts with.
#[derive(Debug, Default, Clone, Copy)]
struct Meta {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// The highest entry index appended to it.
    max_index: Option<u64>,
}

/// The segment being written.
#[derive(Debug)]
struct Active {
    seg: Segment,
    file: File,
    len: u64,
}

/// The next segment, as the helper thread makes it.
#[derive(Debug, Default)]
enum Spare {
    /// None asked for (the log does not sync, or the last one was just used).
    #[default]
    None,
    Filling(std::thread::JoinHandle<io::Result<(File, PathBuf)>>),
    Ready((File, PathBuf)),
    /// The helper failed; the next roll asks again.
    Failed,
}

/// The writer's handle on the folder.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    sync: bool,
    segment_bytes: u64,
    /// Older segments, oldest first.
    closed: Vec<Segment>,
    /// `None` after a failure, until a new segment could be made.
    active: Option<Active>,
    next_seq: u64,
    meta: Meta,
    buf: Vec<u8>,
    spare: Spare,
}

/// A segment that cannot be read as one.
fn corrupt(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("log segment {}: {what}", path.display()),
    )
}

/// Makes `path` a file of `bytes` zeros, synced; removes it again if that fails (it would
/// hold on to what space is left). Its name is not synced: it is renamed before use, and that
/// is synced then.
fn make_spare(path: PathBuf, bytes: u64) -> io::Result<(File, PathBuf)> {
    let fill = || {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        Ok(file)
    };
    match fill() {
        Ok(file) => Ok((file, path)),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Reads frames from `bytes` (after the magic) into `contents` until the end or the first bad
/// frame. Returns the highest index appended and whether the segment ended cleanly.
fn replay(bytes: &[u8], contents: &mut Contents) -> (Option<u64>, bool) {
    let mut at = 0;
    let mut max_index = None;
    while at < bytes.len() {
        // The preallocated zeros after the last frame (no frame starts with a zero length and
        // a zero CRC: no record encodes to nothing). The scan stops at the first byte that is
        // not zero, within a real frame's length.
        if bytes[at..].iter().all(|&b| b == 0) {
            return (max_index, true);
        }
        let Some(head) = bytes.get(at..at + HEAD) else {
            return (max_index, false);
        };
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let Some(payload) = (len <= MAX_PAYLOAD)
            .then(|| bytes.get(at + HEAD..at + HEAD + len))
            .flatten()
        else {
            return (max_index, false);
        };
        if crc32fast::hash(payload) != crc {
            return (max_index, false);
        }
        let Ok(record) = postcard::from_bytes::<Record>(payload) else {
            return (max_index, false);
        };
        if let Record::Append(entries) = &record
            && let Some(last) = entries.iter().map(|e| e.log_id.index).max()
        {
            max_index = max_index.max(Some(last));
        }
        contents.apply(record);
        at += HEAD + len;
    }
    (max_index, true)
}

fn seq_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(SUFFIX)?.parse().ok()
}

impl Wal {
    /// Opens the folder `dir` (made if missing), replays every segment and starts a new one.
    /// `sync`: whether writes are `fdatasync`ed (`--fsync always`).
    pub(crate) fn open(dir: &Path, sync: bool) -> io::Result<(Wal, Contents)> {
        Self::open_with(dir, sync, SEGMENT_BYTES)
    }

    pub(crate) fn open_with(
        dir: &Path,
        sync: bool,
        segment_bytes: u64,
    ) -> io::Result<(Wal, Contents)> {
        fs::create_dir_all(dir)?;
        if sync && let Some(parent) = dir.parent() {
            super::sync_dir(parent)?;
        }
        let mut paths: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if let Some(seq) = seq_of(&path) {
                paths.push((seq, path));
            } else if path.to_str().is_some_and(|p| p.ends_with(SPARE)) {
                // Spares left by earlier runs hold nothing; a new one is made.
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        paths.sort();
        let mut contents = Contents::default();
        let mut closed = Vec::new();
        let last = paths.len().checked_sub(1);
        for (i, (_, path)) in paths.iter().enumerate() {
            let bytes = fs::read(path)?;
            if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
                // Only the newest segment can be one whose making was cut short: each is synced
                // before anything is written after it.
                if Some(i) == last {
                    tracing::warn!(path = %path.display(), "removing a log segment cut short while it was made");
                    fs::remove_file(path)?;
                    continue;
                }
                return Err(corrupt(path, "no segment header"));
            }
            let (max_index, clean) = replay(&bytes[MAGIC.len()..], &mut contents);
            if !clean {
                tracing::warn!(path = %path.display(), "log segment ends in a torn or failed write; replayed up to it");
            }
            closed.push(Segment {
                path: path.clone(),
                max_index,
            });
        }
        let meta = Meta {
            vote: contents.vote,
            committed: contents.committed,
            purged: contents.last_purged,
        };
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            sync,
            segment_bytes,
            closed,
            active: None,
            next_seq: paths.last().map_or(1, |(s, _)| s + 1),
            meta,
            buf: Vec::new(),
            spare: Spare::None,
        };
        // The first segment is filled here, so that a short run writes over zeros too; should
        // that fail (a full disk), it is a plain one.
        if sync {
            wal.spare = match make_spare(spare_path(dir), segment_bytes) {
                Ok(spare) => Spare::Ready(spare),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot preallocate a log segment");
                    Spare::Failed
                }
            };
        }
        wal.roll()?;
        wal.drop_purged();
        Ok((wal, contents))
    }

    /// Closes the active segment (if any) and starts a new one holding the current ids.
    fn roll(&mut self) -> io::Result<()> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.dir.join(format!("{seq:020}{SUFFIX}"));
        let made = match self.take_spare() {
            Some(spare) => self.use_spare(spare, &path),
            None => self.make_segment(&path),
        };
        self.fill_spare();
        if let Err(e) = made {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        let (file, len) = made.expect("checked above");
        if let Some(old) = self.active.take() {
            self.closed.push(old.seg);
        }
        self.active = Some(Active {
            seg: Segment {
                path,
                max_index: None,
            },
            file,
            len,
        });
        Ok(())
    }

    /// The spare, when the helper has finished it.
    fn take_spare(&mut self) -> Option<(File, PathBuf)> {
        match std::mem::take(&mut self.spare) {
            Spare::Ready(spare) => Some(spare),
            Spare::Filling(h) if h.is_finished() => match h.join() {
                Ok(Ok(spare)) => Some(spare),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot preallocate a log segment");
                    self.spare = Spare::Failed;
                    None
                }
                Err(_) => {
                    self.spare = Spare::Failed;
                    None
                }
            },
            other => {
                self.spare = other;
                None
            }
        }
    }

    /// Starts the helper on the next spare, unless one is on its way or the log never syncs.
    fn fill_spare(&mut self) {
        if !self.sync || !matches!(self.spare, Spare::None | Spare::Failed) {
            return;
        }
        let path = spare_path(&self.dir);
        let bytes = self.segment_bytes;
        self.spare = match std::thread::Builder::new()
            .name("wal-spare".into())
            .spawn(move || make_spare(path, bytes))
        {
            Ok(h) => Spare::Filling(h),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the log's preallocation thread");
                Spare::Failed
            }
        };
    }

    /// The segment's first frames: the magic and the ids it starts with.
    fn head(&self) -> io::Result<Vec<u8>> {
        let mut head = MAGIC.to_vec();
        let m = self.meta;
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

    /// Renames the spare (`file` at `from`) to `path` and writes the head over its first
    /// zeros.
    fn use_spare(&self, (mut file, from): (File, PathBuf), path: &Path) -> io::Result<(File, u64)> {
        let head = self.head()?;
        fs::rename(&from, path)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&head)?;
        file.sync_data()?;
        super::sync_dir(&self.dir)?;
        Ok((file, head.len() as u64))
    }

    /// A plain segment: the head alone, grown by appends.
    fn make_segment(&self, path: &Path) -> io::Result<(File, u64)> {
        let head = self.head()?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        file.write_all(&head)?;
        if self.sync {
            file.sync_all()?;
            super::sync_dir(&self.dir)?;
        }
        Ok((file, head.len() as u64))
    }

    /// Writes `frames` as one batch, synced when the log syncs. After an error nothing more is
    /// written to that segment; the next call writes the whole batch to a new one.
    /// `sync`: whether this batch must be durable before it returns (a batch of committed ids
    /// alone need not be).
    pub(crate) fn write<'a>(
        &mut self,
        frames: impl Iterator<Item = (&'a [u8], Effect)> + Clone,
        sync: bool,
    ) -> io::Result<()> {
        if self.active.is_none() {
            self.roll()?;
        }
        let active = self.active.as_mut().expect("made above");
        self.buf.clear();
        for (bytes, _) in frames.clone() {
            self.buf.extend_from_slice(bytes);
        }
        let written = active.file.write_all(&self.buf).and_then(|()| {
            if self.sync && sync {
                active.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            let failed = self.active.take().expect("written above");
            self.closed.push(failed.seg);
            return Err(e);
        }
        active.len += self.buf.len() as u64;
        let mut purged = false;
        for (_, effect) in frames {
            match effect {
                Effect::Append { last } => {
                    active.seg.max_index = active.seg.max_index.max(Some(last));
                }
                Effect::Purge(upto) => {
                    self.meta.purged = Some(upto);
                    purged = true;
                }
                Effect::Vote(v) => self.meta.vote = Some(v),
                Effect::Committed(c) => self.meta.committed = c,
                Effect::Other => {}
            }
        }
        if active.len >= self.segment_bytes
            && let Err(e) = self.roll()
        {
            // The batch is on disk; the next write tries again to start a segment.
            tracing::warn!(error = %e, "cannot start a new log segment");
            if let Some(old) = self.active.take() {
                self.closed.push(old.seg);
            }
        }
        if purged {
            self.drop_purged();
        }
        Ok(())
    }

    /// Whether writes are synced at all (`--fsync always`).
    pub(crate) fn syncs(&self) -> bool {
        self.sync
    }

    /// Deletes the oldest closed segments whose entries are all purged.
    fn drop_purged(&mut self) {
        let Some(purged) = self.meta.purged else {
            return;
        };
        let gone = self
            .closed
            .iter()
            .take_while(|s| s.max_index.is_none_or(|m| m <= purged.index))
            .count();
        for seg in self.closed.drain(..gone) {
            if let Err(e) = fs::remove_file(&seg.path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %seg.path.display(), error = %e, "cannot delete a purged log segment");
            }
        }
    }

    /// How many segment files the log has (for tests and `/status`).
    #[cfg(test)]
    fn segments(&self) -> usize {
        self.closed.len() + usize::from(self.active.is_some())
    }

    /// Waits for the helper to finish the spare.
    #[cfg(test)]
    fn wait_spare(&mut self) {
        self.spare = match std::mem::take(&mut self.spare) {
            Spare::Filling(h) => Spare::Ready(h.join().unwrap().unwrap()),
            other => other,
        };
    }

    /// How many bytes of the active segment are written.
    #[cfg(test)]
    fn written(&self) -> u64 {
        self.active.as_ref().unwrap().len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typ::Request;

    fn entry(term: u64, index: u64) -> Entry {
        let log_id = LogId::new(openraft::CommittedLeaderId::new(term, 1), index);
        openraft::Entry {
            log_id,
            payload: openraft::EntryPayload::Normal(Request::Put {
                key: format!("k{index}"),
                value: "v".repeat(40),
            }),
        }
    }

    fn append(wal: &mut Wal, term: u64, range: std::ops::RangeInclusive<u64>) {
        let entries: Vec<Entry> = range.map(|i| entry(term, i)).collect();
        let f = frame(&RecordRef::Append(&entries)).unwrap();
        let last = entries.last().unwrap().log_id.index;
        wal.write(
            std::iter::once((f.as_slice(), Effect::Append { last })),
            true,
        )
        .unwrap();
    }

    fn write(wal: &mut Wal, record: RecordRef<'_>, effect: Effect) {
        let f = frame(&record).unwrap();
        wal.write(std::iter::once((f.as_slice(), effect)), true)
            .unwrap();
    }

    fn terms(c: &Contents) -> Vec<(u64, u64)> {
        c.entries
            .values()
            .map(|e| (e.log_id.index, e.log_id.leader_id.term))
            .collect()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| seq_of(p).is_some())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn every_record_kind_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, c) = Wal::open(dir.path(), true).unwrap();
        assert!(c.entries.is_empty() && c.vote.is_none());
        append(&mut wal, 1, 1..=10);
        write(&mut wal, RecordRef::Truncate(8), Effect::Other);
        append(&mut wal, 2, 8..=12);
        let vote = Vote::new(2, 3);
        write(&mut wal, RecordRef::Vote(&vote), Effect::Vote(vote));
        let purged = entry(1, 3).log_id;
        write(&mut wal, RecordRef::Purge(&purged), Effect::Purge(purged));
        let committed = Some(entry(2, 9).log_id);
        write(
            &mut wal,
            RecordRef::Committed(&committed),
            Effect::Committed(committed),
        );
        drop(wal);
        let (_, c) = Wal::open(dir.path(), true).unwrap();
        let want: Vec<(u64, u64)> = (4..=7)
            .map(|i| (i, 1))
            .chain((8..=12).map(|i| (i, 2)))
            .collect();
        assert_eq!(terms(&c), want);
        assert_eq!(c.vote, Some(vote));
        assert_eq!(c.last_purged, Some(purged));
        assert_eq!(c.committed, committed);
    }

    #[test]
    fn a_torn_or_corrupt_last_frame_is_dropped_and_what_follows_replays_after_the_rest() {
        for damage in ["cut", "flip"] {
            let dir = tempfile::tempdir().unwrap();
            let (mut wal, _) = Wal::open(dir.path(), true).unwrap();
            append(&mut wal, 1, 1..=5);
            append(&mut wal, 1, 6..=9);
            let end = wal.written() as usize;
            drop(wal);
            let path = segment_files(dir.path()).pop().unwrap();
            let mut bytes = fs::read(&path).unwrap();
            match damage {
                // Torn: the frame's last bytes never reached the disk (zeros, as preallocated).
                "cut" => bytes[end - 7..end].fill(0),
                _ => bytes[end - 1] ^= 0x40,
            }
            fs::write(&path, &bytes).unwrap();
            let (mut wal, c) = Wal::open(dir.path(), true).unwrap();
            assert_eq!(
                c.entries.keys().copied().collect::<Vec<_>>(),
                (1..=5).collect::<Vec<_>>(),
                "{damage}"
            );
            // A new term overwrites from 6 on; replay must not resurrect the dropped frame.
            append(&mut wal, 2, 6..=7);
            drop(wal);
            let (_, c) = Wal::open(dir.path(), true).unwrap();
            let want: Vec<(u64, u64)> = (1..=5).map(|i| (i, 1)).chain([(6, 2), (7, 2)]).collect();
            assert_eq!(terms(&c), want, "{damage}");
        }
    }

    #[test]
    fn a_frame_after_the_first_bad_one_is_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1, 1..=3);
        let start = wal.written();
        append(&mut wal, 1, 4..=6);
        append(&mut wal, 1, 7..=9);
        drop(wal);
        let path = segment_files(dir.path()).pop().unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[start as usize + HEAD + 2] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let (_, c) = Wal::open(dir.path(), true).unwrap();
        assert_eq!(c.entries.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn segments_roll_and_purged_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(dir.path(), true, 2048).unwrap();
        let vote = Vote::new(1, 1);
        write(&mut wal, RecordRef::Vote(&vote), Effect::Vote(vote));
        for i in 0..40 {
            append(&mut wal, 1, i * 10 + 1..=i * 10 + 10);
        }
        let many = wal.segments();
        assert!(many > 10, "{many} segments");
        assert_eq!(segment_files(dir.path()).len(), many);
        let purged = entry(1, 350).log_id;
        write(&mut wal, RecordRef::Purge(&purged), Effect::Purge(purged));
        let few = segment_files(dir.path()).len();
        assert!(
            few < many / 2,
            "{few} of {many} segments left after the purge"
        );
        drop(wal);
        let (wal, c) = Wal::open_with(dir.path(), true, 2048).unwrap();
        assert_eq!(
            c.entries.keys().copied().collect::<Vec<_>>(),
            (351..=400).collect::<Vec<_>>()
        );
        // The vote was written in the first segment, long deleted: every segment carries it.
        assert_eq!(c.vote, Some(vote));
        assert_eq!(c.last_purged, Some(purged));
        assert_eq!(wal.segments(), segment_files(dir.path()).len());
    }

    #[test]
    fn after_a_failed_write_the_batch_goes_whole_into_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1, 1..=3);
        // A handle that refuses writes stands in for a disk that fails.
        let path = wal.active.as_ref().unwrap().seg.path.clone();
        wal.active.as_mut().unwrap().file = File::open(&path).unwrap();
        let entries: Vec<Entry> = (4..=6).map(|i| entry(1, i)).collect();
        let f = frame(&RecordRef::Append(&entries)).unwrap();
        let batch = || std::iter::once((f.as_slice(), Effect::Append { last: 6 }));
        assert!(wal.write(batch(), true).is_err());
        let failed = fs::read(&path).unwrap();
        wal.write(batch(), true).unwrap();
        append(&mut wal, 1, 7..=8);
        assert!(
            fs::read(&path).unwrap() == failed,
            "the failed segment is left alone"
        );
        assert_eq!(wal.segments(), 2);
        drop(wal);
        let (_, c) = Wal::open(dir.path(), true).unwrap();
        assert_eq!(
            c.entries.keys().copied().collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_segment_cut_short_while_being_made_is_removed_and_others_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1, 1..=3);
        drop(wal);
        // Cut short while written (a plain segment), or renamed from the spare before its
        // head was synced (zeros).
        for (seq, cut) in [(99, b"RDW".to_vec()), (199, vec![0u8; 4096])] {
            let newest = dir.path().join(format!("{seq:020}{SUFFIX}"));
            fs::write(&newest, cut).unwrap();
            let (wal, c) = Wal::open(dir.path(), true).unwrap();
            assert_eq!(c.entries.len(), 3);
            assert!(!newest.exists());
            drop(wal);
        }
        let oldest = segment_files(dir.path()).remove(0);
        fs::write(&oldest, b"garbage!").unwrap();
        let err = Wal::open(dir.path(), true).unwrap_err();
        assert!(err.to_string().contains("no segment header"), "{err}");
    }

    #[test]
    fn a_synced_segment_is_zero_filled_and_its_zeros_end_replay_cleanly() {
        for sync in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let (mut wal, _) = Wal::open_with(dir.path(), sync, 64 << 10).unwrap();
            append(&mut wal, 1, 1..=5);
            append(&mut wal, 1, 6..=9);
            let written = wal.written();
            drop(wal);
            let path = segment_files(dir.path()).pop().unwrap();
            let bytes = fs::read(&path).unwrap();
            let want = if sync { 64 << 10 } else { written };
            assert_eq!(bytes.len() as u64, want, "sync {sync}");
            let mut c = Contents::default();
            let (max, clean) = replay(&bytes[MAGIC.len()..], &mut c);
            assert_eq!((max, clean), (Some(9), true), "sync {sync}");
            assert_eq!(c.entries.len(), 9);
            let (_, c) = Wal::open_with(dir.path(), sync, 64 << 10).unwrap();
            assert_eq!(c.entries.len(), 9, "sync {sync}");
        }
    }

    #[test]
    fn bytes_after_the_zeros_make_a_segment_torn() {
        let f = frame(&RecordRef::Truncate(3)).unwrap();
        let mut bytes = f.clone();
        bytes.extend([0u8; 100]);
        let (_, clean) = replay(&bytes, &mut Contents::default());
        assert!(clean);
        // Fewer zeros than a frame head.
        let (_, clean) = replay(&bytes[..f.len() + 3], &mut Contents::default());
        assert!(clean);
        bytes[HEAD + f.len() + 10] = 1;
        let (_, clean) = replay(&bytes, &mut Contents::default());
        assert!(!clean);
    }

    #[test]
    fn rolls_take_the_spare_the_helper_filled() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(dir.path(), true, 4096).unwrap();
        for i in 0..60 {
            wal.wait_spare();
            append(&mut wal, 1, i * 10 + 1..=i * 10 + 10);
        }
        assert!(wal.segments() > 5, "{} segments", wal.segments());
        wal.wait_spare();
        let spares: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().ends_with(SPARE))
            .collect();
        assert_eq!(spares.len(), 1, "{spares:?}");
        assert_eq!(fs::metadata(&spares[0]).unwrap().len(), 4096);
        // Every segment began as a spare: none is shorter than the size it was filled to.
        for path in segment_files(dir.path()) {
            let len = fs::metadata(&path).unwrap().len();
            assert!(len >= 4096, "{}: {len} bytes", path.display());
        }
        drop(wal);
        // A spare left by an earlier run is removed at the next start.
        let left = dir.path().join(format!("999-0{SPARE}"));
        fs::write(&left, [0u8; 4096]).unwrap();
        let (wal, c) = Wal::open_with(dir.path(), true, 4096).unwrap();
        assert!(!left.exists() && !spares[0].exists());
        assert_eq!(
            c.entries.keys().copied().collect::<Vec<_>>(),
            (1..=600).collect::<Vec<_>>()
        );
        assert_eq!(wal.segments(), segment_files(dir.path()).len());
    }
}
