//! Namespace operations: lookup, create, mknod, mkdir, unlink, rmdir, rename, directory
//! listings. Each change is applied to the backing directory at once and journaled, so a power
//! loss can undo it; removed nodes go to the trash instead of away.

use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, DirEntryExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::{DirItem, Entry, Handle, HandleKind, Namespace, TRASH, Vfs, cstring, errno, lock};
use crate::journal::{Change, Ino, Place};
use crate::vfs::nodes::ROOT;

/// Who asked, for the owner of new nodes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    /// The caller's uid.
    pub(crate) uid: u32,
    /// The caller's gid.
    pub(crate) gid: u32,
}

impl Namespace {
    /// Moves the node at `path` into the trash; returns its name there.
    fn move_to_trash(&mut self, path: &Path) -> io::Result<OsString> {
        let name = OsString::from(self.trash_seq.to_string());
        self.trash_seq += 1;
        let trash = self.nodes.path(self.trash)?;
        std::fs::rename(path, trash.join(&name))?;
        Ok(name)
    }

    /// The backing path of a name in the trash.
    pub(super) fn trash_path(&self, name: &OsStr) -> io::Result<std::path::PathBuf> {
        Ok(self.nodes.path(self.trash)?.join(name))
    }

    /// Refuses names that would reach the hidden trash.
    fn check_new_name(parent: Ino, name: &OsStr) -> io::Result<()> {
        if Vfs::hidden(parent, name) {
            return Err(errno(libc::EPERM));
        }
        Ok(())
    }
}

/// Hands new nodes to the caller, as the kernel would for a local filesystem. Only root can
/// (and we are root whenever we can mount); elsewhere the node stays ours.
fn chown_to(path: &Path, who: Caller) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && (who.uid, who.gid) != (0, 0) {
        let _ = std::os::unix::fs::lchown(path, Some(who.uid), Some(who.gid));
    }
}

fn is_empty_dir(path: &Path) -> io::Result<bool> {
    Ok(std::fs::read_dir(path)?.next().is_none())
}

impl Vfs {
    /// Looks up `name` in `parent` (one more lookup the kernel will forget).
    pub(crate) fn lookup(&self, parent: Ino, name: &OsStr) -> io::Result<Entry> {
        if Self::hidden(parent, name) {
            return Err(errno(libc::ENOENT));
        }
        let mut ns = lock(&self.ns);
        let path = ns.nodes.child_path(parent, name)?;
        let meta = std::fs::symlink_metadata(&path)?;
        let ino = ns.nodes.bind(Place::new(parent, name), &meta, true);
        drop(ns);
        Ok(self.entry(ino, meta))
    }

    /// Creates and opens a regular file; an existing one is opened unless `O_EXCL` is asked.
    pub(crate) fn create(
        &self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        flags: i32,
        who: Caller,
    ) -> io::Result<(Entry, u64)> {
        Namespace::check_new_name(parent, name)?;
        let mut ns = lock(&self.ns);
        let path = ns.nodes.child_path(parent, name)?;
        let made = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(&path);
        let (file, new) = match made {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && flags & libc::O_EXCL == 0 => (
                OpenOptions::new().read(true).write(true).open(&path)?,
                false,
            ),
            Err(e) => return Err(e),
        };
        if new {
            chown_to(&path, who);
        }
        let meta = file.metadata()?;
        let at = Place::new(parent, name);
        let ino = ns.nodes.bind(at.clone(), &meta, true);
        if new {
            ns.journal.push(Change::Created { at, node: ino });
        }
        drop(ns);
        let state = self.state_of(ino);
        let entry = self.entry(ino, meta);
        let fh = self.add_handle(Handle {
            ino,
            file,
            kind: HandleKind::File {
                writable: true,
                state,
            },
        });
        Ok((entry, fh))
    }

    /// Creates a file, fifo, socket or device node.
    pub(crate) fn mknod(
        &self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        who: Caller,
    ) -> io::Result<Entry> {
        Namespace::check_new_name(parent, name)?;
        let mut ns = lock(&self.ns);
        let path = ns.nodes.child_path(parent, name)?;
        if mode & libc::S_IFMT == libc::S_IFREG {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o7777)
                .open(&path)?;
        } else {
            let c = cstring(&path)?;
            // SAFETY: `c` is a valid NUL-terminated path.
            if unsafe { libc::mknod(c.as_ptr(), mode, libc::dev_t::from(rdev)) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        chown_to(&path, who);
        let meta = std::fs::symlink_metadata(&path)?;
        let at = Place::new(parent, name);
        let ino = ns.nodes.bind(at.clone(), &meta, true);
        ns.journal.push(Change::Created { at, node: ino });
        drop(ns);
        Ok(self.entry(ino, meta))
    }

    /// Creates a directory.
    pub(crate) fn mkdir(
        &self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        who: Caller,
    ) -> io::Result<Entry> {
        Namespace::check_new_name(parent, name)?;
        let mut ns = lock(&self.ns);
        let path = ns.nodes.child_path(parent, name)?;
        DirBuilder::new().mode(mode & 0o7777).create(&path)?;
        chown_to(&path, who);
        let meta = std::fs::symlink_metadata(&path)?;
        let at = Place::new(parent, name);
        let ino = ns.nodes.bind(at.clone(), &meta, true);
        ns.journal.push(Change::MadeDir { at, node: ino });
        drop(ns);
        Ok(self.entry(ino, meta))
    }

    /// Unlinks a non-directory (it waits in the trash until the unlink is durable).
    pub(crate) fn unlink(&self, parent: Ino, name: &OsStr) -> io::Result<()> {
        self.remove(parent, name, false)
    }

    /// Removes an empty directory (it waits in the trash until the removal is durable).
    pub(crate) fn rmdir(&self, parent: Ino, name: &OsStr) -> io::Result<()> {
        self.remove(parent, name, true)
    }

    fn remove(&self, parent: Ino, name: &OsStr, dir: bool) -> io::Result<()> {
        if Self::hidden(parent, name) {
            return Err(errno(libc::ENOENT));
        }
        let mut ns = lock(&self.ns);
        let path = ns.nodes.child_path(parent, name)?;
        let meta = std::fs::symlink_metadata(&path)?;
        match (dir, meta.is_dir()) {
            (false, true) => return Err(errno(libc::EISDIR)),
            (true, false) => return Err(errno(libc::ENOTDIR)),
            (true, true) if !is_empty_dir(&path)? => return Err(errno(libc::ENOTEMPTY)),
            _ => {}
        }
        let at = Place::new(parent, name);
        let node = ns.nodes.bind(at.clone(), &meta, false);
        if node == ROOT {
            return Err(errno(libc::EBUSY));
        }
        let trashed = ns.move_to_trash(&path)?;
        let trash = ns.trash;
        ns.nodes.move_to(node, Place::new(trash, trashed.clone()));
        ns.journal.push(Change::Removed { at, node, trashed });
        Ok(())
    }

    /// Renames `name` in `parent` to `new_name` in `new_parent`. `noreplace` is
    /// `RENAME_NOREPLACE`; `RENAME_EXCHANGE` is not supported (the caller answers EINVAL).
    pub(crate) fn rename(
        &self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        noreplace: bool,
    ) -> io::Result<()> {
        if Self::hidden(parent, name) {
            return Err(errno(libc::ENOENT));
        }
        Namespace::check_new_name(new_parent, new_name)?;
        let mut ns = lock(&self.ns);
        let from_path = ns.nodes.child_path(parent, name)?;
        let to_path = ns.nodes.child_path(new_parent, new_name)?;
        let src = std::fs::symlink_metadata(&from_path)?;
        let from = Place::new(parent, name);
        let to = Place::new(new_parent, new_name);
        let node = ns.nodes.bind(from.clone(), &src, false);
        let mut replaced = None;
        match std::fs::symlink_metadata(&to_path) {
            Ok(dst) => {
                if noreplace {
                    return Err(errno(libc::EEXIST));
                }
                if dst.ino() == src.ino() && dst.dev() == src.dev() {
                    return Ok(());
                }
                match (src.is_dir(), dst.is_dir()) {
                    (true, false) => return Err(errno(libc::ENOTDIR)),
                    (false, true) => return Err(errno(libc::EISDIR)),
                    (true, true) if !is_empty_dir(&to_path)? => {
                        return Err(errno(libc::ENOTEMPTY));
                    }
                    _ => {}
                }
                let old = ns.nodes.bind(to.clone(), &dst, false);
                let trashed = ns.move_to_trash(&to_path)?;
                let trash = ns.trash;
                ns.nodes.move_to(old, Place::new(trash, trashed.clone()));
                replaced = Some((old, trashed));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = std::fs::rename(&from_path, &to_path) {
            // E.g. a directory moved into itself: put the target back as it was.
            if let Some((old, trashed)) = replaced {
                std::fs::rename(ns.trash_path(&trashed)?, &to_path)?;
                ns.nodes.move_to(old, to);
            }
            return Err(e);
        }
        ns.nodes.move_to(node, to.clone());
        ns.journal.push(Change::Renamed {
            from,
            to,
            node,
            replaced,
        });
        Ok(())
    }

    /// Opens a directory; its listing is read now and served from the handle.
    pub(crate) fn opendir(&self, ino: Ino) -> io::Result<u64> {
        let ns = lock(&self.ns);
        let path = ns.nodes.path(ino)?;
        let file = File::open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_dir() {
            return Err(errno(libc::ENOTDIR));
        }
        let mut items = vec![
            DirItem {
                name: ".".into(),
                kind: meta.file_type(),
                ino: meta.ino(),
            },
            DirItem {
                name: "..".into(),
                kind: meta.file_type(),
                ino: meta.ino(),
            },
        ];
        for e in std::fs::read_dir(&path)? {
            let e = e?;
            if ino == ROOT && e.file_name() == TRASH {
                continue;
            }
            items.push(DirItem {
                name: e.file_name(),
                kind: e.file_type()?,
                ino: e.ino(),
            });
        }
        drop(ns);
        Ok(self.add_handle(Handle {
            ino,
            file,
            kind: HandleKind::Dir { items },
        }))
    }

    /// The listing of an open directory from `offset` on (offsets are indexes + 1).
    pub(crate) fn readdir(&self, fh: u64, offset: u64) -> io::Result<Vec<(u64, DirItem)>> {
        let h = self.handle(fh)?;
        let HandleKind::Dir { items } = &h.kind else {
            return Err(errno(libc::ENOTDIR));
        };
        Ok(items
            .iter()
            .enumerate()
            .skip(offset as usize)
            .map(|(i, item)| (i as u64 + 1, item.clone()))
            .collect())
    }

    /// Closes an open file or directory.
    pub(crate) fn release(&self, fh: u64) {
        let Some(h) = lock(&self.handles).remove(&fh) else {
            return;
        };
        let ino = h.ino;
        let is_file = matches!(h.kind, HandleKind::File { .. });
        drop(h);
        if is_file {
            self.collect_state(ino);
        }
    }
}
