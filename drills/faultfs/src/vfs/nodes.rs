//! The node table: FUSE inode numbers and where each node lives in the backing directory.
//!
//! A node is one backing inode (hard links are not supported, so one inode has one place). It
//! records its parent node and its name rather than a path, so a rename moves a whole subtree by
//! changing one record. Unlinked nodes keep living in the trash directory until their unlink is
//! durable, so a power loss can put them back.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::journal::{Ino, Place};

/// The FUSE root inode number.
pub(crate) const ROOT: Ino = 1;

#[derive(Debug)]
struct Node {
    place: Place,
    /// The backing inode number.
    backing: u64,
    dir: bool,
    /// Entry replies the kernel has not forgotten yet.
    lookups: u64,
    /// Deleted for good (or never to be found again); kept only while the kernel remembers it.
    gone: bool,
}

/// All nodes the kernel has been told about, plus the ones the namespace code needs.
#[derive(Debug)]
pub(crate) struct Nodes {
    root: PathBuf,
    nodes: HashMap<Ino, Node>,
    /// Live nodes by backing inode number.
    by_backing: HashMap<u64, Ino>,
    next: Ino,
}

fn enoent() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl Nodes {
    /// A table holding the root, which lives at `root` in the backing filesystem.
    pub(crate) fn new(root: PathBuf, root_meta: &Metadata) -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                place: Place::new(ROOT, ""),
                backing: root_meta.ino(),
                dir: true,
                lookups: 1,
                gone: false,
            },
        );
        Self {
            root,
            by_backing: HashMap::from([(root_meta.ino(), ROOT)]),
            nodes,
            next: ROOT + 1,
        }
    }

    /// The backing path of a live node.
    pub(crate) fn path(&self, ino: Ino) -> io::Result<PathBuf> {
        let mut names: Vec<&OsStr> = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let node = self.nodes.get(&at).filter(|n| !n.gone).ok_or_else(enoent)?;
            names.push(&node.place.name);
            at = node.place.parent;
            if names.len() > 4096 {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
        }
        let mut path = self.root.clone();
        path.extend(names.iter().rev());
        Ok(path)
    }

    /// The backing path of `name` in directory `parent`.
    pub(crate) fn child_path(&self, parent: Ino, name: &OsStr) -> io::Result<PathBuf> {
        Ok(self.path(parent)?.join(name))
    }

    /// The backing path of a place.
    pub(crate) fn place_path(&self, place: &Place) -> io::Result<PathBuf> {
        self.child_path(place.parent, &place.name)
    }

    /// The node for the backing inode described by `meta`, found at `place`; made if new.
    /// `counted` says whether the kernel is being handed this node (an entry reply).
    pub(crate) fn bind(&mut self, place: Place, meta: &Metadata, counted: bool) -> Ino {
        let ino = match self.by_backing.get(&meta.ino()) {
            Some(&ino) => ino,
            None => {
                let ino = self.next;
                self.next += 1;
                self.nodes.insert(
                    ino,
                    Node {
                        place: place.clone(),
                        backing: meta.ino(),
                        dir: meta.is_dir(),
                        lookups: 0,
                        gone: false,
                    },
                );
                self.by_backing.insert(meta.ino(), ino);
                ino
            }
        };
        let node = self.nodes.get_mut(&ino).expect("bound above");
        // One inode has one place; if it is found elsewhere it was moved behind our back.
        node.place = place;
        node.dir = meta.is_dir();
        if counted {
            node.lookups += 1;
        }
        ino
    }

    /// Where a live node is now.
    pub(crate) fn place(&self, ino: Ino) -> Option<&Place> {
        self.nodes.get(&ino).filter(|n| !n.gone).map(|n| &n.place)
    }

    /// Whether the node is a live directory.
    pub(crate) fn is_dir(&self, ino: Ino) -> bool {
        self.nodes.get(&ino).is_some_and(|n| n.dir && !n.gone)
    }

    /// Whether the node is live.
    #[cfg(test)]
    pub(crate) fn is_live(&self, ino: Ino) -> bool {
        self.place(ino).is_some()
    }

    /// Moves a node to a new place (after the backing rename).
    pub(crate) fn move_to(&mut self, ino: Ino, place: Place) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.place = place;
        }
    }

    /// The node is deleted for good: it can no longer be found, only forgotten.
    pub(crate) fn mark_gone(&mut self, ino: Ino) {
        if ino == ROOT {
            return;
        }
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.gone = true;
            if self.by_backing.get(&n.backing) == Some(&ino) {
                self.by_backing.remove(&n.backing);
            }
            if n.lookups == 0 {
                self.nodes.remove(&ino);
            }
        }
    }

    /// Marks `ino` and everything below it gone (a directory deleted with its contents).
    pub(crate) fn mark_subtree_gone(&mut self, ino: Ino) {
        let below: Vec<Ino> = self
            .nodes
            .keys()
            .copied()
            .filter(|&n| self.is_below(n, ino))
            .collect();
        for n in below {
            self.mark_gone(n);
        }
        self.mark_gone(ino);
    }

    fn is_below(&self, mut n: Ino, ancestor: Ino) -> bool {
        for _ in 0..4096 {
            let Some(node) = self.nodes.get(&n) else {
                return false;
            };
            if n == ROOT || node.gone {
                return false;
            }
            n = node.place.parent;
            if n == ancestor {
                return true;
            }
        }
        false
    }

    /// The kernel forgot `count` lookups of a node; gone nodes leave the table at zero.
    pub(crate) fn forget(&mut self, ino: Ino, count: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.lookups = n.lookups.saturating_sub(count);
            if n.lookups == 0 && n.gone {
                self.nodes.remove(&ino);
            }
        }
    }

    /// The backing root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Number of nodes held (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_renames_of_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let mut t = Nodes::new(root.clone(), &std::fs::metadata(&root).unwrap());
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"").unwrap();
        let a = t.bind(
            Place::new(ROOT, "a"),
            &std::fs::metadata(root.join("a")).unwrap(),
            true,
        );
        let b = t.bind(
            Place::new(a, "b"),
            &std::fs::metadata(root.join("a/b")).unwrap(),
            true,
        );
        let f = t.bind(
            Place::new(b, "f"),
            &std::fs::metadata(root.join("a/b/f")).unwrap(),
            true,
        );
        assert_eq!(t.path(f).unwrap(), root.join("a/b/f"));
        t.move_to(a, Place::new(ROOT, "z"));
        assert_eq!(t.path(f).unwrap(), root.join("z/b/f"));
        // Binding the same backing inode again gives the same node.
        let again = t.bind(
            Place::new(b, "f"),
            &std::fs::metadata(root.join("a/b/f")).unwrap(),
            false,
        );
        assert_eq!(again, f);
        t.mark_subtree_gone(a);
        assert!(t.path(f).is_err());
        assert!(!t.is_live(b));
        assert!(t.is_live(ROOT));
        // Gone nodes stay while the kernel remembers them, and leave when it forgets.
        assert_eq!(t.len(), 4);
        t.forget(f, 1);
        t.forget(b, 1);
        t.forget(a, 1);
        assert_eq!(t.len(), 1);
    }
}
