//! The writer's handle on the folder ([`Wal`]): opens it (replaying what is there), writes
//! batches of frames, rolls to a new segment when one is full or a write failed, and deletes
//! the segments a purge has emptied. After a failed sync it writes nothing more.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::frame::{RecordRef, frame_into};
use super::replay::{Contents, OpenError, list_segments, replay_segments};
use super::segment::{
    Active, Meta, SEGMENT_BYTES, Segment, WriteError, make_segment, segment_path,
};
use super::spare::{Spare, use_spare};
use crate::typ::{LogId, Vote};

/// What a written frame changes in the writer's own bookkeeping.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Effect {
    Append { last: u64 },
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
    Other,
}

/// The writer's handle on the folder.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    sync: bool,
    segment_bytes: u64,
    /// Older segments, oldest first.
    closed: Vec<Segment>,
    /// `None` after a failed write, until a new segment could be made.
    active: Option<Active>,
    next_seq: u64,
    meta: Meta,
    /// The batch being written: its sync mark and its frames.
    buf: Vec<u8>,
    spare: Spare,
    /// The sync of the batch in `buf` failed: nothing more is written (see [`Wal::write`]).
    unsynced: bool,
    /// Tests: how many of the next batch syncs fail.
    #[cfg(test)]
    fail_syncs: u32,
}

impl Wal {
    /// Opens the folder `dir` (made if missing), replays every segment and starts a new one.
    /// `sync`: whether writes are `fdatasync`ed (`--fsync always`).
    pub(crate) fn open(dir: &Path, sync: bool) -> Result<(Wal, Contents), OpenError> {
        Self::open_with(dir, sync, SEGMENT_BYTES)
    }

    pub(crate) fn open_with(
        dir: &Path,
        sync: bool,
        segment_bytes: u64,
    ) -> Result<(Wal, Contents), OpenError> {
        fs::create_dir_all(dir)?;
        if sync && let Some(parent) = dir.parent() {
            crate::store::sync_dir(parent)?;
        }
        let paths = list_segments(dir)?;
        let (contents, closed) = replay_segments(&paths, sync)?;
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
            unsynced: false,
            #[cfg(test)]
            fail_syncs: 0,
        };
        // The first segment is filled here, so that a short run writes over zeros too; should
        // that fail (a full disk), it is a plain one.
        if sync {
            wal.spare = Spare::filled_now(dir, segment_bytes);
        }
        wal.roll().map_err(|e| match e {
            WriteError::Write(e) | WriteError::Sync(e) => OpenError::Io(e),
        })?;
        wal.drop_purged();
        Ok((wal, contents))
    }

    /// Closes the active segment (if any) and starts a new one holding the current ids.
    fn roll(&mut self) -> Result<(), WriteError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = segment_path(&self.dir, seq);
        let made = match self.spare.take_ready() {
            Some(spare) => use_spare(spare, &path, &self.meta, &self.dir),
            None => make_segment(&path, &self.meta, self.sync, &self.dir),
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
            // The head was synced with the file (plain segments only when the log syncs).
            synced: if self.sync { len } else { 0 },
        });
        Ok(())
    }

    /// Starts the helper on the next spare, unless one is on its way or the log never syncs.
    fn fill_spare(&mut self) {
        if self.sync {
            self.spare.fill(&self.dir, self.segment_bytes);
        }
    }

    /// Writes `frames` as one batch, synced when the log syncs; a syncing log opens it with a
    /// sync mark (see `check`). `sync`: whether this batch must be durable before it returns
    /// (a batch of committed ids alone need not be).
    ///
    /// After a failed write nothing more is written to that segment; the next call writes the
    /// whole batch to a new one. After a failed sync nothing more is written at all: every
    /// later call fails, and the batch is acknowledged only by [`Wal::retry_sync`] (the
    /// planted bug).
    pub(crate) fn write<'a>(
        &mut self,
        frames: impl Iterator<Item = (&'a [u8], Effect)> + Clone,
        sync: bool,
    ) -> Result<(), WriteError> {
        if self.unsynced {
            return Err(WriteError::Sync(io::Error::other(
                "an earlier sync of the log failed; nothing more is written",
            )));
        }
        if self.active.is_none() {
            self.roll()?;
        }
        let active = self.active.as_mut().expect("made above");
        self.buf.clear();
        if self.sync {
            frame_into(&RecordRef::Synced(active.synced), &mut self.buf)
                .map_err(|e| WriteError::Write(io::Error::other(e)))?;
        }
        for (bytes, _) in frames.clone() {
            self.buf.extend_from_slice(bytes);
        }
        if let Err(e) = active.file.write_all(&self.buf) {
            let failed = self.active.take().expect("written above");
            self.closed.push(failed.seg);
            return Err(WriteError::Write(e));
        }
        let synced = self.sync && sync;
        if synced && let Err(e) = self.sync_active() {
            self.unsynced = true;
            return Err(e);
        }
        self.after_batch(frames, synced)
    }

    /// The planted bug (`--unsafe-fsync-retry`, PostgreSQL's before 2018): syncs the segment
    /// again after the batch's sync failed, and on success takes the batch as durable. The
    /// kernel may have dropped the batch's pages at the failure and marked them clean: this
    /// sync then has nothing to write, succeeds, and the batch is acknowledged, not on disk.
    pub(crate) fn retry_sync<'a>(
        &mut self,
        frames: impl Iterator<Item = (&'a [u8], Effect)>,
    ) -> Result<(), WriteError> {
        self.sync_active()?;
        self.unsynced = false;
        self.after_batch(frames, true)
    }

    /// Whether a batch is written whose sync failed (see [`Wal::retry_sync`]).
    pub(crate) fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// `fdatasync` of the active segment, after a batch.
    fn sync_active(&mut self) -> Result<(), WriteError> {
        let active = self.active.as_ref().expect("a batch was written");
        #[cfg(test)]
        if self.fail_syncs > 0 {
            self.fail_syncs -= 1;
            let eio = io::Error::from_raw_os_error(libc::EIO);
            return Err(WriteError::sync(&active.seg.path, eio));
        }
        active
            .file
            .sync_data()
            .map_err(|e| WriteError::sync(&active.seg.path, e))
    }

    /// Seals the active segment, before a roll and on a clean stop: syncs what is not synced
    /// yet, then writes a last sync mark that covers all of it, synced too. Without it no mark
    /// follows the segment's last batch, and damage to that batch would read as a torn tail
    /// (see `check`). Nothing to do for a log that does not sync, or whose sync failed.
    pub(crate) fn seal(&mut self) -> Result<(), WriteError> {
        if !self.sync || self.unsynced || self.active.is_none() {
            return Ok(());
        }
        if self.active.as_ref().is_some_and(|a| a.synced < a.len) {
            self.sync_active()?;
        }
        let active = self.active.as_mut().expect("checked above");
        active.synced = active.len;
        self.buf.clear();
        frame_into(&RecordRef::Synced(active.len), &mut self.buf)
            .map_err(|e| WriteError::Write(io::Error::other(e)))?;
        active
            .file
            .write_all(&self.buf)
            .map_err(WriteError::Write)?;
        active.len += self.buf.len() as u64;
        self.sync_active()?;
        let active = self.active.as_mut().expect("checked above");
        active.synced = active.len;
        Ok(())
    }

    /// The bookkeeping of the batch in `buf`, written (and synced when `synced`): its effects,
    /// a roll when the segment is full, a purge's deletions.
    fn after_batch<'a>(
        &mut self,
        frames: impl Iterator<Item = (&'a [u8], Effect)>,
        synced: bool,
    ) -> Result<(), WriteError> {
        let active = self.active.as_mut().expect("a batch was written");
        active.len += self.buf.len() as u64;
        if synced {
            active.synced = active.len;
        }
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
        if active.len >= self.segment_bytes {
            match self.seal().and_then(|()| self.roll()) {
                Ok(()) => {}
                // The batch is on disk, but the log cannot go on.
                Err(e @ WriteError::Sync(_)) => return Err(e),
                Err(WriteError::Write(e)) => {
                    // The batch is on disk; the next write tries again to start a segment.
                    tracing::warn!(error = %e, "cannot start a new log segment");
                    if let Some(old) = self.active.take() {
                        self.closed.push(old.seg);
                    }
                }
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
    pub(super) fn segments(&self) -> usize {
        self.closed.len() + usize::from(self.active.is_some())
    }

    /// Waits for the helper to finish the spare.
    #[cfg(test)]
    pub(super) fn wait_spare(&mut self) {
        self.spare.wait();
    }

    /// Makes the next `n` batch syncs fail with EIO, as a failing disk's would.
    #[cfg(test)]
    pub(crate) fn fail_next_syncs(&mut self, n: u32) {
        self.fail_syncs = n;
    }

    /// How many bytes of the active segment are written.
    #[cfg(test)]
    pub(super) fn written(&self) -> u64 {
        self.active.as_ref().unwrap().len
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};

    use super::*;
    use crate::store::wal::frame::{RecordRef, frame};
    use crate::store::wal::test_support::{append, entry, segment_files, write};
    use crate::typ::Entry;

    #[test]
    fn segments_roll_and_purged_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(dir.path(), true, 2048).unwrap();
        let vote = Vote::new(1, 1);
        write(&mut wal, RecordRef::Vote(&vote), Effect::Vote(vote));
        for i in 0..40 {
            append(&mut wal, 1, i * 10..=i * 10 + 9);
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
            (351..=399).collect::<Vec<_>>()
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
        append(&mut wal, 1, 0..=3);
        let failed_at = wal.written() as usize;
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
        // The failed write may have left part of the batch, then zeros or garbage that was never
        // acknowledged (the batch's own mark names the sync before it): a torn tail, no damage.
        let mut partial = frame(&RecordRef::Synced(failed_at as u64)).unwrap();
        partial.extend_from_slice(&f[..f.len() / 2]);
        for garbage in [&[][..], &[0xAB; 64][..]] {
            let mut bytes = failed.clone();
            bytes.splice(failed_at..failed_at, partial.iter().chain(garbage).copied());
            fs::write(&path, &bytes).unwrap();
            let (_, c) = Wal::open(dir.path(), true).unwrap();
            assert_eq!(
                c.entries.keys().copied().collect::<Vec<_>>(),
                (0..=8).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn after_a_failed_sync_nothing_more_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), true).unwrap();
        append(&mut wal, 1, 0..=3);
        wal.fail_next_syncs(1);
        let entries: Vec<Entry> = (4..=6).map(|i| entry(1, i)).collect();
        let f = frame(&RecordRef::Append(&entries)).unwrap();
        let batch = || std::iter::once((f.as_slice(), Effect::Append { last: 6 }));
        assert!(wal.write(batch(), true).unwrap_err().is_sync());
        let len = wal.written();
        // Not again, not elsewhere: the log stops (the caller stops the node).
        assert!(wal.write(batch(), true).unwrap_err().is_sync());
        assert_eq!((wal.written(), wal.segments()), (len, 1));
        // The planted bug syncs the same segment again and takes the batch as written.
        wal.retry_sync(batch()).unwrap();
        append(&mut wal, 1, 7..=8);
        assert_eq!(wal.segments(), 1);
    }
}
