//! Conversions between the filesystem's types and fuser's: attributes, file types, errors,
//! times, and the replies shared by several operations.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileType, INodeNo, ReplyAttr, ReplyEmpty, ReplyEntry, Request, TimeOrNow,
};

use super::{GENERATION, TTL};
use crate::vfs::{Caller, Entry};

pub(super) fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64)
    }
}

pub(super) fn kind(t: std::fs::FileType) -> FileType {
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_fifo() {
        FileType::NamedPipe
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::RegularFile
    }
}

pub(super) fn attr(e: &Entry) -> FileAttr {
    let m = &e.meta;
    let blocks = if e.size == m.len() {
        m.blocks()
    } else {
        e.size.div_ceil(512)
    };
    FileAttr {
        ino: INodeNo(e.ino),
        size: e.size,
        blocks,
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.ctime(), m.ctime_nsec()),
        kind: kind(m.file_type()),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

pub(super) fn errno(e: io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

pub(super) fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
    }
}

pub(super) fn when(t: Option<TimeOrNow>) -> Option<Option<SystemTime>> {
    t.map(|t| match t {
        TimeOrNow::SpecificTime(t) => Some(t),
        TimeOrNow::Now => None,
    })
}

pub(super) fn entry_reply(reply: ReplyEntry) -> impl FnOnce(Result<Entry, Errno>) + Send + 'static {
    move |r| match r {
        Ok(e) => reply.entry(&TTL, &attr(&e), GENERATION),
        Err(e) => reply.error(e),
    }
}

pub(super) fn empty_reply(reply: ReplyEmpty) -> impl FnOnce(Result<(), Errno>) + Send + 'static {
    move |r| match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

pub(super) fn attr_reply(reply: ReplyAttr) -> impl FnOnce(Result<Entry, Errno>) + Send + 'static {
    move |r| match r {
        Ok(e) => reply.attr(&TTL, &attr(&e)),
        Err(e) => reply.error(e),
    }
}
