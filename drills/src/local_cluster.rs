//! A reference cluster on this machine, for `raftdrill cluster` and the integration tests: N
//! node processes on loopback, wired directly. It is the reference store on the local
//! placement ([`Nodes`]), with the few calls a test needs, so that a test, the command and
//! a drill start nodes the same way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use raftdrill_wire::Status;
use target_cluster::typ::NodeId;

use crate::admin::AdminClient;
use crate::nodes::{Nodes, NodesError};
use crate::placement::local::{Local, LocalOptions};
use crate::placement::{Placement, PlacementError};
use crate::store::reference::Reference;
use crate::store::{StartMode, Store};

pub use crate::placement::local::clear_dir;
pub use crate::placement::new_token;
pub use crate::store::agreed_leader;

/// How long one `/status` may take.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

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
    /// Laying out or driving a node failed.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// The nodes did not form a cluster.
    #[error(transparent)]
    Start(#[from] NodesError),
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
    nodes: Nodes,
}

impl LocalCluster {
    /// Starts `opts.nodes` voters (they bootstrap themselves) and returns without waiting for a
    /// leader; see [`LocalCluster::wait_for_leader`].
    pub fn start(opts: &ClusterOptions) -> Result<Self, ClusterError> {
        let admin = match &opts.token {
            Some(t) => {
                AdminClient::with_token(t).map_err(|e| ClusterError::Token(e.to_string()))?
            }
            None => AdminClient::new(),
        };
        let store = Store::Reference(Reference::new(opts.node_flags.clone(), admin));
        let lopts = LocalOptions {
            nodes: opts.nodes,
            base_port: opts.base_port,
            data_dir: opts.data_dir.clone(),
            log_dir: opts.log_dir.clone(),
            token: opts.token.clone(),
            link_proxies: false,
            exe: opts.exe.clone(),
        };
        let mut local = Local::layout(&lopts, &store)?;
        local.start_initial(&store)?;
        Ok(Self {
            nodes: Nodes::new(store, Placement::Local(Box::new(Mutex::new(local)))),
        })
    }

    /// The nodes under test, for what this facade does not offer.
    pub fn nodes_under_test(&self) -> &Nodes {
        &self.nodes
    }

    /// Waits until a running node reports itself leader and every other running node agrees.
    /// Fails early if a node process exits.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> Result<NodeId, ClusterError> {
        Ok(self.nodes.first_leader(timeout).await?)
    }

    /// Starts a new, empty node `id` that joins nobody by itself; add it with
    /// `POST /admin/members` on the leader.
    pub fn spawn_new_node(&mut self, id: NodeId) -> Result<SocketAddr, ClusterError> {
        let store = self.nodes.store().clone();
        let mut l = self.local();
        let site = l.add_site(id, &store)?;
        l.start_as(id, &store, StartMode::Join)?;
        Ok(site.client)
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.nodes.placement().local().expect("a local cluster")
    }

    /// Whether node `id` has a live process.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.local().is_running(id)
    }

    /// Restarts a node with the flags it was last started with, on the same data dir.
    pub fn restart(&mut self, id: NodeId) -> Result<(), ClusterError> {
        Ok(self.local().restart(id)?)
    }

    /// SIGKILL.
    pub fn kill(&mut self, id: NodeId) -> Result<(), ClusterError> {
        Ok(self.local().kill(id)?)
    }

    /// SIGTERM node `id`, wait up to `grace` for its exit (SIGKILL after); its exit status
    /// when it exited by itself.
    pub async fn terminate(
        &mut self,
        id: NodeId,
        grace: Duration,
    ) -> Result<Option<std::process::ExitStatus>, ClusterError> {
        self.local().term(id)?;
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.local().reap(id) {
                return Ok(Some(status));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.local().kill(id)?;
        Ok(None)
    }

    /// Node facts by id.
    pub fn nodes(&self) -> BTreeMap<NodeId, NodeInfo> {
        self.local()
            .sites()
            .iter()
            .map(|(id, s)| {
                let info = NodeInfo {
                    id: *id,
                    addr: s.client,
                    data_dir: s.data_dir.clone(),
                    log: s.log.clone(),
                };
                (*id, info)
            })
            .collect()
    }

    /// `http://ADDR` of node `id`.
    pub fn url(&self, id: NodeId) -> String {
        self.nodes.url(id)
    }

    /// Client URLs of all known nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.urls()
    }

    /// The data root.
    pub fn root(&self) -> PathBuf {
        self.local().root().to_path_buf()
    }

    /// Whether the data root is a temporary folder.
    pub fn is_temporary(&self) -> bool {
        self.local().is_temporary()
    }

    /// `/status` of node `id`, or `None` when it does not answer within 500 ms.
    pub async fn status(&self, id: NodeId) -> Option<Status> {
        self.nodes
            .store()
            .status_call(id, self.url(id), STATUS_TIMEOUT)
            .await
    }

    /// Stops all nodes gracefully (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop(&mut self, grace: Duration) {
        self.nodes.shutdown(grace).await;
    }
}
