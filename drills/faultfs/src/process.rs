//! [`FaultFsProcess`]: a spawned filesystem process owned by a guard, so that no mount outlives
//! the controller.
//!
//! The process runs in its own process group (a Ctrl-C on the terminal reaches the controller,
//! which stops the nodes before their filesystems) and gets SIGTERM when its parent dies
//! (`PR_SET_PDEATHSIG`), which it answers by unmounting. As with nodes, the parent-death signal
//! fires when the *thread* that spawned the process exits: spawn from a thread that lives as
//! long as the controller (the main thread or a runtime worker, not `spawn_blocking`).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::client::{ClientError, FaultFsClient};
use crate::control::stop_blocking;
use crate::mounts::{is_mounted, unmount_detach};
use crate::serve::PARENT_ENV;

/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(20);
/// How long `Drop` waits for a clean exit before it kills.
const DROP_GRACE: Duration = Duration::from_secs(3);

/// How to start one filesystem process.
#[derive(Debug, Clone)]
pub struct FaultFsLaunch {
    /// The binary: `raftdrill` (with `args = ["faultfs"]`) or this crate's `raftdrill-faultfs`.
    pub program: PathBuf,
    /// Arguments before the flags.
    pub args: Vec<OsString>,
    /// The real directory underneath.
    pub backing: PathBuf,
    /// The mount point (the node's data directory).
    pub mount: PathBuf,
    /// The control socket (a path in the run folder; at most ~100 bytes, a Unix socket limit).
    pub control: PathBuf,
    /// File that receives the process's stdout and stderr (appended); `None` inherits them.
    pub log: Option<PathBuf>,
    /// How long to wait for the mount to be live.
    pub ready_timeout: Duration,
}

impl FaultFsLaunch {
    /// `exe faultfs --backing ... --mount ... --control ...`, as raftdrill spawns it.
    pub fn raftdrill(exe: PathBuf, backing: PathBuf, mount: PathBuf, control: PathBuf) -> Self {
        Self {
            program: exe,
            args: vec!["faultfs".into()],
            backing,
            mount,
            control,
            log: None,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// The filesystem process could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log file could not be opened.
    #[error("cannot open faultfs log {path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("cannot start faultfs ({program}): {source}")]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It exited before its mount was live.
    #[error("faultfs exited before mounting {mount} ({status}); see its log")]
    Exited {
        /// The mount point.
        mount: PathBuf,
        /// How it ended.
        status: ExitStatus,
    },
    /// The mount was not live in time.
    #[error("faultfs did not mount {mount} within {timeout:?}")]
    NotReady {
        /// The mount point.
        mount: PathBuf,
        /// The deadline.
        timeout: Duration,
    },
}

/// A running filesystem process. Dropping it asks the process to stop, waits briefly, kills it
/// if it must, and detaches the mount if it is still there.
#[derive(Debug)]
pub struct FaultFsProcess {
    child: Option<Child>,
    mount: PathBuf,
    control: PathBuf,
}

impl FaultFsProcess {
    /// Starts the process and waits until its mount is live (its ready file appears).
    pub async fn spawn(launch: &FaultFsLaunch) -> Result<Self, ProcessError> {
        let ready = ready_path(&launch.control);
        let _ = std::fs::remove_file(&ready);
        let mut cmd = Command::new(&launch.program);
        cmd.args(&launch.args)
            .arg("--backing")
            .arg(&launch.backing)
            .arg("--mount")
            .arg(&launch.mount)
            .arg("--control")
            .arg(&launch.control)
            .arg("--ready")
            .arg(&ready)
            .stdin(Stdio::null())
            .env(PARENT_ENV, std::process::id().to_string())
            .process_group(0);
        if let Some(log) = &launch.log {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .map_err(|source| ProcessError::Log {
                        path: log.clone(),
                        source,
                    })
            };
            cmd.stdout(open()?).stderr(open()?);
        }
        // SAFETY: the closure runs in the forked child before exec and only calls prctl, which
        // is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            program: launch.program.clone(),
            source,
        })?;
        let mut me = Self {
            child: Some(child),
            mount: launch.mount.clone(),
            control: launch.control.clone(),
        };
        let deadline = Instant::now() + launch.ready_timeout;
        loop {
            if std::fs::read_to_string(&ready).is_ok_and(|t| t.ends_with('\n')) {
                // The mount table shows canonical paths; compare against those later.
                if let Ok(m) = me.mount.canonicalize() {
                    me.mount = m;
                }
                return Ok(me);
            }
            if let Some(status) = me.try_wait() {
                return Err(ProcessError::Exited {
                    mount: me.mount.clone(),
                    status,
                });
            }
            if Instant::now() >= deadline {
                // `me` drops here: the process is stopped and any mount detached.
                return Err(ProcessError::NotReady {
                    mount: me.mount.clone(),
                    timeout: launch.ready_timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The mount point.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The control socket.
    pub fn control(&self) -> &Path {
        &self.control
    }

    /// A new control connection.
    pub async fn client(&self) -> Result<FaultFsClient, ClientError> {
        FaultFsClient::connect(&self.control).await
    }

    /// The exit status, if the process has exited (it is reaped then).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// SIGKILL and reap, without unmounting: the mount stays behind, stale (for tests of
    /// [`cleanup_stale`](crate::cleanup_stale); `Drop` still detaches it).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Asks the process to stop (control `stop`, then SIGTERM), waits up to `grace`, then
    /// kills it; detaches the mount if it is still there. Returns the exit status of a clean
    /// exit.
    pub async fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        let status = match self.child.take() {
            Some(mut child) => {
                let asked = match self.client().await {
                    Ok(mut c) => c.stop().await.is_ok(),
                    Err(_) => false,
                };
                if !asked {
                    signal(&child, libc::SIGTERM);
                }
                let deadline = Instant::now() + grace;
                let mut status = None;
                while Instant::now() < deadline {
                    if let Ok(Some(s)) = child.try_wait() {
                        status = Some(s);
                        break;
                    }
                    tokio::time::sleep(POLL).await;
                }
                if status.is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                status
            }
            None => None,
        };
        self.detach_leftover();
        status
    }

    fn detach_leftover(&self) {
        if is_mounted(&self.mount).unwrap_or(false) {
            let _ = unmount_detach(&self.mount);
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we have not reaped yet, so the pid is still ours.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// The ready file of a control socket: the socket path with `.ready` appended.
fn ready_path(control: &Path) -> PathBuf {
    let mut p = control.as_os_str().to_owned();
    p.push(".ready");
    PathBuf::from(p)
}

impl Drop for FaultFsProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if stop_blocking(&self.control, Duration::from_millis(500)).is_err() {
                signal(&child, libc::SIGTERM);
            }
            let deadline = Instant::now() + DROP_GRACE;
            let mut exited = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    break;
                }
                std::thread::sleep(POLL);
            }
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.detach_leftover();
    }
}
