//! Mount-level helpers for the controller: can faultfs run here, which of its mounts are left
//! over, and lazy unmounts.
//!
//! A faultfs mount shows in `/proc/self/mountinfo` with the type `fuse.raftdrill-faultfs` and
//! the source `raftdrill-faultfs:<pid of its server>`. A mount whose server died answers every
//! access with ENOTCONN until it is unmounted; that is how a stale one is told from a live one.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::FS_TYPE;

/// The prefix of a faultfs mount's source field; the server's pid follows it.
pub(crate) const SOURCE_PREFIX: &str = "raftdrill-faultfs:";

/// How long a mount may take to answer a `stat` before it counts as unresponsive.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A mount-level operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// `/proc/self/mountinfo` could not be read.
    #[error("cannot read /proc/self/mountinfo: {0}")]
    Mountinfo(io::Error),
    /// `umount2` failed.
    #[error("cannot unmount {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Which faultfs mounts [`cleanup_stale`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanupScope {
    /// Those, anywhere, whose server process is gone (they answer ENOTCONN).
    Stale,
    /// Every faultfs mount at or below this path, live or not (e.g. a run folder being removed).
    AllUnder(PathBuf),
}

/// A faultfs mount found in the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultFsMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The pid of the process that served it, from its source field.
    pub server_pid: Option<u32>,
}

/// A mount that [`cleanup_stale`] detached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanedMount {
    /// Where it was mounted.
    pub mount_point: PathBuf,
    /// The pid of the process that served it.
    pub server_pid: Option<u32>,
    /// Whether its server was gone (false: a live mount removed by [`CleanupScope::AllUnder`]).
    pub was_stale: bool,
}

/// Whether faultfs can mount here: it needs root (it mounts with mount(2), without fusermount)
/// and an openable `/dev/fuse`. The error is one line saying what is missing.
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(format!(
            "faultfs needs root to mount a FUSE filesystem (running as uid {euid})"
        ));
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("faultfs cannot open /dev/fuse: {e}")),
    }
}

/// Undoes the octal escapes (`\040` for a space) of a mountinfo field.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The faultfs mounts in a mountinfo text.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<FaultFsMount> {
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root mount-point options [optional...] - type source super
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let (fstype, source) = (r.next()?, r.next()?);
            if fstype != FS_TYPE {
                return None;
            }
            let server_pid = unescape(source)
                .strip_prefix(SOURCE_PREFIX)
                .and_then(|p| p.parse().ok());
            Some(FaultFsMount {
                mount_point: PathBuf::from(unescape(mount_point)),
                server_pid,
            })
        })
        .collect()
}

/// The faultfs mounts of this mount namespace.
pub fn faultfs_mounts() -> Result<Vec<FaultFsMount>, MountError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(MountError::Mountinfo)?;
    Ok(parse_mountinfo(&text))
}

/// Whether a faultfs mount sits at `path`.
pub fn is_mounted(path: &Path) -> Result<bool, MountError> {
    Ok(faultfs_mounts()?.iter().any(|m| m.mount_point == path))
}

/// Lazily unmounts `path` (`umount2(MNT_DETACH)`): it leaves the namespace now, and the
/// filesystem goes away when the last open file on it is closed.
pub fn unmount_detach(path: &Path) -> Result<(), MountError> {
    let err = |source| MountError::Unmount {
        path: path.to_path_buf(),
        source,
    };
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(())
}

/// Opens `/dev/fuse` and mounts it at `mount_point` with mount(2), as root, the way fuser's
/// pure-Rust path does; doing it here keeps the unmount ours (fuser would also unmount by path,
/// without `MNT_DETACH`, when its session ends). The source field names the serving pid.
pub(crate) fn mount_fuse(mount_point: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let rootmode = std::fs::metadata(mount_point)?.mode();
    let options = format!(
        "fd={},rootmode={rootmode:o},user_id=0,group_id=0,allow_other,subtype={}",
        dev.as_raw_fd(),
        FS_TYPE.trim_start_matches("fuse.")
    );
    let source = CString::new(format!("{SOURCE_PREFIX}{}", std::process::id()))?;
    let target = CString::new(mount_point.as_os_str().as_bytes())?;
    let fstype = CString::new("fuse")?;
    let data = CString::new(options)?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(dev.into())
}

/// Whether the mount at `path` has lost its server. A `stat` that does not answer within a
/// second (a hung server) is not taken for a dead one.
fn is_stale(path: &Path) -> bool {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    // A stat of a hung FUSE mount can block for good, so it runs on a thread we can leave.
    let spawned = std::thread::Builder::new()
        .name("faultfs-probe".into())
        .spawn(move || {
            let _ = tx.send(
                std::fs::metadata(&path)
                    .err()
                    .and_then(|e| e.raw_os_error()),
            );
        });
    spawned.is_ok() && rx.recv_timeout(PROBE_TIMEOUT) == Ok(Some(libc::ENOTCONN))
}

/// Lazily unmounts the faultfs mounts in `scope` and says which; deepest mounts go first.
pub fn cleanup_stale(scope: CleanupScope) -> Result<Vec<CleanedMount>, MountError> {
    let mut mounts = faultfs_mounts()?;
    mounts.sort_by_key(|m| std::cmp::Reverse(m.mount_point.as_os_str().len()));
    let mut cleaned = Vec::new();
    for m in mounts {
        let stale = is_stale(&m.mount_point);
        let wanted = match &scope {
            CleanupScope::Stale => stale,
            CleanupScope::AllUnder(root) => m.mount_point.starts_with(root),
        };
        if !wanted {
            continue;
        }
        match unmount_detach(&m.mount_point) {
            Ok(()) => cleaned.push(CleanedMount {
                mount_point: m.mount_point,
                server_pid: m.server_pid,
                was_stale: stale,
            }),
            // Already gone (another cleaner, or the server's own exit): nothing to report.
            Err(MountError::Unmount { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_of_faultfs_are_found_and_others_ignored() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
87 30 0:52 / /tmp/run\\040one/n1 rw,nosuid,nodev shared:9 - fuse.raftdrill-faultfs raftdrill-faultfs:4242 rw,user_id=0,group_id=0
88 30 0:53 / /tmp/other rw - fuse.sshfs host:/ rw
";
        let found = parse_mountinfo(text);
        assert_eq!(
            found,
            vec![FaultFsMount {
                mount_point: PathBuf::from("/tmp/run one/n1"),
                server_pid: Some(4242),
            }]
        );
    }

    #[test]
    fn unescape_handles_octal_and_plain_backslashes() {
        assert_eq!(unescape("a\\040b\\011c"), "a b\tc");
        assert_eq!(unescape("tail\\"), "tail\\");
        assert_eq!(unescape("x\\9yz"), "x\\9yz");
    }
}
