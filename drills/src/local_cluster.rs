//! A reference cluster on this machine: N node processes on loopback, wired together.
//!
//! Used by `raftdrill cluster`, by the drills, and by the integration tests, so that all three
//! start nodes the same way.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use raftdrill_wire::{Role, Status};
use target_cluster::typ::NodeId;

use crate::admin::AdminClient;
use crate::supervisor::{NodeLaunch, Supervisor, SupervisorError, log_tail};

/// How to start a local cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of initial voters, ids 1..=nodes.
    pub nodes: u64,
    /// Node i listens on `base_port + i - 1`; without it, free ports are picked.
    pub base_port: Option<u16>,
    /// Root of the node data dirs (`node-<id>/`) and logs (`logs/<id>.log`); without it, a
    /// temporary folder removed when the cluster is dropped.
    pub data_dir: Option<PathBuf>,
    /// Folder for node logs, when it should differ from `<data_dir>/logs`.
    pub log_dir: Option<PathBuf>,
    /// The raftdrill binary that runs `node`.
    pub exe: PathBuf,
    /// Extra flags for every node (`--store memory`, `--snapshot-every 500`, ...).
    pub node_flags: Vec<String>,
    /// The run's token: written to `<root>/token` (mode 0600) for `--token-file`, and sent by
    /// this cluster's admin calls. `None` on loopback, where no one else can reach the nodes.
    pub token: Option<String>,
}

/// Starting or driving the local cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A requested port is taken.
    #[error("port {0} on 127.0.0.1 is already in use")]
    PortInUse(u16),
    /// The OS gave no free port.
    #[error("cannot find a free port: {0}")]
    NoPort(std::io::Error),
    /// Folder setup failed.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A node could not be started or signalled.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// A node exited while it was expected to run.
    #[error("node {id} exited ({status}); last log lines:\n{tail}")]
    NodeExited {
        /// Node id.
        id: NodeId,
        /// Its exit status.
        status: String,
        /// The end of its log.
        tail: String,
    },
    /// No leader within the deadline.
    #[error("no leader was elected within {0:?}")]
    NoLeader(Duration),
    /// Unknown node id.
    #[error("there is no node {0}")]
    UnknownNode(NodeId),
    /// The run's token cannot be used.
    #[error("bad token: {0}")]
    Token(String),
}

/// One node's fixed facts.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Node id.
    pub id: NodeId,
    /// Its listen address.
    pub addr: SocketAddr,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

/// A running local cluster. Dropping it kills every node.
pub struct LocalCluster {
    supervisor: Supervisor,
    nodes: BTreeMap<NodeId, NodeInfo>,
    launches: BTreeMap<NodeId, NodeLaunch>,
    admin: AdminClient,
    root: PathBuf,
    log_dir: PathBuf,
    node_flags: Vec<String>,
    /// `(from, to)` → where `from` sends its traffic for `to` (a link proxy), when not direct.
    peer_addrs: BTreeMap<(NodeId, NodeId), String>,
    initial: Vec<NodeId>,
    // Declared last: removed after the nodes are gone.
    _tmp: Option<tempfile::TempDir>,
}

impl LocalCluster {
    /// Starts `opts.nodes` voters (they bootstrap themselves) and returns without waiting for a
    /// leader; see [`LocalCluster::wait_for_leader`].
    pub fn start(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        let mut c = Self::prepare(opts)?;
        c.start_all()?;
        Ok(c)
    }

    /// Sets up folders and ports for `opts.nodes` voters without starting them, so that link
    /// proxies can be put between them first ([`LocalCluster::set_peer_addr`]).
    pub fn prepare(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        let (tmp, root) = match &opts.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("raftdrill-cluster-")
                    .tempdir()
                    .map_err(|source| ClusterError::Dir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let log_dir = opts.log_dir.clone().unwrap_or_else(|| root.join("logs"));
        for dir in [&root, &log_dir] {
            std::fs::create_dir_all(dir).map_err(|source| ClusterError::Dir {
                path: dir.clone(),
                source,
            })?;
        }
        let mut node_flags = opts.node_flags.clone();
        let admin = match &opts.token {
            Some(token) => {
                let path = root.join("token");
                write_secret(&path, token).map_err(|source| ClusterError::Dir {
                    path: path.clone(),
                    source,
                })?;
                node_flags.extend(["--token-file".into(), path.display().to_string()]);
                AdminClient::with_token(token).map_err(|e| ClusterError::Token(e.to_string()))?
            }
            None => AdminClient::new(),
        };
        let ids: Vec<NodeId> = (1..=opts.nodes).collect();
        let ports = pick_ports(opts.base_port, ids.len())?;
        let mut cluster = Self {
            supervisor: Supervisor::new(opts.exe.clone()),
            nodes: BTreeMap::new(),
            launches: BTreeMap::new(),
            admin,
            root,
            log_dir,
            node_flags,
            peer_addrs: BTreeMap::new(),
            initial: ids.clone(),
            _tmp: tmp,
        };
        for (id, port) in ids.iter().zip(&ports) {
            cluster.register(*id, SocketAddr::from(([127, 0, 0, 1], *port)));
        }
        Ok(cluster)
    }

    /// Makes node `from` send its traffic for `to` to `addr` (takes effect at its next start).
    pub fn set_peer_addr(&mut self, from: NodeId, to: NodeId, addr: String) {
        self.peer_addrs.insert((from, to), addr);
    }

    /// Starts every prepared initial voter; the lowest id bootstraps the cluster.
    pub fn start_all(&mut self) -> Result<(), ClusterError> {
        let members: Vec<String> = self.initial.iter().map(|i| i.to_string()).collect();
        let members = members.join(",");
        for id in self.initial.clone() {
            let mut args = self.base_args(id);
            args.extend(["--initial-members".to_string(), members.clone()]);
            self.launch(id, args)?;
        }
        Ok(())
    }

    fn register(&mut self, id: NodeId, addr: SocketAddr) {
        let info = NodeInfo {
            id,
            addr,
            data_dir: self.root.join(format!("node-{id}")),
            log: self.log_dir.join(format!("{id}.log")),
        };
        self.nodes.insert(id, info);
    }

    /// Flags of node `id`: identity, storage, and a `--peer` for every other known node.
    fn base_args(&self, id: NodeId) -> Vec<String> {
        let info = &self.nodes[&id];
        let mut args = vec![
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            info.addr.to_string(),
            "--data-dir".into(),
            info.data_dir.display().to_string(),
        ];
        for (peer, p) in &self.nodes {
            if *peer != id {
                let addr = self
                    .peer_addrs
                    .get(&(id, *peer))
                    .cloned()
                    .unwrap_or_else(|| p.addr.to_string());
                args.extend(["--peer".into(), format!("{peer}={addr}")]);
            }
        }
        args.extend(self.node_flags.iter().cloned());
        args
    }

    fn launch(&mut self, id: NodeId, args: Vec<String>) -> Result<(), ClusterError> {
        let launch = NodeLaunch {
            id,
            args,
            log: self.nodes[&id].log.clone(),
        };
        self.supervisor.spawn(&launch)?;
        self.launches.insert(id, launch);
        Ok(())
    }

    /// Starts a new, empty node `id` that joins nobody by itself; add it with
    /// `POST /admin/members` on the leader.
    pub fn spawn_new_node(&mut self, id: NodeId) -> Result<SocketAddr, ClusterError> {
        let addr = self.prepare_new_node(id)?;
        self.launch_joining(id)?;
        Ok(addr)
    }

    /// Reserves a port and folders for a new node `id` without starting it.
    pub fn prepare_new_node(&mut self, id: NodeId) -> Result<SocketAddr, ClusterError> {
        let port = pick_ports(None, 1)?[0];
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        self.register(id, addr);
        Ok(addr)
    }

    /// Starts node `id` empty-handed: it bootstraps nothing and waits to be added.
    pub fn launch_joining(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let args = self.base_args(id);
        self.launch(id, args)
    }

    /// Kills node `id` if it runs, deletes its data, and starts it again empty, waiting to be
    /// added back (it will not bootstrap a cluster of its own on later restarts either).
    pub fn wipe(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let info = self
            .nodes
            .get(&id)
            .ok_or(ClusterError::UnknownNode(id))?
            .clone();
        if self.supervisor.pid(id).is_some() {
            self.supervisor.kill(id)?;
        }
        clear_dir(&info.data_dir).map_err(|source| ClusterError::Dir {
            path: info.data_dir.clone(),
            source,
        })?;
        self.launch_joining(id)
    }

    /// Whether node `id` has a live process.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.supervisor.pid(id).is_some()
    }

    /// Restarts a node with the flags it was first started with, on the same data dir.
    pub fn restart(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let launch = self
            .launches
            .get(&id)
            .ok_or(ClusterError::UnknownNode(id))?
            .clone();
        self.supervisor.spawn(&launch)?;
        Ok(())
    }

    /// SIGKILL.
    pub fn kill(&mut self, id: NodeId) -> Result<(), ClusterError> {
        Ok(self.supervisor.kill(id)?)
    }

    /// The process supervisor, for signals the cluster has no method for.
    pub fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.supervisor
    }

    /// Node facts by id.
    pub fn nodes(&self) -> &BTreeMap<NodeId, NodeInfo> {
        &self.nodes
    }

    /// `http://ADDR` of node `id`.
    pub fn url(&self, id: NodeId) -> String {
        format!("http://{}", self.nodes[&id].addr)
    }

    /// Client URLs of all known nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.keys().map(|id| self.url(*id)).collect()
    }

    /// The data root.
    pub fn root(&self) -> &PathBuf {
        &self.root
    }

    /// Whether the data root is a temporary folder.
    pub fn is_temporary(&self) -> bool {
        self._tmp.is_some()
    }

    /// `/status` of node `id`, or `None` when it does not answer within 500 ms.
    pub async fn status(&self, id: NodeId) -> Option<Status> {
        self.admin.status(&self.url(id), STATUS_TIMEOUT).await.ok()
    }

    /// Client URLs of the nodes that run and are not paused: those whose status can be asked.
    pub fn answering_urls(&self) -> Vec<String> {
        self.supervisor
            .running_ids()
            .into_iter()
            .filter(|id| !self.supervisor.is_paused(*id))
            .map(|id| self.url(id))
            .collect()
    }

    /// Fails with the node's log tail if any node process exited.
    pub fn check_alive(&mut self) -> Result<(), ClusterError> {
        if let Some((id, status)) = self.supervisor.reap_exited().into_iter().next() {
            let tail = log_tail(&self.nodes[&id].log, 15);
            return Err(ClusterError::NodeExited {
                id,
                status: status.to_string(),
                tail,
            });
        }
        Ok(())
    }

    /// Waits until a running node reports itself leader and every other answering running node
    /// agrees. Fails early if a node process exits.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> Result<NodeId, ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if let Some(leader) = self.agreed_leader().await {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::NoLeader(timeout));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn agreed_leader(&self) -> Option<NodeId> {
        let statuses = statuses_of(&self.admin, &self.answering_urls()).await;
        agreed_leader(&statuses)
    }

    /// Stops all nodes gracefully (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop(&mut self, grace: Duration) {
        self.supervisor.stop_all(grace).await;
    }
}

/// Deletes everything in `dir` but the folder itself, which may be a mount point (a node's
/// fault-injecting filesystem); a missing folder is fine.
pub fn clear_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// How long one `/status` may take while waiting for a leader.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

/// The `/status` of each of `urls` that answers, asked at once.
pub async fn statuses_of(admin: &AdminClient, urls: &[String]) -> Vec<Status> {
    let mut set = tokio::task::JoinSet::new();
    for url in urls {
        let (admin, url) = (admin.clone(), url.clone());
        set.spawn(async move { admin.status(&url, STATUS_TIMEOUT).await.ok() });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(Some(s)) = joined {
            out.push(s);
        }
    }
    out
}

/// The leader that one node reports itself to be and every answering node agrees on.
pub fn agreed_leader(statuses: &[Status]) -> Option<NodeId> {
    let leader = statuses
        .iter()
        .filter(|s| s.role == Role::Leader)
        .max_by_key(|s| s.term)?
        .id;
    statuses
        .iter()
        .all(|s| s.leader == Some(leader))
        .then_some(leader)
}

/// Ports for `n` nodes: `base..base+n` (checked free), or `n` distinct free ports from the OS.
fn pick_ports(base: Option<u16>, n: usize) -> Result<Vec<u16>, ClusterError> {
    match base {
        Some(base) => (0..n as u16)
            .map(|i| {
                let port = base
                    .checked_add(i)
                    .ok_or(ClusterError::PortInUse(u16::MAX))?;
                TcpListener::bind(("127.0.0.1", port))
                    .map_err(|_| ClusterError::PortInUse(port))?;
                Ok(port)
            })
            .collect(),
        None => free_ports_below_ephemeral(n),
    }
}

/// Writes `secret` to a new file readable by its owner only.
pub(crate) fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())
}

/// A fresh token for one run: 32 hex digits from the OS's random source.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How many of the most recently handed-out ports this process never hands out again.
const RECENT_PORTS: usize = 4096;

/// Ports this process handed out lately, oldest first.
static HANDED_OUT: std::sync::Mutex<std::collections::VecDeque<u16>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// `n` distinct free ports chosen below the kernel's ephemeral range.
///
/// A node's port is chosen here but bound later by the node process. A port the OS handed out
/// for `:0` would be free in between for anyone else's `:0` bind or outgoing connection (a
/// link proxy, a client), which has been seen to take it. Ports below the ephemeral range are
/// never handed out that way. Within this process, a port is not handed out again while it is
/// among the last [`RECENT_PORTS`]: a bind check alone would hand another cluster the port of
/// a node that is starting or is down for a drill, and one of the two would then fail to
/// bind. Only another program choosing ports itself could still collide.
pub(crate) fn free_ports_below_ephemeral(n: usize) -> Result<Vec<u16>, ClusterError> {
    let mut recent = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let lowest_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let top = lowest_ephemeral.clamp(2048, 32768);
    let bottom = top.saturating_sub(12_000).max(1024);
    let span = u64::from(top - bottom);
    // A cheap seed: different for concurrent processes and for successive calls.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 20) ^ 0x9E37_79B9_7F4A_7C15;
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n * 200 {
        if ports.len() == n {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = bottom + (x % span) as u16;
        if ports.contains(&port) || recent.contains(&port) {
            continue;
        }
        // Hold each listener until all are chosen so the ports are distinct and free now.
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            ports.push(port);
        }
    }
    if ports.len() < n {
        let e = std::io::Error::other(format!("no {n} free ports in {bottom}..{top}"));
        return Err(ClusterError::NoPort(e));
    }
    for &port in &ports {
        if recent.len() == RECENT_PORTS {
            recent.pop_front();
        }
        recent.push_back(port);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2,000 ports from a span of 12,000 would repeat many times over if chosen by a bind check
    /// alone (the birthday bound expects over a hundred repeats); none may repeat.
    #[test]
    fn a_port_is_not_handed_out_twice_while_it_is_recent() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            for port in free_ports_below_ephemeral(20).unwrap() {
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }
}
