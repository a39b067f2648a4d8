//! The nodes under test: a store ([`Store`]: what runs) on a placement ([`Placement`]:
//! where it runs). Faults, the poller and the read-back see this one handle; nothing above it
//! asks which store or which placement it has.
//!
//! Every method takes `&self`: the placement locks what it must for quick steps only, so a
//! fault in progress never stalls the poller.
//!
//! # Layout
//! - this file: [`Nodes`]: status, leaders, membership flows, clean shutdown
//! - [`start`]: [`NodesSpec`], starting a store on a placement and waiting for a leader

pub mod start;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use raftdrill_wire::Status;
use target_cluster::typ::NodeId;

pub use start::{NodesError, NodesSpec, Where};

use crate::placement::{Effect, Placement, PlacementError, PlacementKind};
use crate::store::{StartMode, StatusCall, Store, StoreError, TargetKind, agreed_leader};

/// How often to ask while waiting for a leader.
const POLL: Duration = Duration::from_millis(50);

/// The nodes under test.
pub struct Nodes {
    store: Store,
    placement: Placement,
    /// Nodes taken out of the membership on purpose (not restarted at the end).
    removed: Mutex<BTreeSet<NodeId>>,
    /// Nodes being started on files the drill damaged, and their exit once seen: such an exit
    /// is the store refusing its files, which the fault records, not a death on its own.
    probation: Mutex<BTreeMap<NodeId, Option<(String, String)>>>,
    /// Where the logs of nodes on hosts are fetched when they stop.
    log_dir: Option<std::path::PathBuf>,
}

/// A membership flow (wipe, add, remove) failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A placement step failed.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// The store refused the change.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Nodes {
    /// `store` on `placement`.
    pub fn new(store: Store, placement: Placement) -> Self {
        Self {
            store,
            placement,
            removed: Mutex::new(BTreeSet::new()),
            probation: Mutex::new(BTreeMap::new()),
            log_dir: None,
        }
    }

    /// The same nodes, their logs fetched into `dir` when they stop (nodes on hosts; local
    /// nodes write theirs there from the start).
    pub fn with_log_dir(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.log_dir = dir;
        self
    }

    /// What runs.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where it runs.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Which store this is.
    pub fn target(&self) -> TargetKind {
        self.store.kind()
    }

    /// Every known node.
    pub fn ids(&self) -> Vec<NodeId> {
        self.placement.ids()
    }

    /// The client URL of node `id` (empty when unknown).
    pub fn url(&self, id: NodeId) -> String {
        self.placement.site(id).map(|s| s.url()).unwrap_or_default()
    }

    /// Every node's client URL, in id order: the load's endpoints.
    pub fn urls(&self) -> Vec<String> {
        self.ids().into_iter().map(|id| self.url(id)).collect()
    }

    /// Client URLs of every known node, by id.
    pub fn url_map(&self) -> BTreeMap<NodeId, String> {
        self.ids()
            .into_iter()
            .map(|id| (id, self.url(id)))
            .collect()
    }

    /// One status call per node that runs and is not paused, to be awaited with no lock held.
    pub fn status_calls(&self) -> Vec<(NodeId, StatusCall)> {
        let timeout = self.store.poll_timeout();
        self.placement
            .answering()
            .into_iter()
            .map(|id| (id, self.store.status_call(id, self.url(id), timeout)))
            .collect()
    }

    /// The statuses of every node that answers, asked at once.
    pub async fn statuses(&self) -> Vec<Status> {
        let mut set = tokio::task::JoinSet::new();
        for (_, call) in self.status_calls() {
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

    /// Waits until every answering node (of `among`, when given) answers and agrees on one
    /// leader, within `timeout`; `None` after it.
    pub async fn leader_within(
        &self,
        among: Option<&[NodeId]>,
        timeout: Duration,
    ) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let expected: Vec<NodeId> = self
                .placement
                .answering()
                .into_iter()
                .filter(|id| among.is_none_or(|a| a.contains(id)))
                .collect();
            let statuses: Vec<Status> = self
                .statuses()
                .await
                .into_iter()
                .filter(|s| expected.contains(&s.id))
                .collect();
            if statuses.len() == expected.len()
                && let Some(l) = agreed_leader(&statuses)
            {
                return Some(l);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the nodes that answer agree on a leader (a node that does not answer yet
    /// is not waited for), within `timeout`.
    pub async fn answers_agree_within(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(l) = agreed_leader(&self.statuses().await) {
                return Some(l);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits up to `deadline` until every node of `expected` runs, answers, and has applied
    /// what the leader had committed when the wait began; returns one line per node that did
    /// not (empty when all did).
    pub async fn caught_up(&self, expected: &[NodeId], deadline: Duration) -> Vec<String> {
        let end = tokio::time::Instant::now() + deadline;
        let mut target: Option<(NodeId, u64)> = None;
        loop {
            let statuses = self.statuses().await;
            if target.is_none() {
                target = agreed_leader(&statuses).and_then(|l| {
                    let s = statuses.iter().find(|s| s.id == l)?;
                    Some((l, s.committed))
                });
            }
            let behind = self.behind(expected, &statuses, target);
            if behind.is_empty() || tokio::time::Instant::now() >= end {
                return behind;
            }
            tokio::time::sleep(POLL * 4).await;
        }
    }

    /// The nodes of `expected` not up and caught up with `target` (leader, its commit index).
    fn behind(
        &self,
        expected: &[NodeId],
        statuses: &[Status],
        target: Option<(NodeId, u64)>,
    ) -> Vec<String> {
        let Some((leader, committed)) = target else {
            return vec!["no leader was agreed on at the end of the run".into()];
        };
        expected
            .iter()
            .filter_map(|id| {
                if !self.placement.is_running(*id) {
                    return Some(format!("node {id} is not running at the end of the run"));
                }
                let Some(s) = statuses.iter().find(|s| s.id == *id) else {
                    return Some(format!("node {id} does not answer at the end of the run"));
                };
                (s.applied < committed).then(|| {
                    format!(
                        "node {id} did not catch up: it applied {} of the {committed} entries \
                         leader {leader} had committed",
                        s.applied
                    )
                })
            })
            .collect()
    }

    /// The URLs a membership change goes through: `leader` first, then every other node that
    /// answers, leaving out `except`.
    pub fn through(&self, leader: Option<NodeId>, except: Option<NodeId>) -> Vec<String> {
        let mut order: Vec<NodeId> = leader.into_iter().collect();
        order.extend(
            self.placement
                .answering()
                .into_iter()
                .filter(|i| Some(*i) != leader),
        );
        order
            .into_iter()
            .filter(|i| Some(*i) != except)
            .map(|i| self.url(i))
            .collect()
    }

    /// Puts links in `mode` (etcd's attributing proxies get its member ids).
    pub async fn set_links(
        &self,
        links: &[crate::links::Link],
        mode: crate::proxy::LinkMode,
    ) -> Result<Effect, PlacementError> {
        self.placement
            .set_links(links, mode, &self.store.member_ids())
            .await
    }

    /// Puts links back to pass.
    pub async fn restore_links(
        &self,
        links: &[crate::links::Link],
    ) -> Result<Effect, PlacementError> {
        self.placement
            .restore_links(links, &self.store.member_ids())
            .await
    }

    /// Cuts node `id` off (see [`Placement::isolate`]).
    pub async fn isolate(&self, id: NodeId) -> Result<Effect, PlacementError> {
        self.placement.isolate(id, &self.store.member_ids()).await
    }

    /// Undoes [`Nodes::isolate`].
    pub async fn end_isolation(&self, id: NodeId) -> Result<Effect, PlacementError> {
        self.placement
            .end_isolation(id, &self.store.member_ids())
            .await
    }

    /// Replaces node `id` with an empty one of the same number, as a store's runbook replaces a
    /// failed member: kill it, take it out of the membership, delete its data, and bring it
    /// back as a new member (etcd gives it a new member id). Returns when its data was gone.
    pub async fn replace(&self, id: NodeId, leader: Option<NodeId>) -> Result<Effect, FlowError> {
        if self.placement.is_running(id) {
            self.placement.kill(id).await?;
        }
        self.store
            .remove_member(&self.through(leader, Some(id)), id)
            .await?;
        let at = self.placement.erase(id, &self.store).await?;
        self.join(id, leader).await?;
        Ok(at)
    }

    /// Kills node `id`, deletes its data and starts it empty under its old identity, with no
    /// membership change (it learns the cluster's log from the leader).
    pub async fn wipe_in_place(&self, id: NodeId) -> Result<Effect, FlowError> {
        let at = self.placement.erase(id, &self.store).await?;
        self.placement
            .start_as(id, &self.store, StartMode::Join)
            .await?;
        Ok(at)
    }

    /// Makes node `id` (its site ready, its process not running) a member: etcd adds it
    /// first and then starts it with the member list that names it; the reference node starts
    /// first, so that the leader finds it to catch up as a learner before it is promoted.
    pub async fn join(&self, id: NodeId, leader: Option<NodeId>) -> Result<(), FlowError> {
        let site = self
            .placement
            .site(id)
            .ok_or(PlacementError::UnknownNode(id))?;
        let urls = self.through(leader, Some(id));
        if self.store.adds_before_start() {
            self.store.add_member(&urls, &site).await?;
            self.reapply_links();
            self.placement
                .start_as(id, &self.store, StartMode::Join)
                .await?;
        } else {
            self.placement
                .start_as(id, &self.store, StartMode::Join)
                .await?;
            self.store.add_member(&urls, &site).await?;
        }
        Ok(())
    }

    /// Brings a new node `id` into the cluster: a site of its own, its link proxies (the
    /// running nodes told where to dial it), then [`Nodes::join`].
    pub async fn add(&self, id: NodeId, leader: Option<NodeId>) -> Result<(), FlowError> {
        let new_links = self.placement.add_site(id, &self.store).await?;
        for ((from, to), proxy) in new_links {
            if from != id {
                // A node that is down learns the address at its next start.
                self.store.set_peer(&self.url(from), to, proxy).await;
            }
        }
        self.join(id, leader).await
    }

    /// Takes node `id` out of the membership and stops it for good.
    pub async fn remove(
        &self,
        id: NodeId,
        leader: Option<NodeId>,
        grace: Duration,
    ) -> Result<(), FlowError> {
        self.store
            .remove_member(&self.through(leader, Some(id)), id)
            .await?;
        self.mark_removed(id);
        if self.placement.is_running(id) {
            self.placement.stop(id, grace).await?;
        }
        Ok(())
    }

    /// etcd's attributing proxies learn the member ids again (after a member got a new one).
    fn reapply_links(&self) {
        if let Some(l) = self.placement.local() {
            l.links().reapply(&self.store.member_ids());
        }
    }

    /// Marks node `id` as taken out of the membership on purpose.
    pub fn mark_removed(&self, id: NodeId) {
        self.removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
    }

    /// Whether node `id` was taken out of the membership on purpose.
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Puts node `id` on probation: it is about to start on files the drill damaged.
    pub fn start_probation(&self, id: NodeId) {
        self.probation_map().insert(id, None);
    }

    /// Keeps the exit (`status`, the end of its log) of node `id` if it is on probation, and
    /// says whether it was.
    pub fn probation_exit(&self, id: NodeId, status: &str, log_tail: &str) -> bool {
        match self.probation_map().get_mut(&id) {
            Some(exit) => {
                *exit = Some((status.to_string(), log_tail.to_string()));
                true
            }
            None => false,
        }
    }

    /// Whether node `id`, on probation, has exited.
    pub fn probation_exited(&self, id: NodeId) -> bool {
        self.probation_map().get(&id).is_some_and(Option::is_some)
    }

    /// Ends node `id`'s probation; returns its exit, if it exited meanwhile.
    pub fn end_probation(&self, id: NodeId) -> Option<(String, String)> {
        self.probation_map().remove(&id).flatten()
    }

    fn probation_map(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Option<(String, String)>>> {
        self.probation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Which placement the nodes are on.
    pub fn placement_kind(&self) -> PlacementKind {
        self.placement.kind()
    }

    /// Stops every node (SIGTERM, SIGKILL after `grace`), proxy and disk; the logs of nodes
    /// on hosts are fetched first.
    pub async fn shutdown(&self, grace: Duration) {
        self.placement
            .shutdown(grace, self.log_dir.as_deref())
            .await;
    }
}
