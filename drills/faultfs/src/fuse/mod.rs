//! The `fuser::Filesystem` adapter: each request is counted, handed to the fault mode as a job,
//! and answered from the [`Vfs`](crate::vfs::Vfs) when the job runs (now, after a delay, or
//! after a stall).
//!
//! Every reply carries a zero entry and attribute timeout and every open sets
//! `FOPEN_DIRECT_IO`: the kernel caches neither data nor sizes nor names, so after a power loss
//! it shows exactly what the filesystem holds. One consequence: `mmap(MAP_SHARED)` of a file
//! here fails with ENODEV (the kernel cannot keep a shared mapping coherent with direct I/O).

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};

mod convert;

use convert::{attr, attr_reply, caller, empty_reply, entry_reply, errno, kind, when};

use crate::faults::{Class, Faults, Verdict};
use crate::stats::{Counters, add, bump};
use crate::vfs::{SetAttr, SyncFate, Vfs};

/// Names and attributes are never cached by the kernel (see the module docs).
const TTL: Duration = Duration::ZERO;
const GENERATION: Generation = Generation(0);

/// The mounted filesystem.
pub(crate) struct FaultFs {
    vfs: Arc<Vfs>,
    faults: Arc<Faults>,
    counters: Arc<Counters>,
}

impl FaultFs {
    /// A filesystem serving `vfs` under `faults`.
    pub(crate) fn new(vfs: Arc<Vfs>, faults: Arc<Faults>, counters: Arc<Counters>) -> Self {
        Self {
            vfs,
            faults,
            counters,
        }
    }

    /// Counts a request, then runs `work` when the fault mode lets it and answers with
    /// `answer`.
    fn run<T: 'static>(
        &self,
        class: Class,
        req: &Request,
        work: impl FnOnce(&Vfs) -> io::Result<T> + Send + 'static,
        answer: impl FnOnce(Result<T, Errno>) + Send + 'static,
    ) {
        let c = &self.counters;
        bump(match class {
            Class::Read => &c.reads,
            Class::Write => &c.writes,
            Class::Sync => &c.syncs,
            Class::Change | Class::Meta => &c.other_ops,
        });
        self.submit(class, req, work, answer);
    }

    /// A namespace change: counted as such, stalled like data.
    fn change<T: 'static>(
        &self,
        req: &Request,
        work: impl FnOnce(&Vfs) -> io::Result<T> + Send + 'static,
        answer: impl FnOnce(Result<T, Errno>) + Send + 'static,
    ) {
        bump(&self.counters.namespace_ops);
        self.submit(Class::Change, req, work, answer);
    }

    /// Hands `work` to the fault mode as a job of `class`; its result, or the errno the mode
    /// injects, goes to `answer`.
    fn submit<T: 'static>(
        &self,
        class: Class,
        req: &Request,
        work: impl FnOnce(&Vfs) -> io::Result<T> + Send + 'static,
        answer: impl FnOnce(Result<T, Errno>) + Send + 'static,
    ) {
        let counters = self.counters.clone();
        self.decide(
            class,
            req,
            move |vfs, verdict| match verdict {
                Verdict::Run => work(vfs),
                Verdict::Fail(code) => Err(io::Error::from_raw_os_error(code)),
                // Only a file's fsync drops data; any other sync just fails.
                Verdict::FailDroppingDirty => {
                    bump(&counters.errors_injected);
                    Err(io::Error::from_raw_os_error(libc::EIO))
                }
            },
            answer,
        );
    }

    /// Hands `work` to the fault mode as a job of `class`; `work` gets the mode's verdict and
    /// its result goes to `answer`.
    fn decide<T: 'static>(
        &self,
        class: Class,
        req: &Request,
        work: impl FnOnce(&Vfs, Verdict) -> io::Result<T> + Send + 'static,
        answer: impl FnOnce(Result<T, Errno>) + Send + 'static,
    ) {
        let vfs = self.vfs.clone();
        self.faults.submit(
            class,
            req.pid(),
            Box::new(move |verdict| answer(work(&vfs, verdict).map_err(errno))),
        );
    }

    /// Closes a file or directory handle: counted, never delayed or failed.
    fn close(&self, fh: FileHandle, reply: ReplyEmpty) {
        bump(&self.counters.other_ops);
        self.vfs.release(fh.0);
        reply.ok();
    }
}

impl Filesystem for FaultFs {
    fn init(&mut self, _req: &Request, _config: &mut KernelConfig) -> io::Result<()> {
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_owned();
        self.run(
            Class::Meta,
            req,
            move |v| v.lookup(parent.0, &name),
            entry_reply(reply),
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.vfs.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.run(
            Class::Meta,
            req,
            move |v| v.getattr(ino.0, fh.map(|f| f.0)),
            attr_reply(reply),
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: when(atime),
            mtime: when(mtime),
        };
        self.run(
            Class::Change,
            req,
            move |v| v.setattr(ino.0, fh.map(|f| f.0), set),
            attr_reply(reply),
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.run(
            Class::Meta,
            req,
            move |v| v.readlink(ino.0),
            move |r| match r {
                Ok(target) => {
                    use std::os::unix::ffi::OsStrExt;
                    reply.data(target.as_os_str().as_bytes())
                }
                Err(e) => reply.error(e),
            },
        );
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (name, who) = (name.to_owned(), caller(req));
        self.change(
            req,
            move |v| v.mknod(parent.0, &name, mode, rdev, who),
            entry_reply(reply),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let (name, who) = (name.to_owned(), caller(req));
        self.change(
            req,
            move |v| v.mkdir(parent.0, &name, mode, who),
            entry_reply(reply),
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.change(req, move |v| v.unlink(parent.0, &name), empty_reply(reply));
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.change(req, move |v| v.rmdir(parent.0, &name), empty_reply(reply));
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let supported = RenameFlags::RENAME_NOREPLACE;
        if !supported.contains(flags) {
            return reply.error(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let (name, newname) = (name.to_owned(), newname.to_owned());
        self.change(
            req,
            move |v| v.rename(parent.0, &name, newparent.0, &newname, noreplace),
            empty_reply(reply),
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.run(
            Class::Change,
            req,
            move |v| v.open(ino.0),
            move |r| match r {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
                Err(e) => reply.error(e),
            },
        );
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let counters = self.counters.clone();
        self.run(
            Class::Read,
            req,
            move |v| v.read(fh.0, offset, size),
            move |r| match r {
                Ok(data) => {
                    add(&counters.bytes_read, data.len() as u64);
                    reply.data(&data)
                }
                Err(e) => reply.error(e),
            },
        );
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        let (faults, counters) = (self.faults.clone(), self.counters.clone());
        self.run(
            Class::Write,
            req,
            move |v| v.write(fh.0, offset, &data, faults.disk_full()),
            move |r| match r {
                Ok(n) => {
                    add(&counters.bytes_written, n as u64);
                    reply.written(n as u32)
                }
                Err(e) => {
                    if e == Errno::ENOSPC {
                        bump(&counters.enospc_injected);
                    }
                    reply.error(e)
                }
            },
        );
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) persists nothing: unsynced data stays unsynced.
        bump(&self.counters.other_ops);
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.close(fh, reply);
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        bump(&self.counters.syncs);
        let counters = self.counters.clone();
        self.decide(
            Class::Sync,
            req,
            move |v, verdict| match verdict {
                Verdict::Run => v.fsync(fh.0, datasync),
                Verdict::Fail(code) => Err(io::Error::from_raw_os_error(code)),
                Verdict::FailDroppingDirty => match v.fsync_dropping_dirty(fh.0, datasync)? {
                    SyncFate::Dropped(bytes) => {
                        bump(&counters.errors_injected);
                        bump(&counters.dirty_drops);
                        add(&counters.dirty_bytes_dropped, bytes);
                        Err(io::Error::from_raw_os_error(libc::EIO))
                    }
                    SyncFate::Synced => Ok(()),
                },
            },
            empty_reply(reply),
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.run(
            Class::Meta,
            req,
            move |v| v.opendir(ino.0),
            move |r| match r {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(e),
            },
        );
    }

    fn readdir(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.run(
            Class::Meta,
            req,
            move |v| v.readdir(fh.0, offset),
            move |r| match r {
                Ok(items) => {
                    for (next, item) in items {
                        if reply.add(INodeNo(item.ino), next, kind(item.kind), &item.name) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(e),
            },
        );
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.close(fh, reply);
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.run(
            Class::Sync,
            req,
            move |v| v.fsyncdir(ino.0, Some(fh.0)),
            empty_reply(reply),
        );
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.run(
            Class::Meta,
            req,
            |v| v.statfs(),
            move |r| match r {
                Ok(s) => reply.statfs(
                    s.f_blocks,
                    s.f_bfree,
                    s.f_bavail,
                    s.f_files,
                    s.f_ffree,
                    s.f_bsize as u32,
                    s.f_namemax as u32,
                    s.f_frsize as u32,
                ),
                Err(e) => reply.error(e),
            },
        );
    }

    // Extended attributes are not passed through. ENOSYS (rather than ENOTSUP) makes the kernel
    // stop asking for the life of the mount.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.run(
            Class::Meta,
            req,
            move |v| v.access(ino.0, mask.bits()),
            empty_reply(reply),
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (name, who) = (name.to_owned(), caller(req));
        self.change(
            req,
            move |v| v.create(parent.0, &name, mode, flags, who),
            move |r| match r {
                Ok((e, fh)) => reply.created(
                    &TTL,
                    &attr(&e),
                    GENERATION,
                    FileHandle(fh),
                    FopenFlags::FOPEN_DIRECT_IO,
                ),
                Err(e) => reply.error(e),
            },
        );
    }

    fn fallocate(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let faults = self.faults.clone();
        self.run(
            Class::Change,
            req,
            move |v| v.fallocate(fh.0, offset, length, mode, faults.disk_full()),
            empty_reply(reply),
        );
    }
}
