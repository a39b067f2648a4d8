//! Telling a torn tail from damage, and checking that the replayed entries have no hole.
//!
//! A bad frame is damage when a sync mark written after it in the same segment says the bytes
//! it starts at had been synced before: they were whole on disk once, and something changed
//! them since. Otherwise it is a torn tail: nothing that was ever synced lies after it, so
//! nothing after it was ever acknowledged (a batch is acknowledged only once synced, and the
//! mark of the next batch, or the seal, says so).
//!
//! Why a mark and not simply "any valid frame, or any byte but zero, after the bad one": a
//! crash (or a failed sync) in the middle of a batch can leave any mix of its pages on disk,
//! and of the batches written since the last sync, in any order; so a valid frame may well
//! follow a torn one in a log that is not damaged. Its marks tell them apart: each names the
//! last sync before it, which lies at or before the torn bytes.
//!
//! A segment abandoned after a failed write is read the same way, and never reported as
//! damage: the failed batch was written at its end, opened by its own mark, which names the
//! sync before the batch, at or before any byte of it; after that nothing more was written to
//! the segment (the batch went again, whole, into a new one), so no later mark exists there.
//! What the failed write left (part of the batch, then zeros, or bytes the disk made up) lies
//! after the last sync and was never acknowledged: its first bad frame is a torn tail, and
//! what follows is dropped. Only garbage that happened to hold a valid mark (a CRC-32 match)
//! naming bytes past the bad frame could be mistaken for damage, and then the node refuses to
//! start rather than lose a write.

use std::fmt;

use super::frame::{Bad, HEAD, MAX_MARK, Record, read_frame};

/// A bad frame that a later sync mark proves was synced whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Damage {
    /// Where the bad frame starts (bytes from the start of the segment).
    pub(super) at: usize,
    pub(super) bad: Bad,
    /// Where the sync mark is, and how many bytes it says were synced.
    pub(super) mark_at: usize,
    pub(super) synced: u64,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the frame at byte {} is bad ({}), yet the sync mark at byte {} says the first {} \
             bytes were synced: they changed on disk after they were written",
            self.at, self.bad, self.mark_at, self.synced
        )
    }
}

/// The bad frame at `at` in the segment `bytes` (from its first byte): `Ok` for a torn tail,
/// the proof of damage otherwise.
pub(super) fn torn_or_damaged(bytes: &[u8], at: usize, bad: Bad) -> Result<(), Damage> {
    // After a bad frame the boundaries of the next ones are unknown: try every offset. Only a
    // mark can prove damage, so only mark-sized frames are checksummed.
    for mark_at in at + 1..bytes.len().saturating_sub(HEAD) {
        let len = u32::from_le_bytes(bytes[mark_at..mark_at + 4].try_into().expect("4 bytes"));
        if len == 0 || len as usize > MAX_MARK {
            continue;
        }
        // A mark covers only bytes before itself: it is written after the sync it names.
        if let Ok((Record::Synced(synced), _)) = read_frame(bytes, mark_at)
            && synced > at as u64
            && synced <= mark_at as u64
        {
            return Err(Damage {
                at,
                bad,
                mark_at,
                synced,
            });
        }
    }
    Ok(())
}

/// Checks that the entries (`indexes`, ascending) run without a hole from just after the
/// last purged one (from 0, openraft's first index, when none was purged) to the last; names
/// the missing ones.
pub(super) fn contiguous(
    last_purged: Option<u64>,
    indexes: impl IntoIterator<Item = u64>,
) -> Result<(), String> {
    let first = last_purged.map_or(0, |p| p + 1);
    let mut next = first;
    for index in indexes {
        if index != next {
            let missing = format!("entries {next}..={} are missing", index - 1);
            return Err(match last_purged {
                _ if next != first => {
                    format!("{missing} (entry {} is followed by {index})", next - 1)
                }
                Some(p) => {
                    format!("{missing} (the last purged entry is {p}, the log goes on at {index})")
                }
                None => format!("{missing} (nothing was purged, yet the log starts at {index})"),
            });
        }
        next = index + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::store::wal::frame::{RecordRef, frame};
    use crate::store::wal::test_support::{append, entry, segment_files};
    use crate::store::wal::{Effect, Wal};
    use crate::typ::Entry;

    fn mark(synced: u64) -> Vec<u8> {
        frame(&RecordRef::Synced(synced)).unwrap()
    }

    #[test]
    fn only_a_mark_past_the_bad_frame_and_before_itself_proves_damage() {
        let good = frame(&RecordRef::Truncate(3)).unwrap();
        // A bad frame at 0 (garbage), then a batch whose mark says what was synced.
        let mut bytes = vec![0xAB; 40];
        let mark_at = bytes.len();
        for (synced, damaged) in [(0, false), (1, true), (40, true), (41, false)] {
            bytes.truncate(mark_at);
            bytes.extend(mark(synced));
            bytes.extend(&good);
            let got = torn_or_damaged(&bytes, 0, Bad::Checksum);
            assert_eq!(got.is_err(), damaged, "a mark of {synced}: {got:?}");
            if let Err(d) = got {
                assert_eq!((d.at, d.mark_at, d.synced), (0, mark_at, synced));
            }
        }
        // Valid frames that are not marks prove nothing, nor do zeros or the end of the file.
        bytes.truncate(mark_at);
        bytes.extend(&good);
        bytes.extend([0u8; 64]);
        assert_eq!(torn_or_damaged(&bytes, 0, Bad::Checksum), Ok(()));
        assert_eq!(torn_or_damaged(&bytes[..10], 0, Bad::Short), Ok(()));
    }

    #[test]
    fn a_hole_in_the_entries_is_named() {
        assert_eq!(contiguous(None, [0u64; 0]), Ok(()));
        assert_eq!(contiguous(None, [0, 1, 2]), Ok(()));
        assert_eq!(contiguous(Some(9), [10, 11]), Ok(()));
        assert_eq!(contiguous(Some(9), [0u64; 0]), Ok(()));
        assert_eq!(
            contiguous(None, [0, 1, 5, 6]).unwrap_err(),
            "entries 2..=4 are missing (entry 1 is followed by 5)"
        );
        assert_eq!(
            contiguous(Some(9), [12]).unwrap_err(),
            "entries 10..=11 are missing (the last purged entry is 9, the log goes on at 12)"
        );
        assert_eq!(
            contiguous(None, [3, 4]).unwrap_err(),
            "entries 0..=2 are missing (nothing was purged, yet the log starts at 3)"
        );
    }

    /// Where a batch starts (its sync mark) and where its entries frame starts.
    struct Batch {
        mark: usize,
        entries: usize,
    }

    /// One run of a syncing log in `dir`: each range appended and synced as a batch of its
    /// own. Returns the run's segment and where each batch is in it.
    fn run(dir: &Path, batches: &[std::ops::RangeInclusive<u64>]) -> (PathBuf, Vec<Batch>) {
        let (mut wal, _) = Wal::open(dir, true).unwrap();
        let mut starts = Vec::new();
        for range in batches {
            let at = wal.written();
            starts.push(Batch {
                mark: at as usize,
                entries: at as usize + mark(at).len(),
            });
            append(&mut wal, 1, range.clone());
        }
        drop(wal);
        let path = segment_files(dir).pop().unwrap();
        (path, starts)
    }

    fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = fs::read(path).unwrap();
        change(&mut bytes);
        fs::write(path, &bytes).unwrap();
    }

    fn indexes(dir: &Path) -> Vec<u64> {
        let (_, c) = Wal::open(dir, true).unwrap();
        c.entries.keys().copied().collect()
    }

    fn refusal(dir: &Path) -> String {
        Wal::open(dir, true).unwrap_err().to_string()
    }

    fn name(path: &Path) -> String {
        path.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn a_torn_tail_replays_up_to_it() {
        // Cut short at the end of the file (a plain segment), or its last bytes still zeros (a
        // preallocated one): the tail of the last batch never reached the disk.
        for cut in ["short", "zeros"] {
            let dir = tempfile::tempdir().unwrap();
            let (path, _) = run(dir.path(), &[0..=5, 6..=9]);
            edit(&path, |b| {
                let end = b.iter().rposition(|&x| x != 0).unwrap() + 1;
                match cut {
                    "short" => b.truncate(end - 7),
                    _ => b[end - 7..end].fill(0),
                }
            });
            assert_eq!(indexes(dir.path()), (0..=5).collect::<Vec<_>>(), "{cut}");
        }
    }

    #[test]
    fn valid_frames_after_a_torn_one_are_a_torn_tail_when_never_synced() {
        // A power loss can keep any of the pages written since the last sync: here the batch
        // 4..=6 lost some, the one after it (not synced either) kept its own. Its mark names
        // the last sync, before the torn frame: nothing from there on was acknowledged.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1, 0..=3);
        let torn = wal.written() as usize + mark(0).len() + 20;
        for range in [4..=6, 7..=9] {
            let entries: Vec<Entry> = range.clone().map(|i| entry(1, i)).collect();
            let f = frame(&RecordRef::Append(&entries)).unwrap();
            let last = *range.end();
            wal.write(
                std::iter::once((f.as_slice(), Effect::Append { last })),
                false,
            )
            .unwrap();
        }
        drop(wal);
        let path = segment_files(dir.path()).pop().unwrap();
        edit(&path, |b| b[torn..torn + 16].fill(0));
        assert_eq!(indexes(dir.path()), (0..=3).collect::<Vec<_>>());
    }

    #[test]
    fn a_flipped_byte_with_synced_frames_after_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, starts) = run(dir.path(), &[0..=3, 4..=6, 7..=9]);
        edit(&path, |b| b[starts[1].entries + HEAD + 30] ^= 0x10);
        let err = refusal(dir.path());
        let want = format!(
            "segment {}: the frame at byte {} is bad (checksum mismatch), yet the sync mark at \
             byte {} says the first {} bytes were synced: they changed on disk after they were \
             written",
            name(&path),
            starts[1].entries,
            starts[2].mark,
            starts[2].mark,
        );
        assert_eq!(err, want);
    }

    #[test]
    fn damage_in_an_earlier_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, starts) = run(dir.path(), &[0..=3, 4..=6, 7..=9]);
        run(dir.path(), &[10..=12]);
        // The length of the second batch's frame, made impossible.
        edit(&first, |b| b[starts[1].entries + 3] = 0x7f);
        let err = refusal(dir.path());
        let want = format!(
            "segment {}: the frame at byte {} is bad (impossible length",
            name(&first),
            starts[1].entries
        );
        assert!(err.starts_with(&want), "{err}");
    }

    #[test]
    fn a_hole_in_the_entries_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), &[0..=3]);
        let (second, starts) = run(dir.path(), &[4..=6]);
        run(dir.path(), &[7..=9]);
        assert_eq!(indexes(dir.path()), (0..=9).collect::<Vec<_>>());
        // Damage to a segment's last batch reads as a torn tail (nothing synced after it in
        // that segment says otherwise), but the next segment goes on past the entries lost.
        edit(&second, |b| b[starts[0].entries + HEAD + 30] ^= 0x10);
        assert_eq!(
            refusal(dir.path()),
            "entries 4..=6 are missing (entry 3 is followed by 7)"
        );
        // A segment lost altogether.
        fs::remove_file(&second).unwrap();
        assert_eq!(
            refusal(dir.path()),
            "entries 4..=6 are missing (entry 3 is followed by 7)"
        );
    }

    #[test]
    fn a_sealed_segment_refuses_damage_to_its_last_batch() {
        // A clean stop seals the segment.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1, 0..=3);
        let at = wal.written() as usize;
        append(&mut wal, 1, 4..=6);
        wal.seal().unwrap();
        drop(wal);
        let path = segment_files(dir.path()).pop().unwrap();
        let entries = at + mark(at as u64).len();
        edit(&path, |b| b[entries + HEAD + 30] ^= 0x10);
        let want = format!(
            "segment {}: the frame at byte {entries} is bad",
            name(&path)
        );
        assert!(refusal(dir.path()).starts_with(&want));
        // A roll seals the segment it leaves: the damage is named, not found as a hole.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(dir.path(), true, 4096).unwrap();
        let (mut at, mut i) = (0, 0);
        while wal.segments() == 1 {
            at = wal.written() as usize;
            append(&mut wal, 1, i * 10..=i * 10 + 9);
            i += 1;
        }
        drop(wal);
        let first = segment_files(dir.path()).remove(0);
        let entries = at + mark(at as u64).len();
        edit(&first, |b| b[entries + HEAD + 30] ^= 0x10);
        let want = format!(
            "segment {}: the frame at byte {entries} is bad",
            name(&first)
        );
        let err = refusal(dir.path());
        assert!(err.starts_with(&want), "{err}");
    }
}
