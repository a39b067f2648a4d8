//! The next segment, zero-filled ahead. With `--fsync always` a segment is zero-filled to its
//! full size and synced before its first frame, so a batch overwrites blocks that are already
//! allocated and written and its `fdatasync` flushes data alone (see the module doc of `wal`
//! for the figures). A helper thread fills the next segment (`<pid>-<n>.spare`) while this one
//! is written; a roll renames it into place ([`use_spare`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::segment::{Meta, WriteError, head};

/// The suffix of the next segment, zero-filled ahead by a helper thread; never replayed.
/// Each spare has a name of its own (`<pid>-<n>.spare`): a helper still running for a log
/// that was closed can then only ever write to its own file, never to a later log's.
pub(super) const SPARE: &str = ".spare";
static SPARES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn spare_path(dir: &Path) -> PathBuf {
    let n = SPARES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!("{}-{n}{SPARE}", std::process::id()))
}

/// Whether `path` names a spare (of this run or an earlier one).
pub(super) fn is_spare(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.ends_with(SPARE))
}

/// The next segment, as the helper thread makes it.
#[derive(Debug, Default)]
pub(super) enum Spare {
    /// None asked for (the log does not sync, or the last one was just used).
    #[default]
    None,
    Filling(std::thread::JoinHandle<io::Result<(File, PathBuf)>>),
    Ready((File, PathBuf)),
    /// The helper failed; the next roll asks again.
    Failed,
}

/// Makes `path` a file of `bytes` zeros, synced; removes it again if that fails (it would
/// hold on to what space is left). Its name is not synced: it is renamed before use, and that
/// is synced then. A failed sync here does not stop the log as a segment's does: the spare
/// holds no record and is removed, never used, so no written byte depends on it.
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

impl Spare {
    /// A spare of `bytes` filled here and now, in `dir`; should that fail (a full disk), the
    /// next roll makes a plain segment.
    pub(super) fn filled_now(dir: &Path, bytes: u64) -> Spare {
        match make_spare(spare_path(dir), bytes) {
            Ok(spare) => Spare::Ready(spare),
            Err(e) => {
                tracing::warn!(error = %e, "cannot preallocate a log segment");
                Spare::Failed
            }
        }
    }

    /// The spare, when the helper has finished it.
    pub(super) fn take_ready(&mut self) -> Option<(File, PathBuf)> {
        match std::mem::take(self) {
            Spare::Ready(spare) => Some(spare),
            Spare::Filling(h) if h.is_finished() => match h.join() {
                Ok(Ok(spare)) => Some(spare),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot preallocate a log segment");
                    *self = Spare::Failed;
                    None
                }
                Err(_) => {
                    *self = Spare::Failed;
                    None
                }
            },
            other => {
                *self = other;
                None
            }
        }
    }

    /// Starts the helper on a spare of `bytes` in `dir`, unless one is on its way.
    pub(super) fn fill(&mut self, dir: &Path, bytes: u64) {
        if !matches!(self, Spare::None | Spare::Failed) {
            return;
        }
        let path = spare_path(dir);
        *self = match std::thread::Builder::new()
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

    /// Waits for the helper to finish the spare.
    #[cfg(test)]
    pub(super) fn wait(&mut self) {
        *self = match std::mem::take(self) {
            Spare::Filling(h) => Spare::Ready(h.join().unwrap().unwrap()),
            other => other,
        };
    }
}

/// Renames the spare (`file` at `from`) to `path` in `dir` and writes the head of `meta`
/// over its first zeros.
pub(super) fn use_spare(
    (mut file, from): (File, PathBuf),
    path: &Path,
    meta: &Meta,
    dir: &Path,
) -> Result<(File, u64), WriteError> {
    let head = head(meta).map_err(WriteError::Write)?;
    fs::rename(&from, path).map_err(WriteError::Write)?;
    file.seek(SeekFrom::Start(0)).map_err(WriteError::Write)?;
    file.write_all(&head).map_err(WriteError::Write)?;
    file.sync_data().map_err(|e| WriteError::sync(path, e))?;
    crate::store::sync_dir(dir).map_err(|e| WriteError::sync(dir, e))?;
    Ok((file, head.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::wal::Wal;
    use crate::store::wal::replay::{Contents, End, replay};
    use crate::store::wal::segment::MAGIC;
    use crate::store::wal::test_support::{append, segment_files};

    #[test]
    fn a_synced_segment_is_zero_filled_and_its_zeros_end_replay_cleanly() {
        for sync in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let (mut wal, _) = Wal::open_with(dir.path(), sync, 64 << 10).unwrap();
            append(&mut wal, 1, 0..=5);
            append(&mut wal, 1, 6..=9);
            let written = wal.written();
            drop(wal);
            let path = segment_files(dir.path()).pop().unwrap();
            let bytes = fs::read(&path).unwrap();
            let want = if sync { 64 << 10 } else { written };
            assert_eq!(bytes.len() as u64, want, "sync {sync}");
            let mut c = Contents::default();
            let (max, end) = replay(&bytes, MAGIC.len(), &mut c).unwrap();
            assert_eq!((max, end), (Some(9), End::Clean), "sync {sync}");
            assert_eq!(c.entries.len(), 10);
            let (_, c) = Wal::open_with(dir.path(), sync, 64 << 10).unwrap();
            assert_eq!(c.entries.len(), 10, "sync {sync}");
        }
    }

    #[test]
    fn rolls_take_the_spare_the_helper_filled() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(dir.path(), true, 4096).unwrap();
        for i in 0..60 {
            wal.wait_spare();
            append(&mut wal, 1, i * 10..=i * 10 + 9);
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
            (0..=599).collect::<Vec<_>>()
        );
        assert_eq!(wal.segments(), segment_files(dir.path()).len());
    }
}
