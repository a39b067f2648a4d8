//! Node processes on their hosts: started detached with their pid in `node.pid`, signalled
//! by that pid, their data deleted; each step stamped with the host's clock.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use target_cluster::typ::NodeId;

use super::checks::clean_node;
use super::{ALIVE, HostCluster, State};
use crate::hosts::cpu::CpuWatch;
use crate::hosts::ssh::{SshError, quote};
use crate::hosts::{CALL, HostsError};
use crate::store::{PeerStyle, Program, StartMode, Store};

/// How long a node's host must have answered "no process" (and how long after its start)
/// before the node counts as exited: a start's pid file and a sampler's answer can cross.
const EXIT_GRACE: Duration = Duration::from_secs(1);

impl HostCluster {
    /// Starts every node; the lowest id bootstraps the cluster.
    pub async fn start_all(&self) -> Result<(), HostsError> {
        let members: Vec<NodeId> = self.nodes.keys().copied().collect();
        let starts = members.iter().map(|id| {
            let line = self.start_line(*id, StartMode::Bootstrap(&members));
            let ssh = self.nodes[id].ssh.clone();
            async move { ssh.run(&line?, CALL).await.map_err(HostsError::from) }
        });
        for r in join_all(starts).await {
            r?;
        }
        {
            let mut st = self.state();
            st.running = self.nodes.keys().copied().collect();
            let now = std::time::Instant::now();
            st.started = self.nodes.keys().map(|id| (*id, now)).collect();
        }
        for id in self.nodes.keys() {
            self.clock_started(*id);
        }
        let watched = self
            .nodes
            .iter()
            .map(|(id, n)| {
                let pid_file = n.spec.data_dir.join("node.pid").display().to_string();
                (*id, n.ssh.clone(), pid_file)
            })
            .collect();
        *self.cpu.lock().unwrap_or_else(|e| e.into_inner()) = Some(CpuWatch::start(watched));
        Ok(())
    }

    /// The shell line that starts node `id` as `mode`, detached in its own session, its pid
    /// in `node.pid`; the launch is kept for its restarts.
    fn start_line(&self, id: NodeId, mode: StartMode<'_>) -> Result<String, HostsError> {
        let n = self.node(id)?;
        let site = self.site(id).ok_or(HostsError::UnknownNode(id))?;
        let store = &self.opts.store;
        let peers: Vec<(NodeId, SocketAddr)> = match store.peer_style() {
            // Through this host's own proxy to the peer, when there are proxies.
            PeerStyle::PerLink => self
                .nodes
                .iter()
                .filter(|(p, _)| **p != id)
                .map(|(p, pn)| {
                    let addr = self.links.as_ref().and_then(|l| l.peer_addr(id, *p));
                    (*p, addr.unwrap_or(pn.addr))
                })
                .collect(),
            PeerStyle::Advertised => self
                .nodes
                .keys()
                .filter_map(|p| Some((*p, self.site(*p)?.peer_advertised)))
                .collect(),
        };
        let args = store.launch(&site, &peers, mode);
        let program = match store.program() {
            Program::RaftdrillNode => format!("{} node", n.path("raftdrill")),
            // etcd from the host's PATH; restarted on its data, it ignores the initial flags.
            Program::Etcd(_) => "etcd".into(),
        };
        let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let (true_clock, env) = self.clock_prefix(id)?;
        let line = format!(
            "cd {dir} || exit 1; {true_clock}setsid {env}{program} {args} >> {log} 2>&1 < /dev/null & echo $! > {pid}",
            dir = quote(&n.spec.data_dir.display().to_string()),
            args = args.join(" "),
            log = n.path("node.log"),
            pid = n.path("node.pid"),
        );
        self.state().launches.insert(id, line.clone());
        Ok(line)
    }

    /// Sends `signal` to node `id`'s process by its pid file; returns when the host did it.
    async fn signal(&self, id: NodeId, signal: &str) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        let line = format!("kill -{signal} \"$(cat {})\"", n.path("node.pid"));
        self.stamped(id, &line).await
    }

    /// Runs `line` on node `id`'s host and returns the moment it finished there, on the
    /// controller's clock (Unix seconds): the host's own clock read right after, less its
    /// offset. A fault counts from this moment, not from when the SSH call was made, so the
    /// call's own latency is not charged to the store.
    pub(super) async fn stamped(&self, id: NodeId, line: &str) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        let out = n
            .ssh
            .run(&format!("{line} && date +%s.%N"), CALL)
            .await?
            .text();
        Ok(out
            .lines()
            .last()
            .and_then(|l| l.trim().parse::<f64>().ok())
            .map(|t| t - n.clock_offset_s))
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node `id`'s process is gone: not running nor paused, and the link proxies in front of
    /// it refuse at once.
    pub(super) async fn gone(&self, id: NodeId) {
        {
            let mut st = self.state();
            st.running.remove(&id);
            st.paused.remove(&id);
        }
        if let Some(l) = &self.links {
            l.node_down(id).await;
        }
    }

    /// SIGKILL node `id`; returns when the host did it (see `HostCluster::stamped`).
    pub async fn kill(&self, id: NodeId) -> Result<Option<f64>, HostsError> {
        let at = self.signal(id, "KILL").await?;
        self.gone(id).await;
        Ok(at)
    }

    /// SIGTERM node `id`, SIGKILL after `grace`; returns once it is gone.
    pub async fn stop_node(&self, id: NodeId, grace: Duration) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        clean_node(&n.ssh, &n.spec, grace).await?;
        self.gone(id).await;
        // The node is gone when the clean-up returns; its exit time is not recorded.
        Ok(None)
    }

    /// SIGSTOP node `id`; returns when every thread of it has stopped there (kill(2) only
    /// queues the signal), or after a second of waiting for one blocked in the kernel.
    pub async fn pause(&self, id: NodeId) -> Result<Option<f64>, HostsError> {
        let line = pause_line(&self.node(id)?.path("node.pid"));
        let at = self.stamped(id, &line).await?;
        self.state().paused.insert(id);
        Ok(at)
    }

    /// SIGCONT node `id`.
    pub async fn resume(&self, id: NodeId) -> Result<(), HostsError> {
        self.signal(id, "CONT").await?;
        self.state().paused.remove(&id);
        Ok(())
    }

    /// Kills node `id` if it runs and waits until it is gone, then deletes `paths` on its
    /// host. Returns when its data was gone there (see `HostCluster::stamped`).
    pub async fn erase(&self, id: NodeId, paths: &[PathBuf]) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        let paths: Vec<String> = paths
            .iter()
            .map(|p| quote(&p.display().to_string()))
            .collect();
        let line = format!(
            "if [ -s {pid} ]; then p=\"$(cat {pid})\"; kill -KILL \"$p\" 2>/dev/null; \
             i=0; while {ALIVE} && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
             if {ALIVE}; then echo \"node $p outlived SIGKILL\" >&2; exit 1; fi; fi; \
             rm -rf {paths}",
            pid = n.path("node.pid"),
            paths = paths.join(" "),
        );
        let at = self.stamped(id, &line).await?;
        self.gone(id).await;
        Ok(at)
    }

    /// Starts node `id` again with its last launch, on its data.
    pub async fn restart(&self, id: NodeId) -> Result<(), HostsError> {
        let line = self.state().launches.get(&id).cloned();
        let line = match line {
            Some(l) => l,
            None => self.start_line(id, StartMode::Join)?,
        };
        self.node(id)?.ssh.run(&line, CALL).await?;
        self.mark_started(id);
        Ok(())
    }

    /// Starts node `id` as `mode` (a node wiped and joining again, say).
    pub async fn start_as(
        &self,
        id: NodeId,
        store: &Store,
        mode: StartMode<'_>,
    ) -> Result<(), HostsError> {
        debug_assert_eq!(store.kind(), self.opts.store.kind());
        let line = self.start_line(id, mode)?;
        self.node(id)?.ssh.run(&line, CALL).await?;
        self.mark_started(id);
        Ok(())
    }

    /// Node `id` runs, started now.
    fn mark_started(&self, id: NodeId) {
        {
            let mut st = self.state();
            st.running.insert(id);
            st.started.insert(id, std::time::Instant::now());
        }
        self.clock_started(id);
    }

    /// The nodes that exited without this controller's doing since the last look: their host
    /// has answered for a while that they have no live process, though they were started and
    /// not killed, stopped or erased. Each is reported once, with the end of its log.
    pub async fn exited(&self) -> Vec<(NodeId, String)> {
        let gone: Vec<NodeId> = {
            let st = self.state();
            let cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
            let Some(cpu) = cpu.as_ref() else {
                return Vec::new();
            };
            st.running
                .iter()
                .copied()
                .filter(|id| {
                    let started = st.started.get(id).copied();
                    // Seen gone by a look taken well after its (re)start: a node that died
                    // at once after a restart counts too, though its absence began before.
                    cpu.absent(*id).is_some_and(|(since, last)| {
                        started.is_none_or(|s| last > s + EXIT_GRACE)
                            && since.elapsed() >= EXIT_GRACE
                    })
                })
                .collect()
        };
        let mut out = Vec::new();
        for id in gone {
            self.gone(id).await;
            let tail = match self.node(id) {
                Ok(n) => n
                    .ssh
                    .run(
                        &format!("tail -n 15 {} 2>/dev/null || true", n.path("node.log")),
                        CALL,
                    )
                    .await
                    .map(|o| o.text())
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            out.push((id, tail));
        }
        out
    }

    /// Holds node `id` to `share` of one core by a CPU quota on its host (`None` lifts it);
    /// returns when the host did it.
    pub async fn limit_cpu(
        &self,
        id: NodeId,
        share: Option<f64>,
    ) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        let name = crate::placement::cgroup::host_group(&n.spec.name);
        let line = match share {
            Some(s) => crate::placement::cgroup::limit_line(&name, &n.path("node.pid"), s),
            // Nothing to lift: no call to the host.
            None if !self.state().limping.contains(&id) => return Ok(None),
            None => crate::placement::cgroup::lift_line(&name),
        };
        let at = self.stamped(id, &line).await?;
        let mut st = self.state();
        match share {
            Some(_) => st.limping.insert(id),
            None => st.limping.remove(&id),
        };
        Ok(at)
    }

    /// Whether this controller started node `id` and has not killed or stopped it since.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.state().running.contains(&id)
    }

    /// Whether node `id`'s process is alive on its host (asked over SSH).
    pub async fn is_running_on_host(&self, id: NodeId) -> Result<bool, HostsError> {
        let n = self.node(id)?;
        let line = format!("p=\"$(cat {} 2>/dev/null)\" && {ALIVE}", n.path("node.pid"));
        match n.ssh.run(&line, CALL).await {
            Ok(_) => Ok(true),
            Err(SshError::Failed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether this controller paused node `id`.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.state().paused.contains(&id)
    }

    /// The nodes this controller started and has not killed.
    pub fn running_ids(&self) -> Vec<NodeId> {
        self.state().running.iter().copied().collect()
    }
}

/// The shell line that SIGSTOPs the process whose pid is in `pid_file` (quoted) and waits, at
/// most a second, until every one of its threads is stopped: each thread's state is the first
/// field after the last ") " of its stat line.
fn pause_line(pid_file: &str) -> String {
    format!(
        "p=\"$(cat {pid_file})\"; kill -STOP \"$p\" && i=0 && \
         while [ $i -lt 100 ] && sed 's/.*) //' /proc/\"$p\"/task/*/stat 2>/dev/null \
         | cut -c1 | grep -qv '[Tt]'; do sleep 0.01; i=$((i+1)); done"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::ssh::quote;

    /// The line a host runs for a pause is sound shell and returns with the process stopped.
    #[test]
    fn the_pause_line_returns_with_the_process_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid_file = dir.path().join("node.pid");
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let line = pause_line(&quote(&pid_file.display().to_string()));
        let status = std::process::Command::new("sh")
            .args(["-c", &line])
            .status()
            .unwrap();
        let stopped = crate::supervisor::all_stopped(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(status.success());
        assert_eq!(stopped, Some(true));
    }
}
