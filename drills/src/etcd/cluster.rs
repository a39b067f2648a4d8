//! [`LocalEtcd`]: N etcd members on loopback as child processes, with an attributing link
//! proxy in front of each peer listener, and the operations a drill performs on them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raftdrill_wire::Status;
use target_cluster::typ::NodeId;

use super::EtcdError;
use super::api::{EtcdApi, EtcdApiError, Member};
use super::launch::{ClusterState, EtcdOptions, MemberInfo, find_etcd, member_args, member_name};
use super::links::{EtcdLinks, Link};
use super::status::{IdMap, to_status};
use crate::local_cluster::{agreed_leader, free_ports_below_ephemeral};
use crate::proxy::LinkMode;
use crate::scenario::Direction;
use crate::supervisor::{NodeLaunch, Supervisor, log_tail};

/// How long one status or member-list call may take.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a membership change may keep being retried (elections, a busy machine).
const MEMBERSHIP_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between polls while waiting for a condition.
const POLL: Duration = Duration::from_millis(50);

/// A running local etcd cluster. Dropping it kills every member and stops every proxy.
pub struct LocalEtcd {
    supervisor: Supervisor,
    members: BTreeMap<NodeId, MemberInfo>,
    /// Flags of each member's current incarnation; a restart reuses them.
    launches: BTreeMap<NodeId, NodeLaunch>,
    ids: IdMap,
    links: EtcdLinks,
    api: EtcdApi,
    opts: EtcdOptions,
    /// `--initial-cluster-token`, unique per cluster so concurrent clusters never merge.
    token: String,
    root: PathBuf,
    log_dir: PathBuf,
    // Declared last: removed after the members are gone.
    _tmp: Option<tempfile::TempDir>,
}

impl LocalEtcd {
    /// Starts `opts.members` members (a missing binary is [`EtcdError::MissingBinary`]) and
    /// returns without waiting for a leader; see [`LocalEtcd::wait_for_leader`].
    pub async fn start(opts: &EtcdOptions) -> Result<Self, EtcdError> {
        let binary = find_etcd(opts.binary.as_deref())?;
        let (tmp, root) = match &opts.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("raftdrill-etcd-")
                    .tempdir()
                    .map_err(|source| EtcdError::Dir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let log_dir = opts.log_dir.clone().unwrap_or_else(|| root.join("logs"));
        for dir in [&root, &log_dir] {
            std::fs::create_dir_all(dir).map_err(|source| EtcdError::Dir {
                path: dir.clone(),
                source,
            })?;
        }
        let token = format!(
            "raftdrill-{}-{}",
            std::process::id(),
            root.file_name().map_or("x".into(), |n| n.to_string_lossy())
        );
        let mut cluster = Self {
            supervisor: Supervisor::for_program(binary),
            members: BTreeMap::new(),
            launches: BTreeMap::new(),
            ids: IdMap::default(),
            links: EtcdLinks::default(),
            api: EtcdApi::new(),
            opts: opts.clone(),
            token,
            root,
            log_dir,
            _tmp: tmp,
        };
        for id in 1..=opts.members {
            cluster.prepare_member(id).await?;
        }
        let initial = cluster.initial_cluster(cluster.members.keys().copied());
        for id in 1..=opts.members {
            cluster.launch(id, &initial, ClusterState::New)?;
        }
        Ok(cluster)
    }

    /// Picks ports and folders for node `id` and starts its proxy.
    async fn prepare_member(&mut self, id: NodeId) -> Result<&MemberInfo, EtcdError> {
        let ports = free_ports_below_ephemeral(2).map_err(|e| EtcdError::NoPort(e.to_string()))?;
        let client = SocketAddr::from(([127, 0, 0, 1], ports[0]));
        let peer_listen = SocketAddr::from(([127, 0, 0, 1], ports[1]));
        let peer_advertised = self.links.add_member(id, peer_listen).await?;
        let info = MemberInfo {
            id,
            name: member_name(id),
            client,
            peer_listen,
            peer_advertised,
            data_dir: self.root.join(format!("member-{id}")),
            wal_dir: self
                .opts
                .wal_root
                .as_ref()
                .map(|w| w.join(format!("member-{id}")).join("wal")),
            log: self.log_dir.join(format!("{id}.log")),
        };
        self.members.insert(id, info);
        Ok(&self.members[&id])
    }

    /// `name=peer-url,...` of `ids`.
    fn initial_cluster(&self, ids: impl Iterator<Item = NodeId>) -> String {
        ids.filter_map(|id| self.members.get(&id))
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn launch(&mut self, id: NodeId, initial: &str, state: ClusterState) -> Result<(), EtcdError> {
        let info = self.members.get(&id).ok_or(EtcdError::UnknownNode(id))?;
        let launch = NodeLaunch {
            id,
            args: member_args(info, initial, state, &self.token, &self.opts),
            log: info.log.clone(),
        };
        self.supervisor.spawn(&launch)?;
        self.launches.insert(id, launch);
        Ok(())
    }

    /// SIGKILL.
    pub fn kill(&mut self, id: NodeId) -> Result<(), EtcdError> {
        Ok(self.supervisor.kill(id)?)
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`.
    pub async fn stop(&mut self, id: NodeId, grace: Duration) -> Result<(), EtcdError> {
        self.supervisor.terminate(id, grace).await?;
        Ok(())
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: NodeId) -> Result<(), EtcdError> {
        Ok(self.supervisor.pause(id)?)
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: NodeId) -> Result<(), EtcdError> {
        Ok(self.supervisor.resume(id)?)
    }

    /// Starts a stopped member again on the same data dir with the flags it last had.
    pub fn restart(&mut self, id: NodeId) -> Result<(), EtcdError> {
        if self.is_running(id) {
            return Err(EtcdError::AlreadyRunning(id));
        }
        let launch = self
            .launches
            .get(&id)
            .ok_or(EtcdError::UnknownNode(id))?
            .clone();
        self.supervisor.spawn(&launch)?;
        Ok(())
    }

    /// Replaces node `id` with an empty member, as etcd's runbook replaces a failed one: kill
    /// it, remove it through the member API, delete its data dir, add it back (a new member id)
    /// and start it with `--initial-cluster-state existing`. Its links keep their modes.
    pub async fn wipe(&mut self, id: NodeId) -> Result<(), EtcdError> {
        if !self.members.contains_key(&id) {
            return Err(EtcdError::UnknownNode(id));
        }
        if self.supervisor.pid(id).is_some() {
            self.supervisor.kill(id)?;
        }
        self.learn_ids().await;
        if let Some(old) = self.ids.member(id) {
            self.membership(|api, url| async move {
                api.remove_member(&url, old, STATUS_TIMEOUT * 4).await
            })
            .await?;
        }
        self.ids.remove(id);
        let m = &self.members[&id];
        // The WAL's folder may be a mount point (a fault-injecting filesystem): empty it.
        let wal_home = m
            .wal_dir
            .as_ref()
            .and_then(|w| w.parent())
            .map(Path::to_path_buf);
        for dir in std::iter::once(m.data_dir.clone()).chain(wal_home) {
            crate::local_cluster::clear_dir(&dir)
                .map_err(|source| EtcdError::Dir { path: dir, source })?;
        }
        self.join(id).await
    }

    /// Adds a new, empty member (the next node number) and starts it; returns its number.
    pub async fn add_member(&mut self) -> Result<NodeId, EtcdError> {
        let id = self.members.keys().max().map_or(1, |m| m + 1);
        self.prepare_member(id).await?;
        self.learn_ids().await;
        self.join(id).await?;
        Ok(id)
    }

    /// Adds node `id` (prepared, not running, not a member) through the member API and starts
    /// it to join the running cluster.
    async fn join(&mut self, id: NodeId) -> Result<(), EtcdError> {
        let peer_urls = vec![self.members[&id].peer_url()];
        let added = self
            .membership(|api, url| {
                let peer_urls = peer_urls.clone();
                async move { api.add_member(&url, &peer_urls, STATUS_TIMEOUT * 4).await }
            })
            .await?;
        self.ids.insert(id, added.id);
        self.links.reapply(self.ids.by_node());
        // The joining member must list every current member, itself included.
        let current: Vec<NodeId> = self.ids.by_node().keys().copied().collect();
        let initial = self.initial_cluster(current.into_iter());
        self.launch(id, &initial, ClusterState::Existing)
    }

    /// Removes node `id` from the cluster through the member API, then stops its process (a
    /// removed member exits on its own; the kill makes sure) and its proxy.
    pub async fn remove_member(&mut self, id: NodeId) -> Result<(), EtcdError> {
        if !self.members.contains_key(&id) {
            return Err(EtcdError::UnknownNode(id));
        }
        self.learn_ids().await;
        let member = self.ids.member(id).ok_or(EtcdError::UnknownNode(id))?;
        let others = self.answering_except(id);
        self.membership_via(&others, |api, url| async move {
            api.remove_member(&url, member, STATUS_TIMEOUT * 4).await
        })
        .await?;
        if self.supervisor.pid(id).is_some() {
            self.supervisor.kill(id)?;
        }
        self.ids.remove(id);
        self.members.remove(&id);
        self.launches.remove(&id);
        self.links.remove_member(id).await;
        Ok(())
    }

    /// Runs a membership call on the running members in turn until one succeeds or
    /// [`MEMBERSHIP_DEADLINE`] passes (a member may be electing, or refuse while the cluster
    /// is unhealthy).
    async fn membership<T, F, Fut>(&self, call: F) -> Result<T, EtcdError>
    where
        F: Fn(EtcdApi, String) -> Fut,
        Fut: Future<Output = Result<T, EtcdApiError>>,
    {
        let urls = self.answering_urls();
        self.membership_via(&urls, call).await
    }

    async fn membership_via<T, F, Fut>(&self, urls: &[String], call: F) -> Result<T, EtcdError>
    where
        F: Fn(EtcdApi, String) -> Fut,
        Fut: Future<Output = Result<T, EtcdApiError>>,
    {
        let deadline = Instant::now() + MEMBERSHIP_DEADLINE;
        let mut last = None;
        loop {
            for url in urls {
                match call(self.api.clone(), url.clone()).await {
                    Ok(r) => return Ok(r),
                    Err(e) => {
                        tracing::debug!(error = %e, "membership change refused; trying again");
                        last = Some(e);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(match last {
                    Some(e) => EtcdError::Api(e),
                    None => EtcdError::NoMemberRunning,
                });
            }
            tokio::time::sleep(POLL * 4).await;
        }
    }

    /// Learns the member id of every node from the member list of any answering member,
    /// matching members by their advertised peer URL.
    pub async fn learn_ids(&mut self) {
        for url in self.answering_urls() {
            if let Ok(list) = self.api.members(&url, STATUS_TIMEOUT).await {
                self.record_members(&list);
                return;
            }
        }
    }

    fn record_members(&mut self, list: &[Member]) {
        let before = self.ids.clone();
        for m in list {
            let node = self
                .members
                .values()
                .find(|info| m.peer_urls.contains(&info.peer_url()));
            if let Some(info) = node {
                self.ids.insert(info.id, m.id);
            }
        }
        if self.ids != before {
            self.links.reapply(self.ids.by_node());
        }
    }

    /// The status of node `id` for the poller, or `None` when it does not answer in time.
    pub async fn status(&self, id: NodeId) -> Option<Status> {
        self.status_call(id)?.await
    }

    /// A status call that owns what it needs, so several can run as tasks at once (and none
    /// holds a lock on the cluster while it waits).
    pub fn status_call(&self, id: NodeId) -> Option<impl Future<Output = Option<Status>> + use<>> {
        let url = self.members.get(&id)?.client_url();
        let (api, ids) = (self.api.clone(), self.ids.clone());
        Some(async move {
            let (status, members) = tokio::join!(
                api.status(&url, STATUS_TIMEOUT),
                api.members(&url, STATUS_TIMEOUT)
            );
            Some(to_status(id, &status.ok()?, &members.ok()?, &ids))
        })
    }

    /// Statuses of `ids` that answer, asked at once, in node order.
    pub async fn statuses_of(&self, ids: &[NodeId]) -> Vec<Status> {
        let mut set = tokio::task::JoinSet::new();
        for call in ids.iter().filter_map(|id| self.status_call(*id)) {
            set.spawn(call);
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok(Some(s)) = joined {
                out.push(s);
            }
        }
        out.sort_by_key(|s| s.id);
        out
    }

    /// Waits until a running, unpaused member reports itself leader and every other such
    /// member agrees; learns the member ids on the way. Fails early if a member exits.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> Result<NodeId, EtcdError> {
        self.wait_for_leader_among(None, timeout).await
    }

    /// As [`LocalEtcd::wait_for_leader`], among `among` only (say, the majority side of a
    /// partition) when given.
    pub async fn wait_for_leader_among(
        &mut self,
        among: Option<&[NodeId]>,
        timeout: Duration,
    ) -> Result<NodeId, EtcdError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            self.learn_ids().await;
            let ids: Vec<NodeId> = self
                .answering()
                .into_iter()
                .filter(|id| among.is_none_or(|a| a.contains(id)))
                .collect();
            let statuses = self.statuses_of(&ids).await;
            let expected = among.map_or(ids.len(), <[NodeId]>::len);
            if statuses.len() == expected
                && let Some(leader) = agreed_leader(&statuses)
            {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(EtcdError::NoLeader(timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails with the member's log tail if a member process exited.
    pub fn check_alive(&mut self) -> Result<(), EtcdError> {
        if let Some((id, status)) = self.supervisor.reap_exited().into_iter().next() {
            let tail = self
                .members
                .get(&id)
                .map_or(String::new(), |m| log_tail(&m.log, 15));
            return Err(EtcdError::MemberExited {
                id,
                status: status.to_string(),
                tail,
            });
        }
        Ok(())
    }

    /// Sets `mode` on each of `links` (the Raft messages `from` sends to `to`).
    pub fn set_links(&mut self, links: &[Link], mode: LinkMode) {
        let ids = self.ids.by_node().clone();
        self.links.set(links, mode, &ids);
    }

    /// Blackholes every link to and from `id`.
    pub fn isolate(&mut self, id: NodeId) {
        let links = self
            .links
            .touching(&std::collections::BTreeSet::from([id]), Direction::Both);
        self.set_links(&links, LinkMode::Blackhole);
    }

    /// Every link back to pass.
    pub fn heal_links(&mut self) {
        self.links.heal_all();
    }

    /// The link table, to read modes and counters.
    pub fn links(&self) -> &EtcdLinks {
        &self.links
    }

    /// Nodes with a live, unpaused process: those whose status can be asked.
    pub fn answering(&self) -> Vec<NodeId> {
        self.supervisor
            .running_ids()
            .into_iter()
            .filter(|id| !self.supervisor.is_paused(*id))
            .collect()
    }

    fn answering_urls(&self) -> Vec<String> {
        self.answering()
            .into_iter()
            .filter_map(|id| self.members.get(&id).map(MemberInfo::client_url))
            .collect()
    }

    fn answering_except(&self, id: NodeId) -> Vec<String> {
        self.answering()
            .into_iter()
            .filter(|n| *n != id)
            .filter_map(|n| self.members.get(&n).map(MemberInfo::client_url))
            .collect()
    }

    /// Whether node `id` has a live process.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.supervisor.pid(id).is_some()
    }

    /// The process supervisor, for pids and signals.
    pub fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.supervisor
    }

    /// Facts of every member.
    pub fn members(&self) -> &BTreeMap<NodeId, MemberInfo> {
        &self.members
    }

    /// Client URL of node `id` (`http://127.0.0.1:PORT`).
    pub fn client_url(&self, id: NodeId) -> Option<String> {
        self.members.get(&id).map(MemberInfo::client_url)
    }

    /// Client URLs of every member, in node order: the endpoints of
    /// `loadgen::etcd::EtcdCluster`.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.values().map(MemberInfo::client_url).collect()
    }

    /// The etcd member id of node `id`, as last learned.
    pub fn member_id(&self, id: NodeId) -> Option<u64> {
        self.ids.member(id)
    }

    /// The data root.
    pub fn root(&self) -> &PathBuf {
        &self.root
    }

    /// Stops every member (SIGTERM, SIGKILL after `grace`) and every proxy.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop_all(grace).await;
    }

    /// [`LocalEtcd::shutdown`] through a reference, for an owner that keeps the value.
    pub async fn stop_all(&mut self, grace: Duration) {
        self.supervisor.stop_all(grace).await;
        let links = std::mem::take(&mut self.links);
        links.shutdown().await;
    }
}
