//! The rig: the cluster, its link proxies, and the bookkeeping the poller and the fault
//! executor share during a drill.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use loadgen::RunClock;
use target_cluster::typ::NodeId;
use tokio::sync::Mutex;

use super::links::LinkTable;
use crate::admin::AdminClient;
use crate::local_cluster::{ClusterError, LocalCluster, agreed_leader, statuses_of};

/// What the rig shares. Locks are held only for quick steps (a signal, a mode change, a copy
/// of the node list), never across a wait, so the poller is never stalled by a fault in
/// progress.
pub struct Rig {
    /// The node processes.
    pub cluster: Mutex<LocalCluster>,
    /// The link proxies; `None` when nodes are wired directly (for measuring proxy overhead).
    pub links: Mutex<Option<LinkTable>>,
    /// Nodes taken out of the membership on purpose (not restarted at the end).
    pub removed: StdMutex<BTreeSet<NodeId>>,
    /// Client of the nodes' admin API.
    pub admin: AdminClient,
    /// Client for the final reads.
    pub http: reqwest::Client,
    /// The run's clock (t = 0 when the load's worker pool is ready), shared with the load.
    pub clock: Arc<RunClock>,
}

impl Rig {
    /// Seconds since the start of the run (0 before it).
    pub fn now_s(&self) -> f64 {
        self.clock.now_s()
    }

    /// Listen addresses of every known node.
    pub async fn addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        let c = self.cluster.lock().await;
        c.nodes().iter().map(|(id, i)| (*id, i.addr)).collect()
    }

    /// `http://ADDR` of node `id`.
    pub async fn url(&self, id: NodeId) -> String {
        self.cluster.lock().await.url(id)
    }

    /// SIGTERM node `id` and wait up to `grace` for it to exit (SIGKILL after). The cluster lock
    /// is released between checks.
    pub async fn stop_node(&self, id: NodeId, grace: Duration) -> Result<(), ClusterError> {
        self.cluster.lock().await.supervisor().term(id)?;
        let deadline = Instant::now() + grace;
        loop {
            if self.cluster.lock().await.supervisor().reap(id).is_some() {
                break;
            }
            if Instant::now() >= deadline {
                self.cluster.lock().await.kill(id)?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.mark_down(&[id]).await;
        Ok(())
    }

    /// Waits until the answering nodes agree on a leader, within `timeout`. The cluster lock
    /// is taken only to list the nodes, never across the status calls or the wait.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            let urls = self.cluster.lock().await.answering_urls();
            if let Some(l) = agreed_leader(&statuses_of(&self.admin, &urls).await) {
                return Some(l);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Tells the link proxies in front of `ids` that those nodes are down (killed or stopped),
    /// so peers that dial them are refused at once, as by the node's own closed port.
    pub async fn mark_down(&self, ids: &[NodeId]) {
        if let Some(links) = self.links.lock().await.as_ref() {
            for id in ids {
                links.node_down(*id);
            }
        }
    }

    /// Whether node `id` was removed from the membership on purpose.
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.removed.lock().expect("removed lock").contains(&id)
    }
}
