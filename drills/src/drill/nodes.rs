//! The nodes of a drill, whichever store they run: reference nodes behind one link proxy per
//! directed pair, etcd members behind their attributing peer proxies, or reference nodes on
//! hosts over SSH (links cut by iptables). The fault executor, the poller and the read-back see
//! one interface; what a store cannot do is an error value. Steps on hosts are SSH calls, so
//! they are taken with the cluster handle ([`Nodes::hosts`]) outside the lock on the nodes.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use loadgen::target::TargetKind;
use raftdrill_wire::Status;
use target_cluster::typ::NodeId;

use super::links::{Link, LinkTable};
use crate::admin::AdminClient;
use crate::etcd::LocalEtcd;
use crate::hosts::HostCluster;
use crate::local_cluster::LocalCluster;
use crate::proxy::LinkMode;
use crate::scenario::Direction;
use crate::supervisor::Supervisor;

/// How long one status call may take: a paused node must not stall the poller.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(120);

/// A status call that owns what it needs, to run without any lock held.
pub type StatusCall = Pin<Box<dyn Future<Output = Option<Status>> + Send>>;

/// The reference cluster and its link proxies (none when wired directly).
pub struct ReferenceNodes {
    /// The node processes.
    pub cluster: LocalCluster,
    /// One proxy per directed link, or `None` with `--direct-links`.
    pub links: Option<LinkTable>,
}

/// The nodes under test.
pub enum Nodes {
    /// raftdrill's reference cluster.
    Reference(ReferenceNodes),
    /// etcd members.
    Etcd(LocalEtcd),
    /// Reference nodes on hosts over SSH.
    Hosts(HostNodes),
}

/// Reference nodes on hosts.
pub struct HostNodes {
    /// The cluster, shared so that SSH steps run without the lock on the nodes.
    pub cluster: Arc<HostCluster>,
    /// Where the nodes' logs are fetched at the end (the run's `nodes/`).
    pub log_dir: PathBuf,
}

const ON_HOSTS: &str = "on hosts this step goes through the hosts cluster";

impl Nodes {
    /// Which store this is.
    pub fn target(&self) -> TargetKind {
        match self {
            Nodes::Reference(_) => TargetKind::Reference,
            Nodes::Etcd(_) => TargetKind::Etcd,
            Nodes::Hosts(h) if h.cluster.store().is_etcd() => TargetKind::Etcd,
            Nodes::Hosts(_) => TargetKind::Reference,
        }
    }

    /// Every known node.
    pub fn ids(&self) -> Vec<NodeId> {
        match self {
            Nodes::Reference(r) => r.cluster.nodes().keys().copied().collect(),
            Nodes::Etcd(e) => e.members().keys().copied().collect(),
            Nodes::Hosts(h) => h.cluster.nodes().keys().copied().collect(),
        }
    }

    /// The hosts cluster, when the nodes run on hosts.
    pub fn hosts(&self) -> Option<Arc<HostCluster>> {
        match self {
            Nodes::Hosts(h) => Some(h.cluster.clone()),
            _ => None,
        }
    }

    /// The client URL of node `id`.
    pub fn client_url(&self, id: NodeId) -> String {
        match self {
            Nodes::Reference(r) => r.cluster.url(id),
            Nodes::Etcd(e) => e.client_url(id).unwrap_or_default(),
            Nodes::Hosts(h) => h.cluster.url(id),
        }
    }

    /// Every node's client URL, in id order: the load's endpoints.
    pub fn client_urls(&self) -> Vec<String> {
        match self {
            Nodes::Reference(r) => r.cluster.urls(),
            Nodes::Etcd(e) => e.client_urls(),
            Nodes::Hosts(h) => h.cluster.urls(),
        }
    }

    /// The process supervisor of nodes on this machine: pids, signals, reaping.
    pub fn supervisor(&mut self) -> Result<&mut Supervisor, String> {
        match self {
            Nodes::Reference(r) => Ok(r.cluster.supervisor()),
            Nodes::Etcd(e) => Ok(e.supervisor()),
            Nodes::Hosts(_) => Err(ON_HOSTS.into()),
        }
    }

    /// The pid of node `id` on this machine (none on hosts: their hosts sample them, see
    /// [`crate::hosts::cpu`]).
    pub fn pid(&mut self, id: NodeId) -> Option<u32> {
        self.supervisor().ok()?.pid(id)
    }

    /// Whether node `id` is paused.
    pub fn is_paused(&mut self, id: NodeId) -> bool {
        match self {
            Nodes::Hosts(h) => h.cluster.is_paused(id),
            _ => self.supervisor().is_ok_and(|s| s.is_paused(id)),
        }
    }

    /// The nodes that run.
    pub fn running_ids(&mut self) -> Vec<NodeId> {
        match self {
            Nodes::Hosts(h) => h.cluster.running_ids(),
            _ => self
                .supervisor()
                .map(|s| s.running_ids())
                .unwrap_or_default(),
        }
    }

    /// The folder on this machine that holds the nodes' data (none on hosts).
    pub fn root(&self) -> Option<PathBuf> {
        match self {
            Nodes::Reference(r) => Some(r.cluster.root().clone()),
            Nodes::Etcd(e) => Some(e.root().clone()),
            Nodes::Hosts(_) => None,
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self, id: NodeId) -> Result<(), String> {
        match self {
            Nodes::Reference(r) => r.cluster.kill(id).map_err(|e| e.to_string()),
            Nodes::Etcd(e) => e.kill(id).map_err(|e| e.to_string()),
            Nodes::Hosts(_) => Err(ON_HOSTS.into()),
        }
    }

    /// Starts a node that is down again on its data dir.
    pub fn restart(&mut self, id: NodeId) -> Result<(), String> {
        match self {
            Nodes::Reference(r) => r.cluster.restart(id).map_err(|e| e.to_string()),
            Nodes::Etcd(e) => e.restart(id).map_err(|e| e.to_string()),
            Nodes::Hosts(_) => Err(ON_HOSTS.into()),
        }
    }

    /// Whether node `id` has a live process.
    pub fn is_running(&self, id: NodeId) -> bool {
        match self {
            Nodes::Reference(r) => r.cluster.is_running(id),
            Nodes::Etcd(e) => e.is_running(id),
            Nodes::Hosts(h) => h.cluster.is_running(id),
        }
    }

    /// Kill, delete the data, start again empty with the same id and no membership change.
    pub fn wipe_in_place(&mut self, id: NodeId) -> Result<(), String> {
        match self {
            Nodes::Reference(r) => r.cluster.wipe(id).map_err(|e| e.to_string()),
            Nodes::Etcd(_) => {
                Err("etcd cannot restart a member empty under its old identity".into())
            }
            Nodes::Hosts(_) => Err(ON_HOSTS.into()),
        }
    }

    /// One status call per node that runs and is not paused, to be awaited without the lock.
    pub fn status_calls(&mut self, admin: &AdminClient) -> Vec<(NodeId, StatusCall)> {
        let answering: Vec<NodeId> = self
            .running_ids()
            .into_iter()
            .filter(|id| !self.is_paused(*id))
            .collect();
        answering
            .into_iter()
            .filter_map(|id| {
                let call: Option<StatusCall> = match self {
                    Nodes::Reference(r) => {
                        let (admin, url) = (admin.clone(), r.cluster.url(id));
                        Some(Box::pin(async move {
                            admin.status(&url, STATUS_TIMEOUT).await.ok()
                        }))
                    }
                    Nodes::Etcd(e) => e.status_call(id).map(|c| Box::pin(c) as StatusCall),
                    Nodes::Hosts(h) => Some(h.cluster.status_call(id, STATUS_TIMEOUT)),
                };
                call.map(|c| (id, c))
            })
            .collect()
    }

    /// The links of `nodes` in `direction`; an error when there are no proxies.
    pub fn touching(&self, nodes: &BTreeSet<NodeId>, dir: Direction) -> Result<Vec<Link>, String> {
        match self {
            Nodes::Reference(ReferenceNodes { links: Some(t), .. }) => Ok(t.touching(nodes, dir)),
            Nodes::Reference(_) => Err(NO_PROXIES.into()),
            Nodes::Etcd(e) => Ok(e.links().touching(nodes, dir)),
            Nodes::Hosts(h) => Ok(super::links::touching(h.cluster.links(), nodes, dir)),
        }
    }

    /// The links between different `groups`; an error when there are no proxies.
    pub fn crossing(&self, groups: &[BTreeSet<NodeId>]) -> Result<Vec<Link>, String> {
        match self {
            Nodes::Reference(ReferenceNodes { links: Some(t), .. }) => Ok(t.crossing(groups)),
            Nodes::Reference(_) => Err(NO_PROXIES.into()),
            Nodes::Etcd(e) => Ok(e.links().crossing(groups)),
            Nodes::Hosts(h) => Ok(super::links::crossing(h.cluster.links(), groups)),
        }
    }

    /// Sets `mode` on each of `links`.
    pub fn set_links(&mut self, links: &[Link], mode: LinkMode) {
        match self {
            Nodes::Reference(r) => {
                if let Some(t) = &r.links {
                    t.set(links, mode);
                }
            }
            Nodes::Etcd(e) => e.set_links(links, mode),
            // Cut and restored through the hosts cluster (iptables over SSH).
            Nodes::Hosts(_) => {}
        }
    }

    /// Every link back to pass.
    pub fn heal_links(&mut self) {
        match self {
            Nodes::Reference(r) => {
                if let Some(t) = &r.links {
                    t.heal_all();
                }
            }
            Nodes::Etcd(e) => e.heal_links(),
            Nodes::Hosts(_) => {}
        }
    }

    /// Tells the proxies in front of node `id` that it is down, so they refuse at once.
    pub fn node_down(&self, id: NodeId) {
        if let Nodes::Reference(ReferenceNodes { links: Some(t), .. }) = self {
            t.node_down(id);
        }
    }

    /// Whether every link to and from `id` is cut.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        match self {
            Nodes::Reference(r) => r.links.as_ref().is_some_and(|t| t.is_isolated(id)),
            Nodes::Etcd(e) => e.links().is_isolated(id),
            Nodes::Hosts(h) => h.cluster.is_isolated(id),
        }
    }

    /// The link faults touching `id`, for the live view (`→2 blackhole`).
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        match self {
            Nodes::Reference(r) => r
                .links
                .as_ref()
                .map(|t| t.faults_of(id))
                .unwrap_or_default(),
            Nodes::Etcd(e) => e.links().faults_of(id),
            Nodes::Hosts(h) => h.cluster.faults_of(id),
        }
    }

    /// Stops every node (SIGTERM, SIGKILL after `grace`) and every proxy.
    pub async fn shutdown(&mut self, grace: Duration) {
        match self {
            Nodes::Reference(r) => {
                r.cluster.stop(grace).await;
                if let Some(links) = r.links.take() {
                    links.shutdown().await;
                }
            }
            Nodes::Etcd(e) => e.stop_all(grace).await,
            Nodes::Hosts(h) => {
                if let Err(e) = h.cluster.fetch_logs(&h.log_dir).await {
                    tracing::warn!(error = %e, "cannot fetch the node logs from the hosts");
                }
                for e in h.cluster.stop(grace).await {
                    tracing::warn!(error = %e, "a host was not cleaned; run `raftdrill hosts heal`");
                }
            }
        }
    }
}

const NO_PROXIES: &str = "link faults need the link proxies (run without --direct-links)";
