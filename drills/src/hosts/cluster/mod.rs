//! A reference cluster on hosts reached over SSH: one node per host, started detached, driven
//! by pid, cut off by iptables rules that DROP by source address.
//!
//! On each host, everything lives in the host's `data_dir`: `raftdrill` (copied when the host
//! lacks this very build; sha256 compared), `token` (mode 0600, written over SSH's stdin, never
//! on a command line), `node.pid`, `node.log` and `data/`. Link faults go into a chain of
//! raftdrill's own, `RAFTDRILL`, jumped to from INPUT, so healing flushes one chain and
//! cleaning up removes it without touching anyone else's rules.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use raftdrill_wire::Status;
use target_cluster::typ::NodeId;

use super::cpu::{CpuWatch, NodeSample};
use super::file::{HostSpec, HostsFile};
use super::links::{HostLinks, proxy_port};
use super::shaping::Probe;
use super::ssh::{Ssh, SshError, quote};
use crate::admin::AdminClient;
use crate::proxy::LinkMode;
use crate::store::{PeerStyle, Program, Site, StartMode, Store, agreed_leader};

mod checks;
mod net;

pub(crate) use net::later;

use checks::{check_host, clean_node};
pub use checks::{clean_host, clock_offset};
pub(in crate::hosts) use checks::{install_binary, sha256};

/// How long one control command may take (a copy of the binary gets longer).
pub(super) const CALL: Duration = Duration::from_secs(15);
/// How long copying the binary to a host may take.
const COPY: Duration = Duration::from_secs(300);
/// A shell test that process `$p` runs: it exists and is not a zombie (a killed node's parent
/// on the host may not reap it at once, and `kill -0` succeeds on a zombie).
const ALIVE: &str =
    "{ s=\"$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)\"; [ -n \"$s\" ] && [ \"$s\" != Z ]; }";
/// raftdrill's iptables chain on each host.
const CHAIN: &str = "RAFTDRILL";

/// Driving nodes on hosts failed.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// An SSH call failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A host is not fit to run a node (checked before anything starts).
    #[error("host {host}: {detail}")]
    Unfit {
        /// The host's name.
        host: String,
        /// What is wrong.
        detail: String,
    },
    /// Something on this machine failed.
    #[error("{0}")]
    Local(String),
    /// No leader within the deadline.
    #[error("no leader was elected on the hosts within {0:?}")]
    NoLeader(Duration),
    /// Unknown node id.
    #[error("there is no node {0}")]
    UnknownNode(NodeId),
}

/// One node's host.
#[derive(Debug, Clone)]
pub struct HostNode {
    /// The node id.
    pub id: NodeId,
    /// The host as the file gives it.
    pub spec: HostSpec,
    /// SSH access.
    pub ssh: Ssh,
    /// Where the node listens.
    pub addr: SocketAddr,
    /// The host clock less the controller's, in seconds (midpoint of an SSH round trip).
    pub clock_offset_s: f64,
    /// The round trip the offset was measured in, in seconds (its error is at most half).
    pub clock_rtt_s: f64,
    /// What tc can do on the host (probed only for a scenario with delays or bandwidth caps).
    pub shaping: Option<Probe>,
}

impl HostNode {
    /// Whether this host can put its link to node `to` (at `peer`) in `mode` with tc.
    pub fn can_shape(&self, mode: &LinkMode, to: NodeId, peer: IpAddr) -> bool {
        self.shaping.as_ref().is_some_and(|p| p.can(mode, to, peer))
    }
}

impl HostNode {
    fn path(&self, name: &str) -> String {
        quote(&self.spec.data_dir.join(name).display().to_string())
    }
}

/// What the controller did, kept beside the SSH calls.
#[derive(Debug, Default)]
struct State {
    /// Nodes started and not killed or stopped since.
    running: BTreeSet<NodeId>,
    /// Nodes paused (SIGSTOP) and not resumed.
    paused: BTreeSet<NodeId>,
    /// Directed links cut: `(from, to)`, `to`'s host drops what `from` sends.
    cuts: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose clients are cut off too.
    isolated: BTreeSet<NodeId>,
    /// Directed links shaped by tc on the sending host, and how.
    shaped: BTreeMap<(NodeId, NodeId), LinkMode>,
    /// Each node's last start line; a restart repeats it.
    launches: BTreeMap<NodeId, String>,
}

/// How to start nodes on hosts.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The raftdrill binary to run on the hosts.
    pub exe: PathBuf,
    /// The port every node listens on, at its host's address.
    pub port: u16,
    /// The run's token (see `target_cluster::api::Auth`).
    pub token: String,
    /// The link modes the scenario puts links in beyond cuts (delays, bandwidth caps,
    /// resets). Each host is probed for tc ([`crate::hosts::shaping`]); link proxies run on the hosts only
    /// when some host cannot make one of these with tc (they add a hop to every peer link).
    pub link_modes: Vec<LinkMode>,
    /// The store the nodes run (with the run's token in its admin client).
    pub store: Store,
}

/// Nodes on hosts. Dropping it does not stop them: call [`HostCluster::stop`] (or
/// `raftdrill hosts heal`), which every exit path of the commands does.
pub struct HostCluster {
    nodes: BTreeMap<NodeId, HostNode>,
    opts: HostOptions,
    /// The admin client, with the token.
    admin: AdminClient,
    /// What this controller did to the nodes and links; quick to read without SSH.
    state: Mutex<State>,
    /// The link proxies, when asked for.
    links: Option<HostLinks>,
    /// The nodes' CPU and memory, sampled on their hosts once they run.
    cpu: Mutex<Option<CpuWatch>>,
    /// The control sockets of the SSH master connections.
    _control: tempfile::TempDir,
}

impl HostCluster {
    /// Checks every host (SSH, clock, port free, binary), copies the binary where it differs
    /// and hands each host the token, all before any node starts.
    pub async fn prepare(file: &HostsFile, mut opts: HostOptions) -> Result<Self, HostsError> {
        let bad_token = |e: target_cluster::api::BadToken| HostsError::Local(e.to_string());
        let admin = AdminClient::with_token(&opts.token).map_err(bad_token)?;
        opts.store = opts.store.with_token(&opts.token).map_err(bad_token)?;
        let local_sum = sha256(&opts.exe).await?;
        let placement = file.placement().map_err(HostsError::Local)?;
        // Short, so the socket paths stay under the 108 bytes a Unix socket path may have.
        let control = tempfile::Builder::new()
            .prefix("rdssh")
            .tempdir_in("/tmp")
            .map_err(|e| HostsError::Local(format!("a folder for SSH sockets: {e}")))?;
        let proxy_ports: Vec<u16> = if !opts.link_modes.is_empty() {
            placement
                .iter()
                .map(|(id, _)| proxy_port(opts.port, *id))
                .collect()
        } else {
            Vec::new()
        };
        let addrs: Vec<(NodeId, IpAddr)> = placement
            .iter()
            .filter_map(|(id, spec)| Some((*id, spec.addr.parse().ok()?)))
            .collect();
        let shaping = opts
            .link_modes
            .iter()
            .any(|m| matches!(m, LinkMode::Delay { .. } | LinkMode::Bandwidth { .. }));
        let checks = placement.into_iter().map(|(id, spec)| {
            let (spec, opts, sum) = (spec.clone(), opts.clone(), local_sum.clone());
            let socket = control.path().join(id.to_string());
            let ports = &proxy_ports;
            let peers: Vec<IpAddr> = addrs
                .iter()
                .filter(|(other, _)| *other != id)
                .map(|(_, a)| *a)
                .collect();
            let probe = shaping.then_some(peers);
            async move { check_host(id, spec, &opts, &sum, ports, probe, socket).await }
        });
        let mut nodes = BTreeMap::new();
        let mut failed = None;
        for checked in join_all(checks).await {
            match checked {
                Ok(node) => {
                    nodes.insert(node.id, node);
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let links = match failed {
            Some(e) => Err(e),
            None => match proxies_needed(&nodes, &opts) {
                Some(why) if opts.store.peer_style() == PeerStyle::Advertised => {
                    Err(HostsError::Unfit {
                        host: why.0,
                        detail: format!(
                            "{} (etcd's peer links cannot go through link proxies)",
                            why.1
                        ),
                    })
                }
                Some(why) => {
                    tracing::info!(host = %why.0, "link proxies on the hosts: {}", why.1);
                    HostLinks::start(&nodes).await.map(Some)
                }
                None => Ok(None),
            },
        };
        let links = match links {
            Ok(l) => l,
            Err(e) => {
                for n in nodes.values_mut() {
                    n.ssh.close_master();
                }
                return Err(e);
            }
        };
        Ok(Self {
            nodes,
            opts,
            admin,
            state: Mutex::new(State::default()),
            links,
            cpu: Mutex::new(None),
            _control: control,
        })
    }

    /// The nodes.
    pub fn nodes(&self) -> &BTreeMap<NodeId, HostNode> {
        &self.nodes
    }

    /// The store the nodes run.
    pub fn store(&self) -> &Store {
        &self.opts.store
    }

    /// The admin client, with the token.
    pub fn admin(&self) -> &AdminClient {
        &self.admin
    }

    /// Node `id`'s site: its addresses and paths on its host.
    pub fn site(&self, id: NodeId) -> Option<Site> {
        let n = self.nodes.get(&id)?;
        let peer = match self.opts.store.ports_per_node() {
            1 => n.addr,
            _ => SocketAddr::new(n.addr.ip(), n.addr.port().saturating_add(1)),
        };
        Some(Site {
            id,
            client: n.addr,
            peer_listen: peer,
            peer_advertised: peer,
            data_dir: n.spec.data_dir.join("data"),
            wal_dir: None,
            log: n.spec.data_dir.join("node.log"),
            token_file: Some(n.spec.data_dir.join("token")),
        })
    }

    /// The client URL of node `id`.
    pub fn url(&self, id: NodeId) -> String {
        self.nodes
            .get(&id)
            .map(|n| format!("http://{}", n.addr))
            .unwrap_or_default()
    }

    /// Every node's client URL, in id order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.keys().map(|id| self.url(*id)).collect()
    }

    fn node(&self, id: NodeId) -> Result<&HostNode, HostsError> {
        self.nodes.get(&id).ok_or(HostsError::UnknownNode(id))
    }

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
        self.state().running = self.nodes.keys().copied().collect();
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

    /// Node `id`'s CPU and memory as its host last reported them (none while it does not
    /// run, or its host does not answer).
    pub fn cpu_sample(&self, id: NodeId) -> Option<NodeSample> {
        let cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
        cpu.as_ref()?.sample(id)
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
        let line = format!(
            "cd {dir} || exit 1; setsid {program} {args} >> {log} 2>&1 < /dev/null & echo $! > {pid}",
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
    async fn stamped(&self, id: NodeId, line: &str) -> Result<Option<f64>, HostsError> {
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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node `id`'s process is gone: not running nor paused, and the link proxies in front of
    /// it refuse at once.
    async fn gone(&self, id: NodeId) {
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

    /// SIGSTOP node `id`; returns when the host did it.
    pub async fn pause(&self, id: NodeId) -> Result<Option<f64>, HostsError> {
        let at = self.signal(id, "STOP").await?;
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
        self.state().running.insert(id);
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
        self.state().running.insert(id);
        Ok(())
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

    /// Polls every running node's `/status` until all agree on one leader.
    pub async fn wait_for_leader(&self, limit: Duration) -> Result<NodeId, HostsError> {
        let deadline = Instant::now() + limit;
        loop {
            let statuses = self.statuses().await;
            if let Some(leader) = agreed_leader(&statuses)
                && statuses.len() == self.answering().len()
            {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(HostsError::NoLeader(limit));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The nodes that run and are not paused.
    fn answering(&self) -> Vec<NodeId> {
        let st = self.state();
        st.running
            .iter()
            .copied()
            .filter(|id| !st.paused.contains(id))
            .collect()
    }

    /// The status of every running node that answers.
    pub async fn statuses(&self) -> Vec<Status> {
        let calls = self
            .answering()
            .into_iter()
            .map(|id| self.status_call(id, Duration::from_millis(500)));
        join_all(calls).await.into_iter().flatten().collect()
    }

    /// A status call for node `id` that owns what it needs, so it can be awaited without
    /// holding the cluster.
    pub fn status_call(&self, id: NodeId, timeout: Duration) -> crate::store::StatusCall {
        self.opts.store.status_call(id, self.url(id), timeout)
    }

    /// Copies every node's log into `dir` as `<id>.log`.
    pub async fn fetch_logs(&self, dir: &Path) -> Result<(), HostsError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| HostsError::Local(format!("{}: {e}", dir.display())))?;
        for (id, n) in &self.nodes {
            let out = n
                .ssh
                .run(
                    &format!("cat {} 2>/dev/null || true", n.path("node.log")),
                    COPY,
                )
                .await?;
            let path = dir.join(format!("{id}.log"));
            std::fs::write(&path, &out.stdout)
                .map_err(|e| HostsError::Local(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Stops every node (SIGTERM, SIGKILL after `grace`) and removes raftdrill's rules, on
    /// every host, whatever this controller believes runs. Errors are collected, not fatal:
    /// each host is cleaned as far as it can be.
    /// (The SSH master connections close when the cluster is dropped.)
    pub async fn stop(&self, grace: Duration) -> Vec<HostsError> {
        let cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(cpu) = cpu {
            cpu.stop().await;
        }
        if let Some(l) = &self.links {
            l.stop().await;
        }
        let calls = self
            .nodes
            .values()
            .map(|n| clean_host(n.ssh.clone(), n.spec.clone(), grace));
        let errors = join_all(calls)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        *self.state() = State::default();
        errors
    }
}

/// Why link proxies must run on the hosts, as (host, reason): a link mode of the scenario that
/// some sending host cannot make with tc. `None` when tc makes them all (or there are none).
fn proxies_needed(
    nodes: &BTreeMap<NodeId, HostNode>,
    opts: &HostOptions,
) -> Option<(String, String)> {
    for mode in &opts.link_modes {
        for (from, n) in nodes {
            for (to, peer) in nodes.iter().filter(|(to, _)| *to != from) {
                if !n.can_shape(mode, *to, peer.addr.ip()) {
                    let why = match mode {
                        LinkMode::Delay { .. } => "no tc netem to delay its links",
                        LinkMode::Bandwidth { bytes_per_sec: 0 } => {
                            "a bandwidth of 0 (a blackhole) is made by link proxies"
                        }
                        LinkMode::Bandwidth { .. } => "no tc tbf to cap its links",
                        _ => "resets are made by link proxies",
                    };
                    return Some((n.spec.name.clone(), why.to_string()));
                }
            }
        }
    }
    None
}

impl Drop for HostCluster {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            n.ssh.close_master();
        }
    }
}
