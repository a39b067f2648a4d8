//! A reference cluster on hosts reached over SSH: one node per host, started detached, driven
//! by pid, cut off by iptables rules that DROP by source address.
//!
//! On each host, everything lives in the host's `data_dir`: `raftdrill` (copied when the host
//! lacks this very build; sha256 compared), `token` (mode 0600, written over SSH's stdin, never
//! on a command line), `node.pid`, `node.log` and `data/`. Link faults go into a chain of
//! raftdrill's own, `RAFTDRILL`, jumped to from INPUT, so healing flushes one chain and
//! cleaning up removes it without touching anyone else's rules. With clock faults, the node
//! starts with the host's libfaketime preloaded and reads its clock from `node.faketime`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use raftdrill_wire::Status;
use target_cluster::typ::NodeId;

use super::HostsError;
use super::cpu::{CpuWatch, NodeSample};
use super::links::{HostLinks, proxy_port};
use super::node::HostNode;
use crate::admin::AdminClient;
use crate::hosts::HostsFile;
use crate::placement::clock::NodeClock;
use crate::proxy::LinkMode;
use crate::store::{PeerStyle, Site, Store, agreed_leader};

mod checks;
mod clock;
mod files;
mod net;
mod process;

pub use net::Filter;

use checks::check_host;
pub use checks::{clean_host, clock_offset};
pub(in crate::hosts) use checks::{install_binary, sha256};

/// How long copying the binary to a host may take.
const COPY: Duration = Duration::from_secs(300);
/// A shell test that process `$p` runs: it exists and is not a zombie (a killed node's parent
/// on the host may not reap it at once, and `kill -0` succeeds on a zombie).
const ALIVE: &str =
    "{ s=\"$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)\"; [ -n \"$s\" ] && [ \"$s\" != Z ]; }";
/// raftdrill's iptables chain on each host.
const CHAIN: &str = "RAFTDRILL";

/// What the controller did, kept beside the SSH calls.
#[derive(Debug, Default)]
struct State {
    /// Nodes started and not killed or stopped since.
    running: BTreeSet<NodeId>,
    /// Nodes paused (SIGSTOP) and not resumed.
    paused: BTreeSet<NodeId>,
    /// Directed links filtered by iptables on the receiving host: `(from, to)`, `to`'s host
    /// drops (all of, or a share of) what `from` sends, or rejects it with a reset.
    rules: BTreeMap<(NodeId, NodeId), net::Filter>,
    /// Nodes whose clients are cut off too.
    isolated: BTreeSet<NodeId>,
    /// Directed links shaped by tc on the sending host, and how.
    shaped: BTreeMap<(NodeId, NodeId), LinkMode>,
    /// Each node's last start line; a restart repeats it.
    launches: BTreeMap<NodeId, String>,
    /// Nodes held to a CPU quota.
    limping: BTreeSet<NodeId>,
    /// When each running node was last started, so an exit seen by its host's sampler is
    /// told from the gap before the new process shows up.
    started: BTreeMap<NodeId, std::time::Instant>,
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
    /// Start every node with libfaketime preloaded, so `clock` faults can reach it (each host
    /// must have it: Debian's faketime).
    pub clocks: bool,
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
    /// The nodes' clocks, with `HostOptions::clocks`.
    clocks: Mutex<BTreeMap<NodeId, NodeClock<clock::HostClockFile>>>,
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
        // Short, so the socket paths stay under the 108 bytes a Unix socket path may have.
        let control = tempfile::Builder::new()
            .prefix("rdssh")
            .tempdir_in("/tmp")
            .map_err(|e| HostsError::Local(format!("a folder for SSH sockets: {e}")))?;
        let (mut nodes, failed) = check_hosts(file, &opts, control.path()).await?;
        let links = match failed {
            Some(e) => Err(e),
            None => start_links(&nodes, &opts).await,
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
            clocks: Mutex::new(BTreeMap::new()),
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

    /// Node `id`'s CPU and memory as its host last reported them (none while it does not
    /// run, or its host does not answer).
    pub fn cpu_sample(&self, id: NodeId) -> Option<NodeSample> {
        let cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
        cpu.as_ref()?.sample(id)
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

/// Checks and readies every host at once: each checked node, and the first failure.
async fn check_hosts(
    file: &HostsFile,
    opts: &HostOptions,
    control: &Path,
) -> Result<(BTreeMap<NodeId, HostNode>, Option<HostsError>), HostsError> {
    let local_sum = sha256(&opts.exe).await?;
    let placement = file.placement().map_err(HostsError::Local)?;
    let proxy_ports: Vec<u16> = if opts.link_modes.is_empty() {
        Vec::new()
    } else {
        placement
            .iter()
            .map(|(id, _)| proxy_port(opts.port, *id))
            .collect()
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
        let (spec, sum) = (spec.clone(), local_sum.clone());
        let socket = control.join(id.to_string());
        let ports = &proxy_ports;
        let peers: Vec<IpAddr> = addrs
            .iter()
            .filter(|(other, _)| *other != id)
            .map(|(_, a)| *a)
            .collect();
        let probe = shaping.then_some(peers);
        async move { check_host(id, spec, opts, &sum, ports, probe, socket).await }
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
    Ok((nodes, failed))
}

/// The link proxies the hosts need, started; refused for a store whose peer links cannot go
/// through them.
async fn start_links(
    nodes: &BTreeMap<NodeId, HostNode>,
    opts: &HostOptions,
) -> Result<Option<HostLinks>, HostsError> {
    match proxies_needed(nodes, opts) {
        Some(why) if opts.store.peer_style() == PeerStyle::Advertised => Err(HostsError::Unfit {
            host: why.0,
            detail: format!(
                "{} (etcd's peer links cannot go through link proxies)",
                why.1
            ),
        }),
        Some(why) => {
            tracing::info!(host = %why.0, "link proxies on the hosts: {}", why.1);
            HostLinks::start(nodes).await.map(Some)
        }
        None => Ok(None),
    }
}

/// Why link proxies must run on the hosts, as (host, reason): a link mode of the scenario that
/// some sending host cannot make with tc. `None` when tc makes them all (or there are none).
fn proxies_needed(
    nodes: &BTreeMap<NodeId, HostNode>,
    opts: &HostOptions,
) -> Option<(String, String)> {
    // Resets (and cuts, and packet loss) are iptables rules: only delays and bandwidth caps
    // may need a proxy.
    let shaped = opts
        .link_modes
        .iter()
        .filter(|m| matches!(m, LinkMode::Delay { .. } | LinkMode::Bandwidth { .. }));
    for mode in shaped {
        for (from, n) in nodes {
            for (to, peer) in nodes.iter().filter(|(to, _)| *to != from) {
                if !n.can_shape(mode, *to, peer.addr.ip()) {
                    let why = match mode {
                        LinkMode::Delay { .. } => "no tc netem to delay its links",
                        LinkMode::Bandwidth { bytes_per_sec: 0 } => {
                            "a bandwidth of 0 (a blackhole) is made by link proxies"
                        }
                        _ => "no tc tbf to cap its links",
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
