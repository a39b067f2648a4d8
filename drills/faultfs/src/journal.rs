//! The namespace changes (create, mkdir, unlink, rmdir, rename) that no directory fsync has made
//! durable yet, in the order they happened.
//!
//! The model is strict POSIX: a change becomes durable only when a directory it touched is
//! fsynced. A create, mkdir, unlink or rmdir touches its parent; a rename touches both parents
//! and is atomic, so an fsync of either one makes the whole rename durable. An fsync of a
//! directory makes durable every pending change that touched it, whenever it happened; changes
//! elsewhere stay pending. On power loss the pending changes are undone newest first
//! (see `vfs::undo`).

use std::ffi::OsString;

/// A node number of the filesystem (the FUSE inode number).
pub(crate) type Ino = u64;

/// A place in the namespace: a directory and a name in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// The directory.
    pub(crate) parent: Ino,
    /// The entry name.
    pub(crate) name: OsString,
}

impl Place {
    pub(crate) fn new(parent: Ino, name: impl Into<OsString>) -> Self {
        Self {
            parent,
            name: name.into(),
        }
    }
}

/// One namespace change; enough to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A file (or fifo, socket, device node) was created at `at`.
    Created {
        /// Where.
        at: Place,
        /// The new node.
        node: Ino,
    },
    /// A directory was created at `at`.
    MadeDir {
        /// Where.
        at: Place,
        /// The new directory.
        node: Ino,
    },
    /// `node` was unlinked or rmdir'ed from `at`; it waits in the trash as `trashed`.
    Removed {
        /// Where it was.
        at: Place,
        /// The removed node.
        node: Ino,
        /// Its name in the trash.
        trashed: OsString,
    },
    /// `node` moved from `from` to `to`; what `to` held before waits in the trash.
    Renamed {
        /// The old place.
        from: Place,
        /// The new place.
        to: Place,
        /// The moved node.
        node: Ino,
        /// The node that `to` held before, and its name in the trash.
        replaced: Option<(Ino, OsString)>,
    },
}

impl Change {
    /// Whether an fsync of directory `dir` makes this change durable.
    fn touches(&self, dir: Ino) -> bool {
        match self {
            Change::Created { at, .. }
            | Change::MadeDir { at, .. }
            | Change::Removed { at, .. } => at.parent == dir,
            Change::Renamed { from, to, .. } => from.parent == dir || to.parent == dir,
        }
    }
}

/// The pending (not yet durable) namespace changes, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pending: Vec<Change>,
}

impl Journal {
    /// Records a change.
    pub(crate) fn push(&mut self, change: Change) {
        self.pending.push(change);
    }

    /// How many changes are pending.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// An fsync of `dir`: removes and returns (oldest first) every pending change that touched
    /// it; they are durable now.
    pub(crate) fn commit_dir(&mut self, dir: Ino) -> Vec<Change> {
        let (durable, pending) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|c| c.touches(dir));
        self.pending = pending;
        durable
    }

    /// Power loss: every pending change, newest first (the order to undo them in).
    pub(crate) fn take_for_undo(&mut self) -> Vec<Change> {
        let mut all = std::mem::take(&mut self.pending);
        all.reverse();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(parent: Ino, name: &str, node: Ino) -> Change {
        Change::Created {
            at: Place::new(parent, name),
            node,
        }
    }

    #[test]
    fn an_fsync_commits_only_the_changes_of_its_directory() {
        let mut j = Journal::default();
        j.push(created(1, "a", 10));
        j.push(created(2, "b", 11));
        j.push(created(1, "c", 12));
        let durable = j.commit_dir(1);
        assert_eq!(durable, vec![created(1, "a", 10), created(1, "c", 12)]);
        assert_eq!(j.len(), 1);
        assert!(j.commit_dir(1).is_empty());
        assert_eq!(j.take_for_undo(), vec![created(2, "b", 11)]);
        assert_eq!(j.len(), 0);
    }

    #[test]
    fn a_rename_is_durable_through_either_parent() {
        let rename = Change::Renamed {
            from: Place::new(2, "x"),
            to: Place::new(3, "y"),
            node: 9,
            replaced: None,
        };
        for dir in [2, 3] {
            let mut j = Journal::default();
            j.push(rename.clone());
            assert_eq!(j.commit_dir(dir), vec![rename.clone()]);
        }
        let mut j = Journal::default();
        j.push(rename.clone());
        assert!(j.commit_dir(1).is_empty());
    }

    #[test]
    fn undo_order_is_newest_first() {
        let mut j = Journal::default();
        j.push(created(1, "a", 10));
        j.push(Change::Removed {
            at: Place::new(1, "a"),
            node: 10,
            trashed: "0".into(),
        });
        let undo = j.take_for_undo();
        assert!(matches!(undo[0], Change::Removed { .. }));
        assert!(matches!(undo[1], Change::Created { .. }));
    }
}
