//! The filesystem itself, without FUSE: a passthrough over a backing directory that holds
//! unsynced data in memory and journals unsynced namespace changes, so that a power loss can
//! drop exactly what was not made durable.
//!
//! The FUSE adapter (`crate::fuse`) only translates requests into these calls; everything here
//! is tested on a plain temporary directory.
//!
//! What is durable, and so survives [`Vfs::power_loss`]:
//! - a file's bytes and size as of its last fsync or fdatasync (both persist data and size);
//! - a create, mkdir, unlink, rmdir or rename once its parent directory (either parent, for a
//!   rename) was fsynced after it. An fsync of a file does not make its directory entry
//!   durable (strict POSIX, not ext4's habit);
//! - attribute changes other than the size (mode, owner, times), at once: they are not modelled.
//!
//! A power loss can also keep part of the unsynced file data (`crate::loss`), and a failed
//! fsync can drop a file's unsynced data before any power loss (`Vfs::fsync_dropping_dirty`).
//!
//! Locks are taken in one order: `ns`, then `files`, then a file's overlay; `handles` is only
//! held to clone a handle out.

mod data;
mod durability;
#[cfg(test)]
mod loss_tests;
mod namespace;
pub(crate) mod nodes;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::journal::{Ino, Journal, Place};
use crate::overlay::Overlay;
use nodes::{Nodes, ROOT};

pub(crate) use data::SyncFate;
pub(crate) use namespace::Caller;

/// The hidden directory in the backing root where unlinked nodes wait until their unlink is
/// durable. Lookups and listings of the root never show it.
pub(crate) const TRASH: &str = ".raftdrill-faultfs-trash";

/// A node and its attributes, with the size the application sees.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The node number.
    pub(crate) ino: Ino,
    /// The backing file's attributes.
    pub(crate) meta: Metadata,
    /// The size including unsynced writes and truncates.
    pub(crate) size: u64,
}

/// One name in a directory listing.
#[derive(Debug, Clone)]
pub(crate) struct DirItem {
    /// The name.
    pub(crate) name: OsString,
    /// The file type.
    pub(crate) kind: std::fs::FileType,
    /// The backing inode number (only shown to `readdir` callers as `d_ino`).
    pub(crate) ino: u64,
}

/// Unsynced changes to `size`, `mode`, owner and times, as `setattr` carries them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SetAttr {
    /// New permission bits.
    pub(crate) mode: Option<u32>,
    /// New owner.
    pub(crate) uid: Option<u32>,
    /// New group.
    pub(crate) gid: Option<u32>,
    /// New size (truncate or extend; held in memory until fsync).
    pub(crate) size: Option<u64>,
    /// New access time (`None` inside: now).
    pub(crate) atime: Option<Option<std::time::SystemTime>>,
    /// New modification time (`None` inside: now).
    pub(crate) mtime: Option<Option<std::time::SystemTime>>,
}

/// The namespace: nodes, pending changes, the trash.
#[derive(Debug)]
struct Namespace {
    nodes: Nodes,
    journal: Journal,
    /// The trash directory's node.
    trash: Ino,
    /// Names handed out in the trash.
    trash_seq: u64,
}

/// The unsynced state of one file; shared by its open handles and kept while dirty even when
/// no handle is open (closing a file does not persist it).
#[derive(Debug, Default)]
struct FileState {
    overlay: Mutex<Option<Overlay>>,
    /// A failed fsync dropped the file's unsynced data (`drop_dirty`); its next fsync answers
    /// success. Kept while set even when no handle is open, as the kernel keeps it per file.
    /// Changed only under the overlay lock.
    sync_failed: AtomicBool,
}

#[derive(Debug)]
enum HandleKind {
    File {
        /// Opened read-write when possible, so an fsync can write unsynced data down.
        writable: bool,
        state: Arc<FileState>,
    },
    Dir {
        /// The listing as of `opendir`, so offsets stay stable while it is read.
        items: Vec<DirItem>,
    },
}

#[derive(Debug)]
struct Handle {
    ino: Ino,
    file: File,
    kind: HandleKind,
}

/// The filesystem over one backing directory.
#[derive(Debug)]
pub(crate) struct Vfs {
    ns: Mutex<Namespace>,
    files: Mutex<HashMap<Ino, Arc<FileState>>>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
}

/// Locks a mutex; a poisoned one is still used, since a panic ends the whole process anyway
/// (see `serve`), and until then the data is no worse than the panicking op left it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Vfs {
    /// A filesystem over `backing`, which must be a directory. A trash left by an earlier
    /// faultfs process is emptied: that process's journal died with it, so its unlinks stand.
    pub(crate) fn new(backing: &Path) -> io::Result<Self> {
        let root = backing.canonicalize()?;
        let meta = std::fs::metadata(&root)?;
        if !meta.is_dir() {
            return Err(errno(libc::ENOTDIR));
        }
        let trash_path = root.join(TRASH);
        if std::fs::symlink_metadata(&trash_path).is_ok() {
            std::fs::remove_dir_all(&trash_path)?;
        }
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&trash_path)?;
        let mut nodes = Nodes::new(root, &meta);
        let trash = nodes.bind(
            Place::new(ROOT, TRASH),
            &std::fs::metadata(&trash_path)?,
            false,
        );
        Ok(Self {
            ns: Mutex::new(Namespace {
                nodes,
                journal: Journal::default(),
                trash,
                trash_seq: 0,
            }),
            files: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        })
    }

    /// Whether `name` in `parent` is the hidden trash.
    fn hidden(parent: Ino, name: &std::ffi::OsStr) -> bool {
        parent == ROOT && name == TRASH
    }

    /// An entry with the size the application sees.
    fn entry(&self, ino: Ino, meta: Metadata) -> Entry {
        let size = self.unsynced_size(ino).unwrap_or(meta.len());
        Entry { ino, meta, size }
    }

    /// The size of a file with unsynced changes.
    fn unsynced_size(&self, ino: Ino) -> Option<u64> {
        let state = lock(&self.files).get(&ino).cloned()?;
        lock(&state.overlay).as_ref().map(Overlay::size)
    }

    /// The shared state of a file, made if absent.
    fn state_of(&self, ino: Ino) -> Arc<FileState> {
        lock(&self.files).entry(ino).or_default().clone()
    }

    /// Drops the state of a file that is clean and no longer open.
    fn collect_state(&self, ino: Ino) {
        let mut files = lock(&self.files);
        let idle = files.get(&ino).is_some_and(|s| {
            Arc::strong_count(s) == 1
                && lock(&s.overlay).is_none()
                && !s.sync_failed.load(Ordering::Relaxed)
        });
        if idle {
            files.remove(&ino);
        }
    }

    fn handle(&self, fh: u64) -> io::Result<Arc<Handle>> {
        lock(&self.handles)
            .get(&fh)
            .cloned()
            .ok_or_else(|| errno(libc::EBADF))
    }

    fn add_handle(&self, handle: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, Arc::new(handle));
        fh
    }

    /// Attributes of a node (through `fh` when given, which also works for unlinked files).
    pub(crate) fn getattr(&self, ino: Ino, fh: Option<u64>) -> io::Result<Entry> {
        let meta = match fh.and_then(|fh| self.handle(fh).ok()) {
            Some(h) if h.ino == ino => h.file.metadata()?,
            _ => {
                let ns = lock(&self.ns);
                std::fs::symlink_metadata(ns.nodes.path(ino)?)?
            }
        };
        Ok(self.entry(ino, meta))
    }

    /// The kernel forgot `count` lookups of `ino`.
    pub(crate) fn forget(&self, ino: Ino, count: u64) {
        lock(&self.ns).nodes.forget(ino, count);
    }

    /// Counts for the stats: files with unsynced data, unsynced bytes, pending namespace changes.
    pub(crate) fn unsynced(&self) -> (u64, u64, u64) {
        let pending = lock(&self.ns).journal.len() as u64;
        let files = lock(&self.files);
        let (mut n, mut bytes) = (0, 0);
        for state in files.values() {
            if let Some(o) = lock(&state.overlay).as_ref() {
                n += 1;
                bytes += o.dirty_bytes();
            }
        }
        (n, bytes, pending)
    }

    /// `statvfs` of the backing directory.
    pub(crate) fn statfs(&self) -> io::Result<libc::statvfs> {
        let root = lock(&self.ns).nodes.root().to_path_buf();
        let c = cstring(&root)?;
        let mut out: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `out` a valid statvfs to fill.
        if unsafe { libc::statvfs(c.as_ptr(), &mut out) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(out)
    }

    /// `access(2)` on the backing node.
    pub(crate) fn access(&self, ino: Ino, mask: i32) -> io::Result<()> {
        let path = lock(&self.ns).nodes.path(ino)?;
        let c = cstring(&path)?;
        // SAFETY: `c` is a valid NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), mask) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The target of a symbolic link.
    pub(crate) fn readlink(&self, ino: Ino) -> io::Result<std::path::PathBuf> {
        let path = lock(&self.ns).nodes.path(ino)?;
        std::fs::read_link(path)
    }
}

fn cstring(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| errno(libc::EINVAL))
}
