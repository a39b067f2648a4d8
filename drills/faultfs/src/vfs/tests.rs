//! The power-loss model on a plain temporary directory, without FUSE.

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use super::nodes::ROOT;
use super::{Caller, SetAttr, TRASH, Vfs};
use crate::journal::Ino;
use crate::loss::PowerLoss;
use crate::stats::PowerLossReport;

pub(super) const ME: Caller = Caller { uid: 0, gid: 0 };

pub(super) fn fs() -> (tempfile::TempDir, Vfs) {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Vfs::new(dir.path()).unwrap();
    (dir, vfs)
}

/// The node at a slash-separated path, as the kernel would walk to it.
pub(super) fn walk(v: &Vfs, path: &str) -> io::Result<Ino> {
    let mut ino = ROOT;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = v.lookup(ino, OsStr::new(part))?.ino;
    }
    Ok(ino)
}

/// Splits `a/b/c` into the node of `a/b` and `c`.
fn parent_of<'a>(v: &Vfs, path: &'a str) -> (Ino, &'a OsStr) {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    (walk(v, dir).unwrap(), OsStr::new(name))
}

pub(super) fn create(v: &Vfs, path: &str) -> u64 {
    let (parent, name) = parent_of(v, path);
    v.create(parent, name, 0o644, libc::O_EXCL, ME).unwrap().1
}

pub(super) fn open(v: &Vfs, path: &str) -> u64 {
    v.open(walk(v, path).unwrap()).unwrap()
}

pub(super) fn contents(v: &Vfs, path: &str) -> io::Result<Vec<u8>> {
    let fh = v.open(walk(v, path)?)?;
    let data = v.read(fh, 0, 1 << 20);
    v.release(fh);
    data
}

pub(super) fn fsync_dir(v: &Vfs, path: &str) {
    v.fsyncdir(walk(v, path).unwrap(), None).unwrap();
}

fn names(v: &Vfs, path: &str) -> Vec<String> {
    let fh = v.opendir(walk(v, path).unwrap()).unwrap();
    let mut out: Vec<String> = v
        .readdir(fh, 0)
        .unwrap()
        .into_iter()
        .map(|(_, i)| i.name.to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    v.release(fh);
    out.sort();
    out
}

pub(super) fn on_disk(root: &Path, path: &str) -> Option<Vec<u8>> {
    std::fs::read(root.join(path)).ok()
}

/// A file `name` in the root that is durable, entry and bytes.
pub(super) fn durable_file(v: &Vfs, name: &str, bytes: &[u8]) {
    let fh = create(v, name);
    v.write(fh, 0, bytes, false).unwrap();
    v.fsync(fh, false).unwrap();
    v.release(fh);
    fsync_dir(v, "/");
}

#[test]
fn unsynced_writes_are_read_back_and_lost_at_power_loss() {
    let (dir, v) = fs();
    durable_file(&v, "f", b"durable");
    let fh = open(&v, "f");
    v.write(fh, 0, b"DUR", false).unwrap();
    v.write(fh, 7, b"+more", false).unwrap();
    assert_eq!(contents(&v, "f").unwrap(), b"DURable+more");
    assert_eq!(v.getattr(walk(&v, "f").unwrap(), None).unwrap().size, 12);
    assert_eq!(
        on_disk(dir.path(), "f").unwrap(),
        b"durable",
        "backing holds only what is durable"
    );
    v.release(fh);
    assert_eq!(v.unsynced(), (1, 8, 0), "closing does not persist");
    let report = v.power_loss(PowerLoss::default());
    assert_eq!(
        report,
        PowerLossReport {
            files_reverted: 1,
            writes_dropped: 2,
            bytes_dropped: 8,
            ..Default::default()
        }
    );
    assert_eq!(contents(&v, "f").unwrap(), b"durable");
    assert_eq!(v.getattr(walk(&v, "f").unwrap(), None).unwrap().size, 7);
}

#[test]
fn fsync_and_fdatasync_both_make_data_and_size_durable() {
    for datasync in [false, true] {
        let (dir, v) = fs();
        durable_file(&v, "f", b"");
        let fh = open(&v, "f");
        v.write(fh, 0, b"kept", false).unwrap();
        v.fsync(fh, datasync).unwrap();
        v.write(fh, 4, b"-lost", false).unwrap();
        v.release(fh);
        v.power_loss(PowerLoss::default());
        assert_eq!(contents(&v, "f").unwrap(), b"kept", "datasync={datasync}");
        assert_eq!(on_disk(dir.path(), "f").unwrap(), b"kept");
    }
}

#[test]
fn a_new_file_needs_an_fsync_of_its_directory() {
    let (dir, v) = fs();
    let fh = create(&v, "new");
    v.write(fh, 0, b"data", false).unwrap();
    v.fsync(fh, false).unwrap();
    v.release(fh);
    let report = v.power_loss(PowerLoss::default());
    assert_eq!(report.changes_undone, 1);
    assert!(
        walk(&v, "new").is_err(),
        "fsync of the file alone keeps no entry"
    );
    assert!(on_disk(dir.path(), "new").is_none());

    let fh = create(&v, "new");
    v.write(fh, 0, b"data", false).unwrap();
    v.fsync(fh, false).unwrap();
    v.release(fh);
    fsync_dir(&v, "/");
    v.power_loss(PowerLoss::default());
    assert_eq!(contents(&v, "new").unwrap(), b"data");
}

#[test]
fn a_durable_entry_without_synced_data_comes_back_empty() {
    let (_dir, v) = fs();
    let fh = create(&v, "f");
    v.write(fh, 0, b"never synced", false).unwrap();
    v.release(fh);
    fsync_dir(&v, "/");
    v.power_loss(PowerLoss::default());
    assert_eq!(contents(&v, "f").unwrap(), b"");
}

#[test]
fn renames_are_undone_unless_a_parent_was_fsynced() {
    let (_dir, v) = fs();
    durable_file(&v, "a", b"A");
    durable_file(&v, "b", b"B");
    // Rename over an existing file, not durable: both names come back as they were.
    v.rename(ROOT, OsStr::new("a"), ROOT, OsStr::new("b"), false)
        .unwrap();
    assert!(walk(&v, "a").is_err());
    assert_eq!(contents(&v, "b").unwrap(), b"A");
    assert_eq!(v.power_loss(PowerLoss::default()).changes_undone, 1);
    assert_eq!(contents(&v, "a").unwrap(), b"A");
    assert_eq!(contents(&v, "b").unwrap(), b"B");

    // The same rename made durable by an fsync of the directory.
    v.rename(ROOT, OsStr::new("a"), ROOT, OsStr::new("b"), false)
        .unwrap();
    fsync_dir(&v, "/");
    v.power_loss(PowerLoss::default());
    assert!(walk(&v, "a").is_err());
    assert_eq!(contents(&v, "b").unwrap(), b"A");
    assert_eq!(names(&v, "/"), vec!["b"]);
}

#[test]
fn a_rename_between_directories_is_durable_through_either_one() {
    let (_dir, v) = fs();
    for d in ["d1", "d2"] {
        v.mkdir(ROOT, OsStr::new(d), 0o755, ME).unwrap();
    }
    fsync_dir(&v, "/");
    let fh = create(&v, "d1/x");
    v.release(fh);
    fsync_dir(&v, "d1");
    let (d1, d2) = (walk(&v, "d1").unwrap(), walk(&v, "d2").unwrap());
    v.rename(d1, OsStr::new("x"), d2, OsStr::new("y"), false)
        .unwrap();
    fsync_dir(&v, "d2");
    v.power_loss(PowerLoss::default());
    assert_eq!(names(&v, "d1"), Vec::<String>::new());
    assert_eq!(names(&v, "d2"), vec!["y"]);
}

#[test]
fn unlinks_are_undone_unless_the_directory_was_fsynced() {
    let (dir, v) = fs();
    durable_file(&v, "f", b"bytes");
    v.unlink(ROOT, OsStr::new("f")).unwrap();
    assert!(walk(&v, "f").is_err());
    assert_eq!(
        names(&v, "/"),
        Vec::<String>::new(),
        "the trash stays hidden"
    );
    v.power_loss(PowerLoss::default());
    assert_eq!(contents(&v, "f").unwrap(), b"bytes");

    v.unlink(ROOT, OsStr::new("f")).unwrap();
    fsync_dir(&v, "/");
    assert_eq!(
        std::fs::read_dir(dir.path().join(TRASH)).unwrap().count(),
        0
    );
    v.power_loss(PowerLoss::default());
    assert!(walk(&v, "f").is_err());
}

#[test]
fn an_open_unlinked_file_still_reads_and_writes() {
    let (_dir, v) = fs();
    durable_file(&v, "f", b"abc");
    let fh = open(&v, "f");
    v.unlink(ROOT, OsStr::new("f")).unwrap();
    v.write(fh, 3, b"def", false).unwrap();
    assert_eq!(v.read(fh, 0, 100).unwrap(), b"abcdef");
    v.fsync(fh, false).unwrap();
    v.release(fh);
    // The unlink was not durable: the file is back, with what its fsync made durable.
    v.power_loss(PowerLoss::default());
    assert_eq!(contents(&v, "f").unwrap(), b"abcdef");
}

#[test]
fn unsynced_truncates_and_extensions_are_undone() {
    let (_dir, v) = fs();
    durable_file(&v, "f", b"0123456789");
    let ino = walk(&v, "f").unwrap();
    let shrink = SetAttr {
        size: Some(3),
        ..Default::default()
    };
    assert_eq!(v.setattr(ino, None, shrink).unwrap().size, 3);
    let grow = SetAttr {
        size: Some(6),
        ..Default::default()
    };
    v.setattr(ino, None, grow).unwrap();
    assert_eq!(contents(&v, "f").unwrap(), b"012\0\0\0");
    v.power_loss(PowerLoss::default());
    assert_eq!(contents(&v, "f").unwrap(), b"0123456789");

    let fh = open(&v, "f");
    v.setattr(ino, Some(fh), shrink).unwrap();
    v.fsync(fh, true).unwrap();
    v.release(fh);
    v.power_loss(PowerLoss::default());
    assert_eq!(contents(&v, "f").unwrap(), b"012");
}

#[test]
fn a_new_directory_needs_its_parent_fsynced_or_it_is_lost_with_its_contents() {
    let (dir, v) = fs();
    v.mkdir(ROOT, OsStr::new("d"), 0o755, ME).unwrap();
    let fh = create(&v, "d/f");
    v.write(fh, 0, b"x", false).unwrap();
    v.fsync(fh, false).unwrap();
    v.release(fh);
    fsync_dir(&v, "d");
    v.power_loss(PowerLoss::default());
    assert!(walk(&v, "d").is_err());
    assert!(!dir.path().join("d").exists());

    v.mkdir(ROOT, OsStr::new("d"), 0o755, ME).unwrap();
    fsync_dir(&v, "/");
    let fh = create(&v, "d/f");
    v.release(fh);
    fsync_dir(&v, "d");
    v.power_loss(PowerLoss::default());
    assert_eq!(names(&v, "d"), vec!["f"]);
}

#[test]
fn rmdir_is_undone_unless_the_parent_was_fsynced() {
    let (_dir, v) = fs();
    v.mkdir(ROOT, OsStr::new("d"), 0o755, ME).unwrap();
    fsync_dir(&v, "/");
    let err = v.unlink(ROOT, OsStr::new("d")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
    v.rmdir(ROOT, OsStr::new("d")).unwrap();
    v.power_loss(PowerLoss::default());
    assert_eq!(names(&v, "/"), vec!["d"]);
    v.rmdir(ROOT, OsStr::new("d")).unwrap();
    fsync_dir(&v, "/");
    v.power_loss(PowerLoss::default());
    assert!(names(&v, "/").is_empty());
}

#[test]
fn a_create_overtaken_by_a_durable_rename_stays() {
    let (_dir, v) = fs();
    v.mkdir(ROOT, OsStr::new("d"), 0o755, ME).unwrap();
    fsync_dir(&v, "/");
    let fh = create(&v, "tmp");
    v.release(fh);
    let d = walk(&v, "d").unwrap();
    v.rename(ROOT, OsStr::new("tmp"), d, OsStr::new("final"), false)
        .unwrap();
    fsync_dir(&v, "d");
    let report = v.power_loss(PowerLoss::default());
    assert_eq!(report.changes_kept, 1, "{report:?}");
    assert_eq!(names(&v, "d"), vec!["final"]);
    assert!(walk(&v, "tmp").is_err());
}

#[test]
fn the_trash_cannot_be_reached_or_taken() {
    let (_dir, v) = fs();
    let trash = OsStr::new(TRASH);
    assert_eq!(
        v.lookup(ROOT, trash).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_eq!(
        v.mkdir(ROOT, trash, 0o755, ME).unwrap_err().raw_os_error(),
        Some(libc::EPERM)
    );
    durable_file(&v, "f", b"");
    assert_eq!(
        v.rename(ROOT, OsStr::new("f"), ROOT, trash, false)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EPERM)
    );
}

#[test]
fn refusing_growth_allows_overwrites_in_place() {
    let (_dir, v) = fs();
    durable_file(&v, "f", b"0123456789");
    let fh = open(&v, "f");
    v.write(fh, 2, b"ab", true).unwrap();
    let err = v.write(fh, 8, b"xyz", true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(v.read(fh, 0, 100).unwrap(), b"01ab456789");
    let err = v.fallocate(fh, 0, 20, 0, true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    v.release(fh);
}

#[test]
fn a_full_disk_refuses_writes_into_holes() {
    let (_dir, v) = fs();
    durable_file(&v, "f", &[7u8; 8192]);
    let ino = walk(&v, "f").unwrap();
    let fh = open(&v, "f");
    // Grown by a truncate, as a database grows its file: the new range holds no data.
    let grow = SetAttr {
        size: Some(1 << 20),
        ..SetAttr::default()
    };
    v.setattr(ino, Some(fh), grow).unwrap();
    v.write(fh, 100, b"in place", true).unwrap();
    let err = v.write(fh, 65536, b"into the hole", true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "unsynced extension");
    v.fsync(fh, false).unwrap();
    let err = v.write(fh, 65536, b"into the hole", true).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOSPC),
        "synced, still a hole"
    );
    // Written while there was space, then overwritten when full: it holds data.
    v.write(fh, 65536, b"into the hole", false).unwrap();
    v.write(fh, 65536, b"over the data", true).unwrap();
    v.fsync(fh, false).unwrap();
    v.write(fh, 65536, b"once more....", true).unwrap();
    assert_eq!(v.read(fh, 65536, 13).unwrap(), b"once more....");
    v.release(fh);
}

#[test]
fn a_failed_rename_leaves_the_target_in_place() {
    let (_dir, v) = fs();
    v.mkdir(ROOT, OsStr::new("d"), 0o755, ME).unwrap();
    let d = walk(&v, "d").unwrap();
    v.mkdir(d, OsStr::new("sub"), 0o755, ME).unwrap();
    // A directory cannot move into itself; the empty target "sub" must survive the attempt.
    let err = v
        .rename(ROOT, OsStr::new("d"), d, OsStr::new("sub"), false)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(names(&v, "d"), vec!["sub"]);
}
