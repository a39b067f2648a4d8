//! File data: open, read, write, truncate, fallocate, fsync. Writes and size changes go to the
//! file's in-memory overlay; only an fsync (or fdatasync) of the file writes them to the
//! backing file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Entry, FileState, Handle, HandleKind, SetAttr, Vfs, cstring, errno, lock};
use crate::journal::Ino;
use crate::overlay::Overlay;

/// Opens a backing file read-write where the permissions allow it (an fsync through a
/// read-only descriptor must still write unsynced data down), read-only otherwise.
fn open_backing(path: &Path) -> io::Result<(File, bool)> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => Ok((f, true)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EROFS | libc::ETXTBSY | libc::EPERM)
            ) =>
        {
            Ok((File::open(path)?, false))
        }
        Err(e) => Err(e),
    }
}

/// Reads up to `len` bytes at `offset` straight from a file.
/// Whether `[from, to)` of `file` is all data, no hole (by `SEEK_DATA` and `SEEK_HOLE`; a
/// filesystem without them reports the whole file as data).
fn backing_has_data(file: &File, from: u64, to: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let seek = |whence| {
        // SAFETY: lseek on a descriptor this function borrows; the file offset it moves is
        // not used by anyone (every access is positioned: pread and pwrite).
        let r = unsafe { libc::lseek(fd, from as libc::off_t, whence) };
        if r < 0 {
            let e = io::Error::last_os_error();
            // ENXIO: no data (or no hole) at or after `from`.
            if e.raw_os_error() == Some(libc::ENXIO) {
                Ok(None)
            } else {
                Err(e)
            }
        } else {
            Ok(Some(r as u64))
        }
    };
    let data_at = seek(libc::SEEK_DATA)?;
    if data_at != Some(from) {
        return Ok(false);
    }
    Ok(seek(libc::SEEK_HOLE)?.is_none_or(|hole| hole >= to))
}

fn read_direct(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// `utimensat` with `None` meaning "now" and an absent time left as it is.
fn set_times(
    path: &Path,
    atime: Option<Option<std::time::SystemTime>>,
    mtime: Option<Option<std::time::SystemTime>>,
) -> io::Result<()> {
    fn spec(t: Option<Option<std::time::SystemTime>>) -> libc::timespec {
        match t {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            Some(None) => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            Some(Some(t)) => {
                let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                }
            }
        }
    }
    let c = cstring(path)?;
    let times = [spec(atime), spec(mtime)];
    // SAFETY: `c` is a valid NUL-terminated path and `times` holds two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What became of an fsync that the disk failed under `drop_dirty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncFate {
    /// It failed and dropped this many unsynced bytes (as reads saw them); answer EIO.
    Dropped(u64),
    /// The file's previous fsync had failed that way, so this one ran and succeeded.
    Synced,
}

impl Handle {
    fn file_state(&self) -> io::Result<(&File, bool, &Arc<FileState>)> {
        match &self.kind {
            HandleKind::File { writable, state } => Ok((&self.file, *writable, state)),
            HandleKind::Dir { .. } => Err(errno(libc::EISDIR)),
        }
    }
}

impl Vfs {
    /// Opens a file. `O_TRUNC` arrives separately, as a `setattr` of the size.
    pub(crate) fn open(&self, ino: Ino) -> io::Result<u64> {
        let (file, writable) = {
            let ns = lock(&self.ns);
            open_backing(&ns.nodes.path(ino)?)?
        };
        if file.metadata()?.is_dir() {
            return Err(errno(libc::EISDIR));
        }
        let state = self.state_of(ino);
        Ok(self.add_handle(Handle {
            ino,
            file,
            kind: HandleKind::File { writable, state },
        }))
    }

    /// Reads what the application sees: the durable bytes under the unsynced ones.
    pub(crate) fn read(&self, fh: u64, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let h = self.handle(fh)?;
        let (file, _, state) = h.file_state()?;
        let overlay = lock(&state.overlay);
        match overlay.as_ref() {
            Some(o) => o.read(offset, u64::from(len), |pos, buf| file.read_at(buf, pos)),
            None => read_direct(file, offset, len as usize),
        }
    }

    /// Writes into the overlay. With `refuse_growth` (disk full) a write that needs space the
    /// file does not hold fails with ENOSPC and changes nothing: past the current size, or
    /// into a hole (a range the file was extended over by a truncate or a seek and never
    /// written, as a database grows its file). Overwriting bytes the file holds succeeds.
    pub(crate) fn write(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        refuse_growth: bool,
    ) -> io::Result<usize> {
        let h = self.handle(fh)?;
        let (file, _, state) = h.file_state()?;
        let mut overlay = lock(&state.overlay);
        let (size, floor) = match overlay.as_ref() {
            Some(o) => (o.size(), o.floor()),
            None => {
                let len = file.metadata()?.len();
                (len, len)
            }
        };
        let end = offset + data.len() as u64;
        if refuse_growth {
            if end > size {
                return Err(errno(libc::ENOSPC));
            }
            let gaps = match overlay.as_ref() {
                Some(o) => o.gaps(offset, end),
                None => vec![(offset, end)],
            };
            // A part no unsynced write covers holds data only where the backing file does.
            let backing_len = file.metadata()?.len().min(floor);
            for (from, to) in gaps {
                if to > backing_len || !backing_has_data(file, from, to)? {
                    return Err(errno(libc::ENOSPC));
                }
            }
        }
        overlay
            .get_or_insert_with(|| Overlay::new(size))
            .write(offset, data);
        Ok(data.len())
    }

    /// Truncates or extends a file in its overlay.
    fn resize(&self, ino: Ino, fh: Option<u64>, len: u64, refuse_growth: bool) -> io::Result<()> {
        let by_handle = fh
            .and_then(|fh| self.handle(fh).ok())
            .filter(|h| h.ino == ino && h.file_state().is_ok());
        // Without a handle, hold the inode open so the durable length is read from it under
        // the overlay lock, whatever renames happen meanwhile.
        let opened;
        let (file, state) = match &by_handle {
            Some(h) => {
                let (file, _, state) = h.file_state()?;
                (file, state.clone())
            }
            None => {
                opened = {
                    let ns = lock(&self.ns);
                    File::open(ns.nodes.path(ino)?)?
                };
                (&opened, self.state_of(ino))
            }
        };
        if file.metadata()?.is_dir() {
            return Err(errno(libc::EISDIR));
        }
        let result = {
            let mut overlay = lock(&state.overlay);
            let size = match overlay.as_ref() {
                Some(o) => o.size(),
                None => file.metadata()?.len(),
            };
            if refuse_growth && len > size {
                Err(errno(libc::ENOSPC))
            } else {
                overlay
                    .get_or_insert_with(|| Overlay::new(size))
                    .truncate(len);
                Ok(())
            }
        };
        drop(state);
        if by_handle.is_none() {
            self.collect_state(ino);
        }
        result
    }

    /// Changes attributes: the size in the overlay, the rest on the backing node at once.
    pub(crate) fn setattr(&self, ino: Ino, fh: Option<u64>, attr: SetAttr) -> io::Result<Entry> {
        if let Some(len) = attr.size {
            self.resize(ino, fh, len, false)?;
        }
        if attr.mode.is_some() || attr.uid.is_some() || attr.gid.is_some() {
            let path = lock(&self.ns).nodes.path(ino)?;
            if let Some(mode) = attr.mode {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
            }
            if attr.uid.is_some() || attr.gid.is_some() {
                std::os::unix::fs::lchown(&path, attr.uid, attr.gid)?;
            }
        }
        if attr.atime.is_some() || attr.mtime.is_some() {
            let path = lock(&self.ns).nodes.path(ino)?;
            set_times(&path, attr.atime, attr.mtime)?;
        }
        self.getattr(ino, fh)
    }

    /// `fallocate`: mode 0 may extend the file (an unsynced size change); `KEEP_SIZE` changes
    /// nothing visible; hole punching and the other modes are not supported.
    pub(crate) fn fallocate(
        &self,
        fh: u64,
        offset: u64,
        len: u64,
        mode: i32,
        refuse_growth: bool,
    ) -> io::Result<()> {
        match mode {
            0 => {
                let end = offset.checked_add(len).ok_or_else(|| errno(libc::EFBIG))?;
                let h = self.handle(fh)?;
                let (file, _, state) = h.file_state()?;
                let mut overlay = lock(&state.overlay);
                let size = match overlay.as_ref() {
                    Some(o) => o.size(),
                    None => file.metadata()?.len(),
                };
                if end > size {
                    if refuse_growth {
                        return Err(errno(libc::ENOSPC));
                    }
                    overlay
                        .get_or_insert_with(|| Overlay::new(size))
                        .truncate(end);
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            _ => Err(errno(libc::EOPNOTSUPP)),
        }
    }

    /// fsync or fdatasync of a file: its unsynced bytes and size go down to the backing file,
    /// which is then synced for real (so the latency of the disk underneath shows).
    pub(crate) fn fsync(&self, fh: u64, datasync: bool) -> io::Result<()> {
        let h = self.handle(fh)?;
        let (file, writable, state) = h.file_state()?;
        // Opened before the overlay lock: the namespace lock must never be taken under it.
        let fallback = if writable {
            None
        } else {
            let ns = lock(&self.ns);
            Some(OpenOptions::new().write(true).open(ns.nodes.path(h.ino)?)?)
        };
        let target = fallback.as_ref().unwrap_or(file);
        {
            let mut overlay = lock(&state.overlay);
            if let Some(o) = overlay.as_ref() {
                o.flush(target)?;
                *overlay = None;
            }
        }
        if datasync {
            target.sync_data()?;
        } else {
            target.sync_all()?;
        }
        // An error a failed fsync reported is behind the file once an fsync succeeds.
        let _overlay = lock(&state.overlay);
        state.sync_failed.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// An fsync or fdatasync that the disk fails under `drop_dirty`, as Linux's after a
    /// writeback error: the file's unsynced writes and size changes are dropped (reads show
    /// what was durable, as after a power loss of this file alone) and the caller answers EIO.
    /// The file remembers that the error was reported, so the fsync after it succeeds; if this
    /// is that fsync, it runs as a normal one instead (persisting only what was written since).
    pub(crate) fn fsync_dropping_dirty(&self, fh: u64, datasync: bool) -> io::Result<SyncFate> {
        let h = self.handle(fh)?;
        let (_, _, state) = h.file_state()?;
        let dropped = {
            let mut overlay = lock(&state.overlay);
            if state.sync_failed.load(Ordering::Relaxed) {
                None
            } else {
                state.sync_failed.store(true, Ordering::Relaxed);
                Some(overlay.take().map_or(0, |o| o.dirty_bytes()))
            }
        };
        match dropped {
            Some(bytes) => Ok(SyncFate::Dropped(bytes)),
            None => self.fsync(fh, datasync).map(|()| SyncFate::Synced),
        }
    }
}
