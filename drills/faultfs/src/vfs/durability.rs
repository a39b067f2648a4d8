//! Making namespace changes durable (fsync of a directory) and losing what was not (power
//! loss), or keeping part of the unsynced file data as `crate::loss` draws it.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use raftdrill_rng::SplitMix64;

use super::{HandleKind, Namespace, Vfs, lock};
use crate::journal::{Change, Ino, Place};
use crate::loss::{self, PowerLoss};
use crate::overlay::{Fate, Overlay, Pending};
use crate::stats::PowerLossReport;

impl Namespace {
    /// Deletes a trashed node for good.
    fn purge(&mut self, node: Ino, trashed: &OsStr) {
        let result = self.trash_path(trashed).and_then(|p| {
            if std::fs::symlink_metadata(&p)?.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            }
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, ?trashed, "cannot empty a trash entry");
        }
        self.nodes.mark_subtree_gone(node);
    }

    /// A change became durable: what it removed is deleted for good.
    fn settle(&mut self, change: Change) {
        match change {
            Change::Removed { node, trashed, .. } => self.purge(node, &trashed),
            Change::Renamed {
                replaced: Some((node, trashed)),
                ..
            } => self.purge(node, &trashed),
            Change::Created { .. } | Change::MadeDir { .. } | Change::Renamed { .. } => {}
        }
    }

    /// Whether `place` can take a node back: its directory still exists and the name is free.
    fn is_free(&self, place: &Place) -> bool {
        self.nodes.is_dir(place.parent)
            && self
                .nodes
                .place_path(place)
                .is_ok_and(|p| std::fs::symlink_metadata(p).is_err())
    }

    /// Moves a trashed node back to `place`.
    fn restore(&mut self, node: Ino, trashed: &OsStr, place: &Place) -> io::Result<()> {
        std::fs::rename(self.trash_path(trashed)?, self.nodes.place_path(place)?)?;
        self.nodes.move_to(node, place.clone());
        Ok(())
    }

    /// Undoes one pending change (newest first). Returns whether it was undone (false: a later
    /// durable change had overtaken it and it was left as that change has it).
    fn undo(&mut self, change: Change) -> io::Result<bool> {
        match change {
            Change::Created { at, node } | Change::MadeDir { at, node } => {
                if self.nodes.place(node) != Some(&at) {
                    return Ok(false);
                }
                let path = self.nodes.place_path(&at)?;
                if self.nodes.is_dir(node) {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
                self.nodes.mark_subtree_gone(node);
                Ok(true)
            }
            Change::Removed { at, node, trashed } => {
                if self.is_free(&at) {
                    self.restore(node, &trashed, &at)?;
                    Ok(true)
                } else {
                    self.purge(node, &trashed);
                    Ok(false)
                }
            }
            Change::Renamed {
                from,
                to,
                node,
                replaced,
            } => {
                let mut undone = false;
                if self.nodes.place(node) == Some(&to) && self.is_free(&from) {
                    std::fs::rename(self.nodes.place_path(&to)?, self.nodes.place_path(&from)?)?;
                    self.nodes.move_to(node, from);
                    undone = true;
                }
                if let Some((old, trashed)) = replaced {
                    if self.is_free(&to) {
                        self.restore(old, &trashed, &to)?;
                    } else {
                        self.purge(old, &trashed);
                        undone = false;
                    }
                }
                Ok(undone)
            }
        }
    }

    /// Deletes whatever is left in the trash (nothing, unless an undo failed).
    fn empty_trash(&mut self) {
        let Ok(trash) = self.nodes.path(self.trash) else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&trash) else {
            return;
        };
        for e in entries.flatten() {
            tracing::warn!(name = ?e.file_name(), "trash entry left after power loss; deleting");
            let _ = match e.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(e.path()),
                _ => std::fs::remove_file(e.path()),
            };
        }
    }
}

impl Vfs {
    /// fsync of a directory: every pending change that touched it becomes durable (and what
    /// those changes removed is deleted for good); then the backing directory is synced.
    pub(crate) fn fsyncdir(&self, ino: Ino, fh: Option<u64>) -> io::Result<()> {
        let handle = fh
            .and_then(|fh| self.handle(fh).ok())
            .filter(|h| h.ino == ino && matches!(h.kind, HandleKind::Dir { .. }));
        let opened = {
            let mut ns = lock(&self.ns);
            if !ns.nodes.is_dir(ino) {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            for change in ns.journal.commit_dir(ino) {
                ns.settle(change);
            }
            match handle {
                Some(_) => None,
                None => Some(File::open(ns.nodes.path(ino)?)?),
            }
        };
        match (&handle, &opened) {
            (Some(h), _) => h.file.sync_all(),
            (None, Some(f)) => f.sync_all(),
            (None, None) => Ok(()),
        }
    }

    /// Power loss: each file keeps of its unsynced data and size changes what `loss` draws
    /// (nothing, for [`Keep::None`](crate::loss::Keep)), and every pending namespace change
    /// is undone, newest first. Open handles stay valid; the mount stays up.
    ///
    /// Call it after the processes that used the filesystem are gone: a write still in flight
    /// would land after the loss, as new unsynced data.
    pub(crate) fn power_loss(&self, loss: PowerLoss) -> PowerLossReport {
        let mut report = PowerLossReport {
            keep: loss.keep,
            seed: loss.seed,
            ..PowerLossReport::default()
        };
        let mut ns = lock(&self.ns);
        // Names first, so the kept data of a file whose create is undone has nowhere to go.
        for change in ns.journal.take_for_undo() {
            let what = format!("{change:?}");
            match ns.undo(change) {
                Ok(true) => report.changes_undone += 1,
                Ok(false) => report.changes_kept += 1,
                Err(e) => {
                    tracing::warn!(error = %e, change = %what, "cannot undo a namespace change");
                    report.changes_kept += 1;
                }
            }
        }
        ns.empty_trash();
        let mut files = lock(&self.files);
        for (ino, state) in files.iter() {
            let mut overlay = lock(&state.overlay);
            state.sync_failed.store(false, Ordering::Relaxed);
            let Some(o) = overlay.take() else {
                continue;
            };
            let log = o.log();
            let mut fates =
                loss::choose(loss.keep, log, &mut SplitMix64::for_stream(loss.seed, *ino));
            if fates.iter().any(|f| *f != Fate::Dropped) {
                // A node the undo removed (or whose unlink was durable) keeps nothing.
                match ns.nodes.path(*ino) {
                    Ok(path) => {
                        if let Err(e) = write_back(&path, log, &fates) {
                            tracing::warn!(error = %e, path = %path.display(), "cannot write back what a power loss kept");
                            report.write_back_failures += 1;
                        }
                    }
                    Err(_) => fates.fill(Fate::Dropped),
                }
            }
            tally(&mut report, log, &fates);
        }
        files.retain(|_, s| Arc::strong_count(s) > 1);
        report
    }
}

/// Makes the backing file at `path` (which holds the durable state the log started from)
/// hold the changes of `log` that `fates` keep, and syncs it.
fn write_back(path: &Path, log: &[Pending], fates: &[Fate]) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    let mut kept = Overlay::replica(file.metadata()?.len());
    for (change, fate) in log.iter().zip(fates) {
        kept.apply(change, *fate);
    }
    kept.flush(&file)?;
    file.sync_data()
}

/// Adds one file's changes and their fates to the report.
pub(crate) fn tally(report: &mut PowerLossReport, log: &[Pending], fates: &[Fate]) {
    let mut lost = false;
    for (p, fate) in log.iter().zip(fates) {
        let c = p.counts();
        match *fate {
            Fate::Kept => {
                report.writes_kept += c.writes;
                report.resizes_kept += c.resizes;
                report.bytes_kept += c.bytes;
            }
            Fate::Torn(head) => {
                lost = true;
                report.writes_torn += 1;
                report.bytes_kept += head as u64;
                report.bytes_dropped += c.bytes - head as u64;
            }
            Fate::Dropped => {
                lost = true;
                report.writes_dropped += c.writes;
                report.resizes_dropped += c.resizes;
                report.bytes_dropped += c.bytes;
            }
        }
    }
    report.files_reverted += u64::from(lost);
}
