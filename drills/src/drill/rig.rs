//! The rig: the nodes under test, their link proxies, and the bookkeeping the poller and the
//! fault executor share during a drill.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use loadgen::RunClock;
use raftdrill_wire::Status;
use target_cluster::typ::NodeId;
use tokio::sync::Mutex;

use super::disks::Disks;
use super::nodes::Nodes;
use crate::admin::AdminClient;
use crate::local_cluster::agreed_leader;

/// What the rig shares. The lock on the nodes is held only for quick steps (a signal, a mode
/// change, a copy of the node list), never across a status call or a wait, so the poller is
/// never stalled by a fault in progress. (etcd's membership changes are the exception: they
/// go through etcd's API with the member table held.)
pub struct Rig {
    /// The nodes and their link proxies.
    pub nodes: Mutex<Nodes>,
    /// Nodes taken out of the membership on purpose (not restarted at the end).
    pub removed: StdMutex<BTreeSet<NodeId>>,
    /// Client of the reference nodes' admin API.
    pub admin: AdminClient,
    /// The run's clock (t = 0 when the load's worker pool is ready), shared with the load.
    pub clock: Arc<RunClock>,
    /// The fault-injecting disks, for a scenario with disk faults.
    pub disks: Mutex<Option<Disks>>,
}

impl Rig {
    /// The hosts cluster, when the nodes run on hosts (taken out of the lock at once).
    pub async fn hosts(&self) -> Option<Arc<crate::hosts::HostCluster>> {
        self.nodes.lock().await.hosts()
    }

    /// The second of the run at Unix time `unix_s` of this machine's clock.
    pub fn run_s_at_unix(&self, unix_s: f64) -> f64 {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.now_s() - (now_unix - unix_s)
    }

    /// Seconds since the start of the run (0 before it).
    pub fn now_s(&self) -> f64 {
        self.clock.now_s()
    }

    /// Client URLs of every known node, by id.
    pub async fn urls(&self) -> BTreeMap<NodeId, String> {
        let n = self.nodes.lock().await;
        n.ids()
            .into_iter()
            .map(|id| (id, n.client_url(id)))
            .collect()
    }

    /// The client URL of node `id`.
    pub async fn url(&self, id: NodeId) -> String {
        self.nodes.lock().await.client_url(id)
    }

    /// SIGTERM node `id` and wait up to `grace` for it to exit (SIGKILL after). The lock is
    /// released between checks.
    pub async fn stop_node(&self, id: NodeId, grace: Duration) -> Result<(), String> {
        if let Some(h) = self.hosts().await {
            h.stop_node(id, grace).await.map_err(|e| e.to_string())?;
            self.mark_down(&[id]).await;
            return Ok(());
        }
        self.nodes
            .lock()
            .await
            .supervisor()?
            .term(id)
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + grace;
        loop {
            if self.nodes.lock().await.supervisor()?.reap(id).is_some() {
                break;
            }
            if Instant::now() >= deadline {
                self.nodes.lock().await.kill(id)?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.mark_down(&[id]).await;
        Ok(())
    }

    /// The statuses of every node that answers, asked with no lock held.
    pub async fn statuses(&self) -> Vec<Status> {
        let calls = self.nodes.lock().await.status_calls(&self.admin);
        let mut set = tokio::task::JoinSet::new();
        for (_, call) in calls {
            set.spawn(call);
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok(Some(s)) = joined {
                out.push(s);
            }
        }
        out
    }

    /// Waits until the answering nodes agree on a leader, within `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = agreed_leader(&self.statuses().await) {
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
        let n = self.nodes.lock().await;
        for id in ids {
            n.node_down(*id);
        }
    }

    /// The control socket of node `id`'s fault-injecting disk.
    pub async fn disk(&self, id: NodeId) -> Result<std::path::PathBuf, String> {
        match &*self.disks.lock().await {
            Some(d) => d.control(id),
            None => Err("this drill mounted no fault-injecting disks".into()),
        }
    }

    /// Whether node `id` was removed from the membership on purpose.
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.removed.lock().expect("removed lock").contains(&id)
    }
}
