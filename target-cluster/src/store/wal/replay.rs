//! Reading the folder back at start. Replay reads each segment until its first frame that is
//! cut short or fails its checksum: nothing after it in that segment was ever acknowledged
//! (see the rules in the module doc of `wal`). Every replayed record sets state, so replaying
//! a batch twice ends where once would.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::frame::{HEAD, MAX_PAYLOAD, Record};
use super::segment::{MAGIC, Segment, seq_of};
use super::spare::is_spare;
use crate::typ::{Entry, LogId, Vote};

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

/// A segment that cannot be read as one.
fn corrupt(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("log segment {}: {what}", path.display()),
    )
}

/// Reads frames from `bytes` (after the magic) into `contents` until the end or the first bad
/// frame. Returns the highest index appended and whether the segment ended cleanly.
pub(super) fn replay(bytes: &[u8], contents: &mut Contents) -> (Option<u64>, bool) {
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

/// The segments in `dir` by sequence number, oldest first. Spares left by earlier runs hold
/// nothing and are removed; a new one is made.
pub(super) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut paths: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(seq) = seq_of(&path) {
            paths.push((seq, path));
        } else if is_spare(&path) {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    paths.sort();
    Ok(paths)
}

/// Replays the segments at `paths` (oldest first) into one [`Contents`]; returns it with the
/// segments that were read, all closed now.
pub(super) fn replay_segments(paths: &[(u64, PathBuf)]) -> io::Result<(Contents, Vec<Segment>)> {
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
    Ok((contents, closed))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::store::wal::frame::{RecordRef, frame};
    use crate::store::wal::segment::SUFFIX;
    use crate::store::wal::test_support::{append, entry, segment_files, terms, write};
    use crate::store::wal::{Effect, Wal};

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
}
