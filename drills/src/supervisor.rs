//! Node processes: spawn, signal, reap, and never leave one behind.
//!
//! Every node is a child process (`raftdrill node ...` for the reference cluster, or another
//! store's binary: see [`Supervisor::for_program`]) in its own process group (so a Ctrl-C on
//! the terminal reaches raftdrill, which then stops the nodes in order). Each child asks the
//! kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), which covers a SIGKILL of
//! raftdrill itself; the [`Supervisor`]'s `Drop` covers every other exit path, panics included.
//!
//! The parent-death signal fires when the *thread* that forked the child exits, so nodes must be
//! spawned from a thread that lives as long as raftdrill: the main thread or a runtime worker,
//! never a `spawn_blocking` thread.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use target_cluster::typ::NodeId;

/// The environment variable that carries the pid of the raftdrill that started a node.
pub const PARENT_ENV: &str = "RAFTDRILL_PARENT_PID";

/// Starting or signalling a node failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The node's log file could not be opened.
    #[error("cannot open node log {path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("cannot start node {id} ({exe}): {source}")]
    Spawn {
        /// Node id.
        id: NodeId,
        /// The binary.
        exe: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No such node is running.
    #[error("node {0} is not running")]
    NotRunning(NodeId),
}

/// How to start one node process.
#[derive(Debug, Clone)]
pub struct NodeLaunch {
    /// Node id.
    pub id: NodeId,
    /// Arguments after `raftdrill node` (or after the program, see [`Supervisor::for_program`]).
    pub args: Vec<String>,
    /// File that receives the node's stdout and stderr (appended across restarts).
    pub log: PathBuf,
    /// Environment variables beyond raftdrill's own (libfaketime's, for clock faults).
    pub env: Vec<(String, String)>,
}

struct Running {
    child: Child,
    paused: bool,
    /// SIGTERMed by the drill ([`Supervisor::term`]): its exit is the drill's to reap, never
    /// one on its own (a store that stops fast, as etcd does, would otherwise be reaped by
    /// the poller's look first).
    stopping: bool,
}

/// Owns the node processes.
pub struct Supervisor {
    exe: PathBuf,
    /// Arguments before each node's own (`node` for raftdrill's hidden subcommand).
    leading_args: Vec<String>,
    running: BTreeMap<NodeId, Running>,
}

impl Supervisor {
    /// A supervisor that starts nodes with `exe node ...`.
    pub fn new(exe: PathBuf) -> Self {
        Self {
            exe,
            leading_args: vec!["node".into()],
            running: BTreeMap::new(),
        }
    }

    /// A supervisor that starts nodes with `program ...` (each launch's arguments alone), for
    /// stores that ship their own binary, such as etcd.
    pub fn for_program(program: PathBuf) -> Self {
        Self {
            exe: program,
            leading_args: Vec::new(),
            running: BTreeMap::new(),
        }
    }

    /// Starts a node.
    pub fn spawn(&mut self, launch: &NodeLaunch) -> Result<u32, SupervisorError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log)
            .map_err(|source| SupervisorError::Log {
                path: launch.log.clone(),
                source,
            })?;
        let log2 = log.try_clone().map_err(|source| SupervisorError::Log {
            path: launch.log.clone(),
            source,
        })?;
        let parent = std::process::id();
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.leading_args)
            .args(&launch.args)
            // Marks the process as this run's, so a check can find a node left behind even
            // after it was re-parented.
            .env(PARENT_ENV, parent.to_string())
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (prctl, getppid, _exit).
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| SupervisorError::Spawn {
            id: launch.id,
            exe: self.exe.clone(),
            source,
        })?;
        let pid = child.id();
        self.running.insert(
            launch.id,
            Running {
                child,
                paused: false,
                stopping: false,
            },
        );
        Ok(pid)
    }

    /// The pid of a running node.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.running.get(&id).map(|r| r.child.id())
    }

    /// Ids of the nodes that have a process.
    pub fn running_ids(&self) -> Vec<NodeId> {
        self.running.keys().copied().collect()
    }

    /// Whether the node is stopped with SIGSTOP.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.running.get(&id).is_some_and(|r| r.paused)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self, id: NodeId) -> Result<(), SupervisorError> {
        let mut r = self
            .running
            .remove(&id)
            .ok_or(SupervisorError::NotRunning(id))?;
        let _ = r.child.kill();
        let _ = r.child.wait();
        Ok(())
    }

    /// SIGTERM, wait up to `grace` for a clean exit, then SIGKILL. Returns the exit status.
    pub async fn terminate(
        &mut self,
        id: NodeId,
        grace: Duration,
    ) -> Result<Option<ExitStatus>, SupervisorError> {
        let mut r = self
            .running
            .remove(&id)
            .ok_or(SupervisorError::NotRunning(id))?;
        if r.paused {
            signal(&r.child, libc::SIGCONT);
        }
        signal(&r.child, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = r.child.try_wait() {
                return Ok(Some(status));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = r.child.kill();
        let _ = r.child.wait();
        Ok(None)
    }

    /// Sends SIGTERM (and SIGCONT first, when paused) without waiting; see [`Supervisor::reap`].
    pub fn term(&mut self, id: NodeId) -> Result<(), SupervisorError> {
        let r = self
            .running
            .get_mut(&id)
            .ok_or(SupervisorError::NotRunning(id))?;
        if r.paused {
            signal(&r.child, libc::SIGCONT);
            r.paused = false;
        }
        signal(&r.child, libc::SIGTERM);
        r.stopping = true;
        Ok(())
    }

    /// If node `id` has exited, forgets it and returns its status.
    pub fn reap(&mut self, id: NodeId) -> Option<ExitStatus> {
        let status = self.running.get_mut(&id)?.child.try_wait().ok()??;
        self.running.remove(&id);
        Some(status)
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: NodeId) -> Result<(), SupervisorError> {
        let r = self
            .running
            .get_mut(&id)
            .ok_or(SupervisorError::NotRunning(id))?;
        signal(&r.child, libc::SIGSTOP);
        r.paused = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: NodeId) -> Result<(), SupervisorError> {
        let r = self
            .running
            .get_mut(&id)
            .ok_or(SupervisorError::NotRunning(id))?;
        signal(&r.child, libc::SIGCONT);
        r.paused = false;
        Ok(())
    }

    /// Nodes whose process has exited on its own since the last call, with their status.
    pub fn reap_exited(&mut self) -> Vec<(NodeId, ExitStatus)> {
        let mut out = Vec::new();
        for (id, r) in &mut self.running {
            if r.stopping {
                continue;
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                out.push((*id, status));
            }
        }
        for (id, _) in &out {
            self.running.remove(id);
        }
        out
    }

    /// Stops every node: SIGTERM to all, then SIGKILL to whatever is left after `grace`.
    pub async fn stop_all(&mut self, grace: Duration) {
        for r in self.running.values() {
            if r.paused {
                signal(&r.child, libc::SIGCONT);
            }
            signal(&r.child, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.running.is_empty() {
            self.running
                .retain(|_, r| !matches!(r.child.try_wait(), Ok(Some(_))));
            if self.running.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill_all();
    }

    /// SIGKILL and reap every node at once.
    pub fn kill_all(&mut self) {
        for (_, mut r) in std::mem::take(&mut self.running) {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we have not reaped yet, so the pid is still ours.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Whether every thread of process `pid` is stopped (state `T` or `t` in
/// `/proc/<pid>/task/*/stat`); `None` when the process is gone or unreadable.
///
/// kill(2) returns once SIGSTOP is queued: the process stops when one of its threads takes the
/// signal and stops the others, which on a busy machine can be milliseconds later, and until
/// then its other threads still answer requests.
pub fn all_stopped(pid: u32) -> Option<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut any = false;
    for task in tasks {
        let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        // "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        if !matches!(state, 'T' | 't') {
            return Some(false);
        }
        any = true;
    }
    Some(any)
}

/// Waits (polling, at most `within`) until process `pid` has stopped; false when it has not.
pub async fn wait_stopped(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match all_stopped(pid) {
            Some(true) => return true,
            None => return false,
            Some(false) if Instant::now() >= deadline => return false,
            Some(false) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// The last `lines` lines of a node log, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node the drill SIGTERMed is the drill's to reap: the poller's look at exits passes it
    /// by, however fast it stops.
    #[test]
    fn a_node_being_stopped_is_not_reaped_as_an_exit_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::for_program("/bin/sleep".into());
        let launch = |id| NodeLaunch {
            id,
            args: vec!["30".into()],
            log: dir.path().join(format!("{id}.log")),
            env: Vec::new(),
        };
        sup.spawn(&launch(1)).unwrap();
        sup.spawn(&launch(2)).unwrap();
        sup.term(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            assert!(sup.reap_exited().is_empty(), "nothing exited on its own");
            if let Some(s) = sup.reap(1) {
                break s;
            }
            assert!(Instant::now() < deadline, "sleep outlived SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success());
        // An exit nobody asked for is still seen.
        let pid = sup.pid(2).unwrap();
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let exited = sup.reap_exited();
            if !exited.is_empty() {
                assert_eq!(exited[0].0, 2);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the SIGKILLed node was never reaped"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A pause returns when the process has stopped, not when SIGSTOP was queued; a running or
    /// resumed process is not taken for a stopped one, nor is a gone one.
    #[tokio::test]
    async fn a_pause_is_seen_once_every_thread_has_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut sup = Supervisor::for_program("/bin/sleep".into());
        sup.spawn(&NodeLaunch {
            id: 1,
            args: vec!["30".into()],
            log: dir.path().join("1.log"),
            env: Vec::new(),
        })
        .unwrap();
        let pid = sup.pid(1).unwrap();
        assert_eq!(all_stopped(pid), Some(false));
        assert!(!wait_stopped(pid, Duration::from_millis(50)).await);
        sup.pause(1).unwrap();
        assert!(wait_stopped(pid, Duration::from_secs(10)).await);
        sup.resume(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while all_stopped(pid) != Some(false) {
            assert!(Instant::now() < deadline, "SIGCONT never took effect");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sup.kill_all();
        assert_eq!(all_stopped(pid), None);
        assert!(!wait_stopped(pid, Duration::from_secs(1)).await);
    }
}
