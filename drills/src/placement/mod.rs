//! Where a node runs, and the primitives a fault is made of there: start, signal, wait for the
//! exit, delete the data, set a packet rule, switch the disk. Two placements: child processes
//! of this machine ([`local::Local`]) and processes on hosts reached over SSH
//! ([`HostCluster`]). What runs (the reference node or etcd) is the store's business
//! (`crate::store`): a placement asks the store for a node's launch line and data paths.
//!
//! Each primitive returns, where the placement knows it, the moment it took effect (Unix
//! seconds on this machine's clock): a host stamps its own clock after the step, so the SSH
//! call's latency is the tool's, not the store's.
//!
//! # Layout
//! - this file: [`Placement`], [`PlacementKind`], [`PlacementError`]
//! - [`local`]: nodes as child processes on loopback (the one local launcher)
//! - [`links`]: the link proxies between local nodes; [`link_table`]: one proxy per link
//! - [`disks`]: the fault-injecting filesystems under local nodes
//! - [`cgroup`]: CPU quotas that make a node limp
//! - [`ports`]: free ports for nodes that bind them later

pub mod cgroup;
pub mod clock;
pub mod disks;
pub mod files;
pub mod link_table;
pub mod links;
pub mod local;
pub mod ports;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use target_cluster::typ::NodeId;

use crate::hosts::{HostCluster, HostsError};
use crate::links::{Link, touching};
use crate::proxy::{LinkMode, ProxyError};
use crate::scenario::Direction;
use crate::store::{Site, StartMode, Store};
use crate::supervisor::SupervisorError;
use local::Local;

/// Which placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementKind {
    /// Child processes of this machine.
    Local,
    /// Processes on hosts over SSH.
    Hosts,
}

impl PlacementKind {
    /// How a person names it.
    pub fn name(self) -> &'static str {
        match self {
            PlacementKind::Local => "this machine",
            PlacementKind::Hosts => "hosts",
        }
    }
}

/// A placement could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// A requested port is taken.
    #[error("port {0} on 127.0.0.1 is already in use")]
    PortInUse(u16),
    /// No free port.
    #[error("cannot find a free port: {0}")]
    NoPort(std::io::Error),
    /// A folder or file could not be made or removed.
    #[error("cannot use {path}: {source}")]
    Dir {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A node could not be started or signalled.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// A link proxy did not start.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The fault-injecting disks could not be set up or switched.
    #[error("{0}")]
    Disk(String),
    /// A step on the hosts failed.
    #[error(transparent)]
    Hosts(#[from] HostsError),
    /// Unknown node id.
    #[error("there is no node {0}")]
    UnknownNode(NodeId),
    /// This placement cannot do that.
    #[error("{0}")]
    Unsupported(String),
}

impl PlacementError {
    pub(crate) fn dir(path: &Path, source: std::io::Error) -> Self {
        PlacementError::Dir {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where the nodes run.
pub enum Placement {
    /// Child processes of this machine. The lock is held only for quick steps (a fork, a
    /// signal, a mode switch), never across an await.
    Local(Box<Mutex<Local>>),
    /// Processes on hosts.
    Hosts(Arc<HostCluster>),
}

/// How long a pause waits for the node's threads to stop after SIGSTOP (a thread blocked in the
/// kernel, say on a stalled disk, stops only when its call returns).
const STOP_WITHIN: Duration = Duration::from_secs(1);

/// Why packet loss is not made on this machine.
pub const LOSS_LOCALLY: &str = "packet loss is an iptables rule between hosts; here the links \
    are byte streams through proxies, where TCP would hide a lost packet: run it on hosts \
    (`raftdrill testnet up` makes namespace hosts on this machine)";

/// When a step took effect, where the placement knows it (Unix seconds, this machine's clock).
pub type Effect = Option<f64>;

impl Placement {
    /// The local nodes, locked.
    pub fn local(&self) -> Option<MutexGuard<'_, Local>> {
        match self {
            Placement::Local(l) => Some(l.lock().unwrap_or_else(|e| e.into_inner())),
            Placement::Hosts(_) => None,
        }
    }

    /// The hosts, when the nodes run there.
    pub fn hosts(&self) -> Option<&Arc<HostCluster>> {
        match self {
            Placement::Hosts(h) => Some(h),
            Placement::Local(_) => None,
        }
    }

    /// Which placement this is.
    pub fn kind(&self) -> PlacementKind {
        match self {
            Placement::Local(_) => PlacementKind::Local,
            Placement::Hosts(_) => PlacementKind::Hosts,
        }
    }

    /// Every known node.
    pub fn ids(&self) -> Vec<NodeId> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.sites().keys().copied().collect()),
            Placement::Hosts(h) => h.nodes().keys().copied().collect(),
        }
    }

    /// Node `id`'s site.
    pub fn site(&self, id: NodeId) -> Option<Site> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.sites().get(&id).cloned()),
            Placement::Hosts(h) => h.site(id),
        }
    }

    fn local_do<T>(&self, f: impl FnOnce(&mut Local) -> T) -> T {
        let mut l = self.local().expect("a local placement");
        f(&mut l)
    }

    /// SIGKILL node `id` and reap it.
    pub async fn kill(&self, id: NodeId) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.kill(id)).map(|()| None),
            Placement::Hosts(h) => Ok(h.kill(id).await?),
        }
    }

    /// SIGTERM node `id` and wait up to `grace` for its exit, SIGKILL after.
    pub async fn stop(&self, id: NodeId, grace: Duration) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => {
                self.local_do(|l| l.term(id))?;
                let deadline = Instant::now() + grace;
                loop {
                    if self.local_do(|l| l.reap(id)).is_some() {
                        return Ok(None);
                    }
                    if Instant::now() >= deadline {
                        return self.local_do(|l| l.kill(id)).map(|()| None);
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
            Placement::Hosts(h) => Ok(h.stop_node(id, grace).await?),
        }
    }

    /// SIGSTOP node `id`; returns once every thread of it has stopped (see
    /// [`crate::supervisor::all_stopped`]), so that the fault starts when it takes effect.
    pub async fn pause(&self, id: NodeId) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => {
                let pid = self.local_do(|l| l.pause(id).map(|()| l.pid(id)))?;
                if let Some(pid) = pid
                    && !crate::supervisor::wait_stopped(pid, STOP_WITHIN).await
                {
                    tracing::warn!(
                        node = id,
                        "not every thread stopped within {STOP_WITHIN:?} of SIGSTOP"
                    );
                }
                Ok(None)
            }
            Placement::Hosts(h) => Ok(h.pause(id).await?),
        }
    }

    /// SIGCONT node `id`.
    pub async fn resume(&self, id: NodeId) -> Result<(), PlacementError> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.resume(id)),
            Placement::Hosts(h) => Ok(h.resume(id).await?),
        }
    }

    /// Starts node `id` again with its last launch line, on its data.
    pub async fn restart(&self, id: NodeId) -> Result<(), PlacementError> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.restart(id)),
            Placement::Hosts(h) => Ok(h.restart(id).await?),
        }
    }

    /// Starts node `id` as `mode` with `store`'s launch line.
    pub async fn start_as(
        &self,
        id: NodeId,
        store: &Store,
        mode: StartMode<'_>,
    ) -> Result<(), PlacementError> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.start_as(id, store, mode)),
            Placement::Hosts(h) => Ok(h.start_as(id, store, mode).await?),
        }
    }

    /// Deletes node `id`'s data (`store`'s data paths), making sure first that its process is
    /// gone; returns when the data was gone.
    pub async fn erase(&self, id: NodeId, store: &Store) -> Result<Effect, PlacementError> {
        let site = self.site(id).ok_or(PlacementError::UnknownNode(id))?;
        let paths = store.data_paths(&site);
        match self {
            Placement::Local(_) => self.local_do(|l| {
                if l.is_running(id) {
                    l.kill(id)?;
                }
                l.erase(&paths)
            })?,
            Placement::Hosts(h) => return Ok(h.erase(id, &paths).await?),
        }
        Ok(None)
    }

    /// Reserves a site for a new node `id` and starts the link proxies it needs (no lock held
    /// while they start); returns each new link's proxy address, for the running nodes to
    /// learn. Hosts run one node each: a new node has no host of its own.
    pub async fn add_site(
        &self,
        id: NodeId,
        store: &Store,
    ) -> Result<Vec<(Link, std::net::SocketAddr)>, PlacementError> {
        if let Placement::Hosts(_) = self {
            return Err(PlacementError::Unsupported(
                "hosts run one node each: a new node has no host of its own".into(),
            ));
        }
        let (site, others, links) = self.local_do(|l| {
            let site = l.add_site(id, store)?;
            let others = l
                .sites()
                .iter()
                .filter(|(o, _)| **o != id)
                .map(|(o, s)| (*o, s.client))
                .collect();
            Ok::<_, PlacementError>((site, others, l.links().proxied()))
        })?;
        let started = links::LocalLinks::start_for(links, &site, &others).await?;
        let (added, replaced) = self.local_do(|l| l.insert_links(started));
        if let Some(old) = replaced {
            old.shutdown().await;
        }
        Ok(added)
    }

    /// The nodes whose process exited without the drill's doing since the last call: each
    /// once, with how it ended (where this machine can know) and the end of its log.
    pub async fn take_exits(&self) -> Vec<(NodeId, String, String)> {
        match self {
            Placement::Local(_) => self.local_do(|l| {
                l.reap_exited()
                    .into_iter()
                    .map(|(id, status, tail)| (id, status.to_string(), tail))
                    .collect()
            }),
            Placement::Hosts(h) => h
                .exited()
                .await
                .into_iter()
                .map(|(id, tail)| (id, "its process is gone from its host".to_string(), tail))
                .collect(),
        }
    }

    /// Whether node `id` has a live process (as far as this controller knows).
    pub fn is_running(&self, id: NodeId) -> bool {
        match self {
            Placement::Local(_) => self.local_do(|l| l.is_running(id)),
            Placement::Hosts(h) => h.is_running(id),
        }
    }

    /// The pid of node `id`'s process on this machine (none on hosts: their hosts sample
    /// them, see `crate::hosts::cpu`).
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.pid(id)),
            Placement::Hosts(_) => None,
        }
    }

    /// Whether node `id` is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        match self {
            Placement::Local(_) => self.local_do(|l| l.is_paused(id)),
            Placement::Hosts(h) => h.is_paused(id),
        }
    }

    /// The nodes with a live process.
    pub fn running_ids(&self) -> Vec<NodeId> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.running_ids()),
            Placement::Hosts(h) => h.running_ids(),
        }
    }

    /// The nodes that run and are not paused: those that can answer.
    pub fn answering(&self) -> Vec<NodeId> {
        self.running_ids()
            .into_iter()
            .filter(|id| !self.is_paused(*id))
            .collect()
    }

    /// Every link a fault can be put on; an error where there are none to fault.
    pub fn links(&self) -> Result<Vec<Link>, String> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.links().links()),
            Placement::Hosts(h) => Ok(h.links()),
        }
    }

    /// Puts `links` in `mode`: by proxies here; on hosts, a cut by iptables rules, other modes
    /// by tc or the hosts' proxies. `ids` are etcd's member ids (for its attributing proxies).
    pub async fn set_links(
        &self,
        links: &[Link],
        mode: LinkMode,
        ids: &BTreeMap<NodeId, u64>,
    ) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => {
                self.local_do(|l| l.links_mut().set(links, mode, ids));
                Ok(None)
            }
            Placement::Hosts(h) if mode == LinkMode::Blackhole => Ok(h.cut(links).await?),
            Placement::Hosts(h) if mode == LinkMode::Reset => Ok(h
                .filter(links, crate::hosts::cluster::Filter::Reset)
                .await?),
            Placement::Hosts(h) => Ok(h.set_links(links, mode).await?),
        }
    }

    /// Drops each packet of `links` with `probability`, until [`Placement::restore_links`]:
    /// an iptables rule on the receiving host. On this machine the links are byte streams
    /// through proxies, where TCP would hide a lost packet: refused.
    pub async fn lose(&self, links: &[Link], probability: f64) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => Err(PlacementError::Unsupported(LOSS_LOCALLY.into())),
            Placement::Hosts(h) => Ok(h
                .filter(links, crate::hosts::cluster::Filter::Lose(probability))
                .await?),
        }
    }

    /// Puts `links` back to pass.
    pub async fn restore_links(
        &self,
        links: &[Link],
        ids: &BTreeMap<NodeId, u64>,
    ) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => {
                self.local_do(|l| l.links_mut().set(links, LinkMode::Pass, ids));
                Ok(None)
            }
            Placement::Hosts(h) => Ok(h.restore(links).await?),
        }
    }

    /// Cuts node `id` off from its peers both ways; on hosts, from its clients too (its
    /// host drops what comes to its port), since clients there cross the same network.
    pub async fn isolate(
        &self,
        id: NodeId,
        ids: &BTreeMap<NodeId, u64>,
    ) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => {
                let links = self.links_of(id)?;
                self.set_links(&links, LinkMode::Blackhole, ids).await
            }
            Placement::Hosts(h) => Ok(h.isolate(id).await?),
        }
    }

    /// Undoes [`Placement::isolate`].
    pub async fn end_isolation(
        &self,
        id: NodeId,
        ids: &BTreeMap<NodeId, u64>,
    ) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => {
                let links = self.links_of(id)?;
                self.restore_links(&links, ids).await
            }
            Placement::Hosts(h) => Ok(h.end_isolation(id).await?),
        }
    }

    /// Every link to and from node `id`.
    fn links_of(&self, id: NodeId) -> Result<Vec<Link>, PlacementError> {
        let all = self.links().map_err(PlacementError::Unsupported)?;
        Ok(touching(all, &BTreeSet::from([id]), Direction::Both))
    }

    /// Every link back to pass, every rule removed.
    pub async fn heal_links(&self) -> Result<(), PlacementError> {
        match self {
            Placement::Local(_) => {
                self.local_do(|l| l.links_mut().heal_all());
                Ok(())
            }
            Placement::Hosts(h) => Ok(h.heal_links().await?),
        }
    }

    /// Whether every link to and from `id` is cut.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        match self {
            Placement::Local(_) => self.local_do(|l| l.links().is_isolated(id)),
            Placement::Hosts(h) => h.is_isolated(id),
        }
    }

    /// The link faults touching `id`, for the live view (`→2 blackhole`).
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        match self {
            Placement::Local(_) => self.local_do(|l| l.links().faults_of(id)),
            Placement::Hosts(h) => h.faults_of(id),
        }
    }

    /// Holds node `id`'s process to `share` of one core (a limping node), or lifts the quota
    /// with `None`.
    pub async fn limit_cpu(
        &self,
        id: NodeId,
        share: Option<f64>,
    ) -> Result<Effect, PlacementError> {
        match self {
            Placement::Local(_) => self
                .local_do(|l| l.limit_cpu(id, share))
                .map(|()| None)
                .map_err(PlacementError::Unsupported),
            Placement::Hosts(h) => Ok(h.limit_cpu(id, share).await?),
        }
    }

    /// Changes node `id`'s clock (see `clock`), or makes it true again with `None`.
    pub async fn set_clock(
        &self,
        id: NodeId,
        change: Option<crate::scenario::ClockChange>,
    ) -> Result<(), PlacementError> {
        match self {
            Placement::Local(_) => {
                let put = self
                    .local_do(|l| l.set_clock(id, change))
                    .map_err(PlacementError::Unsupported)?;
                put.await.map_err(PlacementError::Unsupported)
            }
            Placement::Hosts(h) => Ok(h.set_clock(id, change).await?),
        }
    }

    /// The control socket of node `id`'s fault-injecting disk.
    pub fn disk(&self, id: NodeId) -> Result<PathBuf, PlacementError> {
        match self {
            Placement::Local(_) => self.local_do(|l| match l.disks() {
                Some(d) => d.control(id).map_err(PlacementError::Disk),
                None => Err(PlacementError::Disk(
                    "this drill mounted no fault-injecting disks".into(),
                )),
            }),
            Placement::Hosts(_) => Err(PlacementError::Unsupported(
                "disk faults need the fault-injecting filesystem, which runs only on this machine"
                    .into(),
            )),
        }
    }

    /// The control sockets of every fault-injecting disk (none on hosts).
    pub fn disks(&self) -> Vec<(NodeId, PathBuf)> {
        match self {
            Placement::Local(_) => {
                self.local_do(|l| l.disks().map(|d| d.controls()).unwrap_or_default())
            }
            Placement::Hosts(_) => Vec::new(),
        }
    }

    /// The folder on this machine that holds the nodes' data (none on hosts).
    pub fn root(&self) -> Option<PathBuf> {
        match self {
            Placement::Local(_) => self.local_do(|l| Some(l.root().to_path_buf())),
            Placement::Hosts(_) => None,
        }
    }

    /// Stops every node (SIGTERM, SIGKILL after `grace`), every proxy and every disk; on
    /// hosts, their logs are fetched into `log_dir` first and their rules removed.
    pub async fn shutdown(&self, grace: Duration, log_dir: Option<&Path>) {
        match self {
            Placement::Local(_) => {
                let (links, disks) = self.local_do(|l| l.begin_shutdown());
                let deadline = Instant::now() + grace;
                while !self.local_do(|l| l.all_gone()) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                self.local_do(|l| {
                    l.kill_all();
                    l.lift_cpu_limits();
                });
                links.shutdown().await;
                // After the nodes: a mount point still in use refuses to detach.
                if let Some(d) = disks {
                    d.stop().await;
                }
            }
            Placement::Hosts(h) => {
                if let Some(dir) = log_dir
                    && let Err(e) = h.fetch_logs(dir).await
                {
                    tracing::warn!(error = %e, "cannot fetch the node logs from the hosts");
                }
                for e in h.stop(grace).await {
                    tracing::warn!(error = %e, "a host was not cleaned; run `raftdrill hosts heal`");
                }
            }
        }
    }
}

/// Writes `secret` to a new file readable by its owner only.
pub(crate) fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
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
