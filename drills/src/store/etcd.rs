//! etcd as a store: the `etcd` binary with one member's flags, its status and member list as
//! the poller's status, and membership changes through the member API. etcd knows its members
//! by 64-bit ids; raftdrill by node numbers, so the store keeps the map between them (members
//! are named `m<id>`, see [`member_name`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use target_cluster::typ::NodeId;

use super::{Site, StartMode, StatusCall, StoreError, through_cluster};
use crate::etcd::api::{EtcdApi, Member};
use crate::etcd::launch::{ClusterState, EtcdOptions, MemberInfo, member_args, member_name};
use crate::etcd::status::{IdMap, to_status};

/// How long one status call of the poller may take (a status and a member list).
pub const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one membership call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a membership change may keep being retried (elections, a busy machine).
const MEMBERSHIP_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between rounds of a membership change that was refused.
const MEMBERSHIP_PAUSE: Duration = Duration::from_millis(200);

/// etcd's side of a run.
#[derive(Clone)]
pub struct Etcd {
    binary: PathBuf,
    opts: EtcdOptions,
    /// `--initial-cluster-token`, unique per cluster so that concurrent clusters never merge.
    token: String,
    api: EtcdApi,
    /// Node number ↔ etcd member id, as last learned.
    ids: Arc<Mutex<IdMap>>,
}

impl Etcd {
    /// etcd from `binary` with `opts`' timings and flags, in the cluster named `token`.
    pub fn new(binary: PathBuf, opts: EtcdOptions, token: String) -> Self {
        Self {
            binary,
            opts,
            token,
            api: EtcdApi::new(),
            ids: Arc::new(Mutex::new(IdMap::default())),
        }
    }

    /// The binary on this machine (on hosts, `etcd` from their `PATH` runs instead).
    pub fn binary(&self) -> PathBuf {
        self.binary.clone()
    }

    fn id_map(&self) -> std::sync::MutexGuard<'_, IdMap> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node number → etcd member id, as last learned.
    pub fn ids(&self) -> BTreeMap<NodeId, u64> {
        self.id_map().by_node().clone()
    }

    /// The etcd member id of node `id`, as last learned.
    pub fn member_id(&self, id: NodeId) -> Option<u64> {
        self.id_map().member(id)
    }

    /// The flags of member `site`: `peers` are the members it lists in `--initial-cluster`,
    /// at their advertised peer addresses, itself included.
    pub fn launch(
        &self,
        site: &Site,
        peers: &[(NodeId, SocketAddr)],
        mode: StartMode<'_>,
    ) -> Vec<String> {
        let initial: Vec<String> = peers
            .iter()
            .map(|(id, addr)| format!("{}=http://{addr}", member_name(*id)))
            .collect();
        let state = match mode {
            StartMode::Bootstrap(_) => ClusterState::New,
            StartMode::Join => ClusterState::Existing,
        };
        member_args(
            &member_info(site),
            &initial.join(","),
            state,
            &self.token,
            &self.opts,
        )
    }

    /// The status and member list at `url` as node `id`'s status; learns member ids from
    /// the members' names on the way.
    pub fn status_call(&self, id: NodeId, url: String, timeout: Duration) -> StatusCall {
        let this = self.clone();
        Box::pin(async move {
            let (status, members) = tokio::join!(
                this.api.status(&url, timeout),
                this.api.members(&url, timeout)
            );
            let members = members.ok()?;
            let ids = this.learn(&members);
            Some(to_status(id, &status.ok()?, &members, &ids))
        })
    }

    /// Records the member id of every named member in `members`; returns the whole map.
    fn learn(&self, members: &[Member]) -> IdMap {
        let mut ids = self.id_map();
        for m in members {
            let node = m
                .name
                .strip_prefix('m')
                .and_then(|n| n.parse::<NodeId>().ok());
            if let Some(node) = node
                && member_name(node) == m.name
            {
                ids.insert(node, m.id);
            }
        }
        ids.clone()
    }

    /// Learns the member ids from the member list of the first of `urls` that answers.
    pub async fn learn_ids(&self, urls: &[String]) {
        for url in urls {
            if let Ok(list) = self.api.members(url, POLL_TIMEOUT).await {
                self.learn(&list);
                return;
            }
        }
    }

    /// Adds `site` through the member API (it gets a new member id) before it starts.
    pub async fn add_member(&self, urls: &[String], site: &Site) -> Result<(), StoreError> {
        let peer_urls = vec![format!("http://{}", site.peer_advertised)];
        let peer_urls = &peer_urls;
        let added = through_cluster(urls, MEMBERSHIP_DEADLINE, MEMBERSHIP_PAUSE, |url| {
            let api = self.api.clone();
            async move { api.add_member(&url, peer_urls, CALL_TIMEOUT).await }
        })
        .await?;
        self.id_map().insert(site.id, added.id);
        Ok(())
    }

    /// Removes node `id`'s member through the member API and forgets its id.
    pub async fn remove_member(&self, urls: &[String], id: NodeId) -> Result<(), StoreError> {
        self.learn_ids(urls).await;
        let member = self
            .member_id(id)
            .ok_or_else(|| StoreError::Refused(format!("etcd lists no member for node {id}")))?;
        through_cluster(urls, MEMBERSHIP_DEADLINE, MEMBERSHIP_PAUSE, |url| {
            let api = self.api.clone();
            async move { api.remove_member(&url, member, CALL_TIMEOUT).await }
        })
        .await?;
        self.id_map().remove(id);
        Ok(())
    }
}

/// The member facts etcd's flags are made from.
fn member_info(site: &Site) -> MemberInfo {
    MemberInfo {
        id: site.id,
        name: member_name(site.id),
        client: site.client,
        peer_listen: site.peer_listen,
        peer_advertised: site.peer_advertised,
        data_dir: site.data_dir.clone(),
        wal_dir: site.wal_dir.clone(),
        log: site.log.clone(),
    }
}
