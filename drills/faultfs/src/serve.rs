//! One filesystem process: mount, answer the control socket, announce readiness, and unmount
//! on every way out (stop request, SIGTERM/SIGINT, death of the parent, panic).
//!
//! Mounting needs no libfuse and no fusermount: as root, this process opens `/dev/fuse` and
//! calls mount(2) itself (type `fuse.raftdrill-faultfs`, source `raftdrill-faultfs:<pid>`,
//! options `fd=N,rootmode=...,user_id=0,group_id=0,allow_other`), then hands the fd to
//! `fuser::Session::from_fd`. Unmounting is umount2 with `MNT_DETACH`, which succeeds even while
//! a killed node's files are still being closed.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::Notify;

use crate::control::{self, Target};
use crate::faults::Faults;
use crate::fuse::FaultFs;
use crate::mode::Mode;
use crate::mounts::{mount_fuse, unmount_detach};
use crate::stats::Counters;
use crate::vfs::Vfs;

/// Environment variable a spawner sets to its pid, so that a child whose parent died before it
/// could ask for a parent-death signal notices and exits.
pub const PARENT_ENV: &str = "RAFTDRILL_FAULTFS_PARENT";

/// How long the FUSE session may take to end after the lazy unmount.
const SESSION_END_WAIT: Duration = Duration::from_secs(2);

/// What to serve, where.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The real directory underneath; it holds exactly what is durable. Made if missing.
    pub backing: PathBuf,
    /// Where to mount. Made if missing.
    pub mount: PathBuf,
    /// The control socket to create (a stale socket file there is replaced).
    pub control: PathBuf,
    /// Written with the control socket's path (and a newline) once the mount is live.
    pub ready: Option<PathBuf>,
    /// FUSE worker threads; each reads requests from its own clone of the `/dev/fuse` fd.
    pub threads: usize,
}

impl ServeOptions {
    /// Options with the default of 4 worker threads and no ready file.
    pub fn new(backing: PathBuf, mount: PathBuf, control: PathBuf) -> Self {
        Self {
            backing,
            mount,
            control,
            ready: None,
            threads: 4,
        }
    }
}

/// The filesystem process could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The process's parent was already gone when it started.
    #[error("the parent process (pid {0}) is gone")]
    Orphaned(u32),
    /// A directory could not be made or used.
    #[error("cannot use {what} {path}: {source}")]
    Dir {
        /// `backing directory` or `mount point`.
        what: &'static str,
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The control socket could not be created.
    #[error("cannot listen on control socket {path}: {source}")]
    Control {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// mount(2) or the FUSE handshake failed.
    #[error("cannot mount faultfs at {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The ready file could not be written.
    #[error("cannot write ready file {path}: {source}")]
    Ready {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Resolves with the FUSE session's result once it has ended.
type SessionEnd = tokio::sync::oneshot::Receiver<std::io::Result<()>>;

/// Mount points that the panic hook detaches.
static MOUNTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// On a panic anywhere in the process: detach every mount of ours and exit. A FUSE worker that
/// panicked would otherwise leave its callers waiting for an answer that never comes.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let mounts = MOUNTED.lock().map(|m| m.clone()).unwrap_or_default();
            for m in mounts {
                let _ = unmount_detach(&m);
            }
            std::process::exit(101);
        }));
    });
}

/// Detaches the mount when dropped, unless already done.
struct MountGuard {
    path: PathBuf,
}

impl MountGuard {
    fn new(path: PathBuf) -> Self {
        MOUNTED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.clone());
        Self { path }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        MOUNTED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p != &self.path);
        match unmount_detach(&self.path) {
            Ok(()) => tracing::info!(mount = %self.path.display(), "unmounted"),
            Err(e) => tracing::debug!(error = %e, "unmount (already gone?)"),
        }
    }
}

/// Asks for SIGTERM when the parent dies (so the mount is released cleanly), and exits at once
/// if the spawner said who the parent is and it is already gone.
fn die_with_parent() -> Result<(), ServeError> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    if let Some(expected) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        // SAFETY: as above.
        if unsafe { libc::getppid() } as u32 != expected {
            return Err(ServeError::Orphaned(expected));
        }
    }
    Ok(())
}

fn make_dir(what: &'static str, path: &Path) -> Result<PathBuf, ServeError> {
    let err = |source| ServeError::Dir {
        what,
        path: path.to_path_buf(),
        source,
    };
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755)
        .create(path)
        .map_err(err)?;
    path.canonicalize().map_err(err)
}

fn write_ready(path: &Path, control: &Path) -> Result<(), ServeError> {
    let err = |source| ServeError::Ready {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut text = control.as_os_str().to_string_lossy().into_owned();
    text.push('\n');
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Mounts `fs` at `mount` and runs its FUSE session on a thread of its own with `threads`
/// workers. Returns the guard that detaches the mount, and the channel on which the session
/// says it ended.
async fn mount_session(
    fs: FaultFs,
    mount: &Path,
    threads: usize,
) -> Result<(MountGuard, SessionEnd), ServeError> {
    let mount_err = |source| ServeError::Mount {
        path: mount.to_path_buf(),
        source,
    };
    let dev = mount_fuse(mount).map_err(mount_err)?;
    // From here on the mount exists: the guard detaches it on every way out.
    let guard = MountGuard::new(mount.to_path_buf());
    let mut config = fuser::Config::default();
    config.n_threads = Some(threads.max(1));
    config.clone_fd = true;
    // The INIT handshake reads /dev/fuse; the kernel sent INIT at mount time.
    let session = tokio::task::spawn_blocking(move || {
        fuser::Session::from_fd(fs, dev, fuser::SessionACL::All, config)
    })
    .await
    .map_err(|e| mount_err(std::io::Error::other(e)))?
    .map_err(mount_err)?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("faultfs-fuse".into())
        .spawn(move || {
            let _ = done_tx.send(session.run());
        })
        .map_err(mount_err)?;
    Ok((guard, done_rx))
}

/// Serves one filesystem until `shutdown` resolves, a `stop` request arrives, or the mount is
/// taken away; then unmounts. Installs a process-wide panic hook that unmounts and exits.
pub async fn run(opts: ServeOptions, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    die_with_parent()?;
    install_panic_hook();
    // New nodes get exactly the mode the caller asked for (the kernel applied its umask).
    // SAFETY: umask has no preconditions.
    unsafe {
        libc::umask(0);
    }
    let backing = make_dir("backing directory", &opts.backing)?;
    let mount = make_dir("mount point", &opts.mount)?;
    let vfs = Arc::new(Vfs::new(&backing).map_err(|source| ServeError::Dir {
        what: "backing directory",
        path: backing.clone(),
        source,
    })?);
    let counters = Arc::new(Counters::default());
    let faults = Faults::new(tokio::runtime::Handle::current(), counters.clone());

    let _ = std::fs::remove_file(&opts.control);
    let listener = UnixListener::bind(&opts.control).map_err(|source| ServeError::Control {
        path: opts.control.clone(),
        source,
    })?;

    let fs = FaultFs::new(vfs.clone(), faults.clone(), counters.clone());
    let (guard, mut done_rx) = mount_session(fs, &mount, opts.threads).await?;
    tracing::info!(
        backing = %backing.display(),
        mount = %mount.display(),
        control = %opts.control.display(),
        "faultfs mounted"
    );

    let stop = Arc::new(Notify::new());
    let target = Arc::new(Target {
        vfs,
        faults: faults.clone(),
        counters,
        stop: stop.clone(),
    });
    let control_task = tokio::spawn(control::serve(listener, target));
    if let Some(ready) = &opts.ready {
        write_ready(ready, &opts.control)?;
    }

    let mut session_ended = false;
    tokio::select! {
        _ = shutdown => tracing::info!("stop signal"),
        _ = stop.notified() => tracing::info!("stop requested"),
        r = &mut done_rx => {
            session_ended = true;
            tracing::warn!(result = ?r, "the mount went away");
        }
    }
    // Parked requests must not outlive the mount: let them run before it goes.
    faults.set_mode(Mode::Pass);
    control_task.abort();
    drop(guard);
    if !session_ended {
        let _ = tokio::time::timeout(SESSION_END_WAIT, done_rx).await;
    }
    let _ = std::fs::remove_file(&opts.control);
    if let Some(ready) = &opts.ready {
        let _ = std::fs::remove_file(ready);
    }
    Ok(())
}
