//! Nodes as child processes of this machine, on loopback: the one local launcher, whatever
//! the store. It picks each node's ports and folders (a [`Site`]), puts link proxies between
//! the nodes and fault-injecting disks under them when asked, starts each node with its
//! store's launch line, and signals and reaps it through the [`Supervisor`].
//!
//! Every method is quick and synchronous (a fork, a signal, a mode switch), so the owner can
//! keep a `Local` behind a plain mutex; what waits (a graceful stop, proxies starting) is
//! split into steps the owner takes without the lock.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use target_cluster::typ::NodeId;

use super::disks::Disks;
use super::links::LocalLinks;
use super::ports::free_ports_below_ephemeral;
use super::{PlacementError, write_secret};
use crate::store::{PeerStyle, Program, Site, StartMode, Store};
use crate::supervisor::{NodeLaunch, Supervisor, log_tail};

/// How to lay out nodes on this machine.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// Number of initial members, ids `1..=nodes`.
    pub nodes: u64,
    /// Node i listens on `base_port + i - 1` (the reference node only); else free ports.
    pub base_port: Option<u16>,
    /// Root of the node folders and logs; without it, a temporary folder removed when the
    /// placement is dropped.
    pub data_dir: Option<PathBuf>,
    /// Folder for node logs, when it should differ from `<root>/logs`.
    pub log_dir: Option<PathBuf>,
    /// The run's token, written to `<root>/token` (mode 0600) for the nodes to check.
    pub token: Option<String>,
    /// A link proxy on every directed link (or, for etcd, in front of every peer listener).
    pub link_proxies: bool,
    /// The raftdrill binary that serves `raftdrill node` and the fault-injecting disks.
    pub exe: PathBuf,
}

/// The nodes of this machine.
pub struct Local {
    supervisor: Supervisor,
    sites: BTreeMap<NodeId, Site>,
    /// Each node's last launch; a restart repeats it.
    launches: BTreeMap<NodeId, NodeLaunch>,
    links: LocalLinks,
    disks: Option<Disks>,
    /// CPU quotas set on nodes (a limping node), made when the first one is asked for.
    cpu: Option<super::cgroup::CpuLimits>,
    /// The nodes' clocks, for a scenario with clock faults (see [`Local::enable_clocks`]).
    clocks: Option<super::clock::Clocks>,
    root: PathBuf,
    log_dir: PathBuf,
    token_file: Option<PathBuf>,
    initial: Vec<NodeId>,
    exe: PathBuf,
    // Declared last: removed after the nodes are gone.
    _tmp: Option<tempfile::TempDir>,
}

impl Local {
    /// Lays out `opts.nodes` nodes of `store` (folders, ports, link proxies) without starting
    /// any; see [`Local::start_initial`].
    pub async fn prepare(opts: &LocalOptions, store: &Store) -> Result<Self, PlacementError> {
        let mut local = Self::layout(opts, store)?;
        if opts.link_proxies {
            local.links = LocalLinks::build(store.peer_style(), &local.sites)
                .await
                .map_err(PlacementError::Proxy)?;
            local.links.advertise(&mut local.sites);
        }
        Ok(local)
    }

    /// Folders and ports for `opts.nodes` nodes of `store`, wired directly (no proxies).
    pub fn layout(opts: &LocalOptions, store: &Store) -> Result<Self, PlacementError> {
        let (tmp, root) = match &opts.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix(&format!("raftdrill-{}-", temp_prefix(store)))
                    .tempdir()
                    .map_err(|e| PlacementError::dir(&std::env::temp_dir(), e))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let log_dir = opts.log_dir.clone().unwrap_or_else(|| root.join("logs"));
        for dir in [&root, &log_dir] {
            std::fs::create_dir_all(dir).map_err(|e| PlacementError::dir(dir, e))?;
        }
        let token_file = match &opts.token {
            Some(token) => {
                let path = root.join("token");
                write_secret(&path, token).map_err(|e| PlacementError::dir(&path, e))?;
                Some(path)
            }
            None => None,
        };
        let supervisor = match store.program() {
            Program::RaftdrillNode => Supervisor::new(opts.exe.clone()),
            Program::Etcd(bin) => Supervisor::for_program(bin),
        };
        let mut local = Local {
            supervisor,
            sites: BTreeMap::new(),
            launches: BTreeMap::new(),
            links: LocalLinks::Direct(store.peer_style()),
            disks: None,
            cpu: None,
            clocks: None,
            root,
            log_dir,
            token_file,
            initial: (1..=opts.nodes).collect(),
            exe: opts.exe.clone(),
            _tmp: tmp,
        };
        let ports = pick_ports(opts.base_port, opts.nodes as usize * store.ports_per_node())?;
        for (i, id) in local.initial.clone().into_iter().enumerate() {
            let site = local.site(id, store, &ports[i * store.ports_per_node()..]);
            local.sites.insert(id, site);
        }
        Ok(local)
    }

    /// The site of node `id` on `ports` (its client port first, then its peer port).
    fn site(&self, id: NodeId, store: &Store, ports: &[u16]) -> Site {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let client = addr(ports[0]);
        let peer = ports.get(1).map_or(client, |p| addr(*p));
        Site {
            id,
            client,
            peer_listen: peer,
            peer_advertised: peer,
            data_dir: self.root.join(format!("{}-{id}", folder_prefix(store))),
            wal_dir: None,
            log: self.log_dir.join(format!("{id}.log")),
            token_file: self.token_file.clone(),
        }
    }

    /// Mounts a fault-injecting disk over each node's disk folder (`store.disk_dir`): for
    /// etcd, its WAL moves to a folder of its own on that disk first.
    pub async fn mount_disks(&mut self, store: &Store) -> Result<(), PlacementError> {
        let root = Disks::root().map_err(PlacementError::Disk)?;
        if matches!(store, Store::Etcd(_)) {
            let wal_root = root.path().join("etcd-wal");
            for (id, site) in &mut self.sites {
                site.wal_dir = Some(wal_root.join(format!("member-{id}")).join("wal"));
            }
        }
        let data: Vec<(NodeId, PathBuf)> = self
            .sites
            .iter()
            .map(|(id, s)| (*id, store.disk_dir(s)))
            .collect();
        let disks = Disks::mount(&self.exe, root, &data, &self.log_dir)
            .await
            .map_err(PlacementError::Disk)?;
        self.disks = Some(disks);
        Ok(())
    }

    /// Starts every initial member, each knowing all of them.
    pub fn start_initial(&mut self, store: &Store) -> Result<(), PlacementError> {
        let initial = self.initial.clone();
        for id in &initial {
            self.start_as(*id, store, StartMode::Bootstrap(&initial))?;
        }
        Ok(())
    }

    /// The peers node `id` must know of, at the addresses it dials: one per link, or every
    /// member's advertised peer address (itself included) that `members` lists.
    fn peers_of(
        &self,
        id: NodeId,
        style: PeerStyle,
        members: &[NodeId],
    ) -> Vec<(NodeId, SocketAddr)> {
        match style {
            PeerStyle::PerLink => self
                .sites
                .iter()
                .filter(|(p, _)| **p != id)
                .map(|(p, s)| (*p, self.links.addr((id, *p)).unwrap_or(s.client)))
                .collect(),
            PeerStyle::Advertised => members
                .iter()
                .filter_map(|m| Some((*m, self.sites.get(m)?.peer_advertised)))
                .collect(),
        }
    }

    /// Starts node `id` as `mode` with its store's launch line; a later restart repeats it.
    /// A joining etcd member lists the members etcd has now (those with a launch) and itself.
    pub fn start_as(
        &mut self,
        id: NodeId,
        store: &Store,
        mode: StartMode<'_>,
    ) -> Result<(), PlacementError> {
        let site = self.sites.get(&id).ok_or(PlacementError::UnknownNode(id))?;
        let members: Vec<NodeId> = match mode {
            StartMode::Bootstrap(m) => m.to_vec(),
            StartMode::Join => {
                let mut m: Vec<NodeId> = self.launches.keys().copied().collect();
                m.push(id);
                m.sort_unstable();
                m.dedup();
                m
            }
        };
        let peers = self.peers_of(id, store.peer_style(), &members);
        let launch = NodeLaunch {
            id,
            args: store.launch(site, &peers, mode),
            log: site.log.clone(),
            env: self.clocks.as_ref().map(|c| c.env(id)).unwrap_or_default(),
        };
        self.spawn(&launch)?;
        self.launches.insert(id, launch);
        Ok(())
    }

    /// Spawns `launch`, its clock true at the start.
    fn spawn(&mut self, launch: &NodeLaunch) -> Result<(), PlacementError> {
        if let Some(c) = &mut self.clocks {
            c.starting(launch.id)
                .map_err(|e| PlacementError::dir(&self.root, e))?;
        }
        self.supervisor.spawn(launch)?;
        Ok(())
    }

    /// Starts every node later started with libfaketime preloaded, each with a clock a
    /// `clock` fault can change (see `super::clock`).
    pub fn enable_clocks(&mut self) -> Result<(), PlacementError> {
        let library = super::clock::libfaketime().map_err(PlacementError::Unsupported)?;
        self.clocks = Some(super::clock::Clocks::new(library, self.root.clone()));
        Ok(())
    }

    /// Changes node `id`'s clock, or makes it true again with `None`; returns the write to
    /// await (see [`super::clock::NodeClock::change`]).
    pub fn set_clock(
        &mut self,
        id: NodeId,
        change: Option<crate::scenario::ClockChange>,
    ) -> Result<super::clock::Put, String> {
        let clocks = self
            .clocks
            .as_mut()
            .ok_or("the nodes were started without libfaketime")?;
        match clocks.node(id) {
            Some(c) => Ok(c.change(change)),
            // A node that never started has no clock to make true.
            None if change.is_none() => Ok(Box::pin(std::future::ready(Ok(())))),
            None => Err(format!("node {id} has no clock file")),
        }
    }

    /// Starts node `id` again with its last launch, on the same data.
    pub fn restart(&mut self, id: NodeId) -> Result<(), PlacementError> {
        let launch = self
            .launches
            .get(&id)
            .ok_or(PlacementError::UnknownNode(id))?
            .clone();
        self.spawn(&launch)
    }

    /// Reserves ports and folders for a new node `id` (not started).
    pub fn add_site(&mut self, id: NodeId, store: &Store) -> Result<Site, PlacementError> {
        let ports = free_ports_below_ephemeral(store.ports_per_node())?;
        let mut site = self.site(id, store, &ports);
        if let Some(w) = self.sites.values().find_map(|s| s.wal_dir.as_ref()) {
            // Beside the others' WALs (`<root>/member-<i>/wal`).
            let wal_root = w.parent().and_then(Path::parent).map(Path::to_path_buf);
            site.wal_dir = wal_root.map(|r| r.join(format!("member-{id}")).join("wal"));
        }
        self.sites.insert(id, site.clone());
        Ok(site)
    }

    /// Adds link proxies started for a new node; returns the new per-link addresses and a
    /// replaced proxy to shut down.
    pub fn insert_links(
        &mut self,
        started: super::links::Started,
    ) -> (
        Vec<(crate::links::Link, SocketAddr)>,
        Option<crate::etcd::links::MemberProxy>,
    ) {
        self.links.insert(started, &mut self.sites)
    }

    /// Forgets node `id` (it left the cluster): its site and launch; its process must be gone.
    pub fn forget(&mut self, id: NodeId) {
        self.sites.remove(&id);
        self.launches.remove(&id);
    }

    /// SIGKILL and reap node `id`; the proxies in front of it refuse at once after.
    pub fn kill(&mut self, id: NodeId) -> Result<(), PlacementError> {
        self.supervisor.kill(id)?;
        self.links.node_down(id);
        Ok(())
    }

    /// SIGTERM node `id` (SIGCONT first when paused) without waiting: see [`Local::reap`].
    pub fn term(&mut self, id: NodeId) -> Result<(), PlacementError> {
        Ok(self.supervisor.term(id)?)
    }

    /// If node `id` has exited, forgets its process and returns its status.
    pub fn reap(&mut self, id: NodeId) -> Option<ExitStatus> {
        let status = self.supervisor.reap(id)?;
        self.links.node_down(id);
        Some(status)
    }

    /// Holds node `id`'s process to `share` of one core, or lifts its quota with `None`.
    pub fn limit_cpu(&mut self, id: NodeId, share: Option<f64>) -> Result<(), String> {
        match share {
            Some(share) => {
                let pid = self
                    .supervisor
                    .pid(id)
                    .ok_or_else(|| format!("node {id} is not running"))?;
                if self.cpu.is_none() {
                    self.cpu = Some(super::cgroup::CpuLimits::new()?);
                }
                self.cpu.as_mut().expect("made above").limit(id, pid, share)
            }
            None => self.cpu.as_mut().map_or(Ok(()), |c| c.lift(id)),
        }
    }

    /// Whether node `id` is held to a CPU quota.
    pub fn is_limping(&self, id: NodeId) -> bool {
        self.cpu.as_ref().is_some_and(|c| c.is_limited(id))
    }

    /// Lifts every CPU quota.
    pub fn lift_cpu_limits(&mut self) {
        if let Some(c) = &mut self.cpu {
            c.lift_all();
        }
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: NodeId) -> Result<(), PlacementError> {
        Ok(self.supervisor.pause(id)?)
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: NodeId) -> Result<(), PlacementError> {
        Ok(self.supervisor.resume(id)?)
    }

    /// Deletes everything in `paths` (each may be a mount point); the node must be down.
    pub fn erase(&self, paths: &[PathBuf]) -> Result<(), PlacementError> {
        for p in paths {
            clear_dir(p).map_err(|e| PlacementError::dir(p, e))?;
        }
        Ok(())
    }

    /// Nodes whose process exited on its own since the last look (an exit the drill causes is
    /// reaped where it is caused), with their status and the end of their log.
    pub fn reap_exited(&mut self) -> Vec<(NodeId, ExitStatus, String)> {
        let exited = self.supervisor.reap_exited();
        for (id, _) in &exited {
            self.links.node_down(*id);
        }
        exited
            .into_iter()
            .map(|(id, s)| (id, s, self.log_tail(id)))
            .collect()
    }

    /// The last lines of node `id`'s log.
    pub fn log_tail(&self, id: NodeId) -> String {
        self.sites
            .get(&id)
            .map_or(String::new(), |s| log_tail(&s.log, 15))
    }

    /// The supervisor's pid of node `id`, while it runs.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.supervisor.pid(id)
    }

    /// Whether node `id` has a live process.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.supervisor.pid(id).is_some()
    }

    /// Whether node `id` is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.supervisor.is_paused(id)
    }

    /// The nodes with a live process.
    pub fn running_ids(&self) -> Vec<NodeId> {
        self.supervisor.running_ids()
    }

    /// Every node's site.
    pub fn sites(&self) -> &BTreeMap<NodeId, Site> {
        &self.sites
    }

    /// The link proxies.
    pub fn links(&self) -> &LocalLinks {
        &self.links
    }

    /// The link proxies, to change.
    pub fn links_mut(&mut self) -> &mut LocalLinks {
        &mut self.links
    }

    /// The fault-injecting disks, when mounted.
    pub fn disks(&self) -> Option<&Disks> {
        self.disks.as_ref()
    }

    /// The folder that holds the nodes' data.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the root is a temporary folder.
    pub fn is_temporary(&self) -> bool {
        self._tmp.is_some()
    }

    /// Takes everything that must be stopped with awaits (proxies, disks), for a shutdown;
    /// SIGTERMs every node, which [`Local::kill_all`] finishes.
    pub fn begin_shutdown(&mut self) -> (LocalLinks, Option<Disks>) {
        for id in self.supervisor.running_ids() {
            let _ = self.supervisor.term(id);
        }
        let style = self.links.style();
        let links = std::mem::replace(&mut self.links, LocalLinks::Direct(style));
        (links, self.disks.take())
    }

    /// Reaps what has exited; whether every node is gone.
    pub fn all_gone(&mut self) -> bool {
        for id in self.supervisor.running_ids() {
            self.supervisor.reap(id);
        }
        self.supervisor.running_ids().is_empty()
    }

    /// SIGKILL and reap every node.
    pub fn kill_all(&mut self) {
        self.supervisor.kill_all();
    }
}

/// The prefix of a temporary root, as before the launchers were one.
fn temp_prefix(store: &Store) -> &'static str {
    match store {
        Store::Reference(_) => "cluster",
        Store::Etcd(_) => "etcd",
    }
}

/// The prefix of a node's data folder: `node-<id>` or etcd's `member-<id>`.
fn folder_prefix(store: &Store) -> &'static str {
    match store {
        Store::Reference(_) => "node",
        Store::Etcd(_) => "member",
    }
}

/// Ports for `n` listeners: `base..base+n` (checked free), or `n` distinct free ports.
fn pick_ports(base: Option<u16>, n: usize) -> Result<Vec<u16>, PlacementError> {
    match base {
        Some(base) => (0..n as u16)
            .map(|i| {
                let port = base
                    .checked_add(i)
                    .ok_or(PlacementError::PortInUse(u16::MAX))?;
                TcpListener::bind(("127.0.0.1", port))
                    .map_err(|_| PlacementError::PortInUse(port))?;
                Ok(port)
            })
            .collect(),
        None => free_ports_below_ephemeral(n),
    }
}

/// Deletes everything in `dir` but the folder itself, which may be a mount point (a node's
/// fault-injecting filesystem); a missing folder is fine.
pub fn clear_dir(dir: &Path) -> std::io::Result<()> {
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
