//! A mounted faultfs per test, and small file helpers.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use raftdrill_faultfs::{FaultFsClient, FaultFsLaunch, FaultFsProcess, Stats, available};
use tempfile::TempDir;

/// The server binary of this crate.
pub const BIN: &str = env!("CARGO_BIN_EXE_raftdrill-faultfs");

/// Fails the test with the reason when FUSE cannot be mounted here.
pub fn require_fuse() {
    if let Err(reason) = available() {
        panic!("this test mounts a FUSE filesystem: {reason}");
    }
}

/// A launch of this crate's server under `dir` (`dir/backing` mounted at `dir/mnt`).
pub fn launch(dir: &Path) -> FaultFsLaunch {
    FaultFsLaunch {
        program: BIN.into(),
        args: Vec::new(),
        backing: dir.join("backing"),
        mount: dir.join("mnt"),
        control: dir.join("ctl.sock"),
        log: Some(dir.join("faultfs.log")),
        ready_timeout: Duration::from_secs(20),
    }
}

/// One mounted filesystem. Fields drop in order: the process (and its mount) before the
/// temporary directory, so removing the directory never walks into a live mount.
pub struct Mounted {
    pub fs: FaultFsProcess,
    pub client: FaultFsClient,
    pub dir: TempDir,
}

impl Mounted {
    /// Mounts a fresh, empty filesystem.
    pub async fn new() -> Self {
        require_fuse();
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFsProcess::spawn(&launch(dir.path()))
            .await
            .unwrap_or_else(|e| panic!("{e}; log:\n{}", log(dir.path())));
        let client = fs.client().await.unwrap();
        Self { fs, client, dir }
    }

    /// A path inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.fs.mount().join(rel)
    }

    /// A path inside the backing directory.
    pub fn backing(&self, rel: &str) -> PathBuf {
        self.dir.path().join("backing").join(rel)
    }

    /// The stats, now.
    pub async fn stats(&mut self) -> Stats {
        self.client.stats().await.unwrap()
    }

    /// Waits (up to 20 s) until the stats satisfy `cond`.
    pub async fn wait_stats(&mut self, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.stats().await;
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The server's log under `dir`, for failure messages.
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("faultfs.log")).unwrap_or_default()
}

/// fsync of a directory.
pub fn fsync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

/// Creates (or truncates) a file with `bytes`, fsyncs it, and fsyncs its directory.
pub fn durable(path: &Path, bytes: &[u8]) {
    let mut f = File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    fsync_dir(path.parent().unwrap());
}

/// Opens an existing file for writing.
pub fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; says whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// A child process that is killed and reaped when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The errno of an I/O result that must have failed.
pub fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("the call must fail")
        .raw_os_error()
        .unwrap_or(0)
}
