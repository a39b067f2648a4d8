//! Starting the nodes under test: the store from the scenario's `[cluster]`, the placement
//! (this machine or hosts), disks and link proxies where asked, then a wait for a leader. The
//! one way every command starts nodes (`run`, `capacity`, `cluster`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use target_cluster::typ::NodeId;

use super::Nodes;
use crate::admin::AdminClient;
use crate::etcd::EtcdError;
use crate::etcd::launch::{EtcdOptions, find_etcd};
use crate::hosts::{HostCluster, HostOptions, HostsError, HostsFile};
use crate::placement::local::{Local, LocalOptions};
use crate::placement::{Placement, PlacementError, new_token};
use crate::proxy::LinkMode;
use crate::scenario::ClusterSpec;
use crate::store::{Store, TargetKind, etcd::Etcd, reference::Reference};

/// How long the first leader election may take on this machine.
pub const ELECTION_DEADLINE: Duration = Duration::from_secs(20);
/// How long the first leader election may take on hosts.
const HOSTS_ELECTION_DEADLINE: Duration = Duration::from_secs(30);
/// How long a node gets to exit after SIGTERM when a start is given up.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where the nodes run.
#[derive(Debug, Clone)]
pub enum Where {
    /// Child processes of this machine.
    Local {
        /// Node i listens on `base_port + i - 1` (reference nodes); else free ports.
        base_port: Option<u16>,
        /// Root of the node folders; a temporary folder without it.
        data_dir: Option<PathBuf>,
        /// Link proxies between the nodes (for link faults).
        link_proxies: bool,
        /// Fault-injecting disks under the nodes (for disk faults).
        disks: bool,
        /// libfaketime under every node (for clock faults).
        clocks: bool,
        /// A token the nodes check (written to a file only the owner reads).
        token: Option<String>,
    },
    /// One node per host, over SSH.
    Hosts {
        /// The hosts.
        file: HostsFile,
        /// The port every node listens on, at its host's address.
        port: u16,
        /// Link modes beyond cuts the run will use (hosts are probed for tc, and run link
        /// proxies where it cannot make them).
        link_modes: Vec<LinkMode>,
        /// libfaketime under every node (for clock faults; each host must have it).
        clocks: bool,
    },
}

/// What to start, and where.
#[derive(Debug, Clone)]
pub struct NodesSpec {
    /// The store and its settings (`[cluster]`).
    pub cluster: ClusterSpec,
    /// Where.
    pub at: Where,
    /// The raftdrill binary (nodes, disks and proxies run from it).
    pub exe: PathBuf,
    /// The etcd binary on this machine (default: `etcd` on PATH).
    pub etcd_bin: Option<PathBuf>,
    /// Where the node logs go (`<id>.log`); fetched there from hosts when they stop.
    pub log_dir: Option<PathBuf>,
}

/// The nodes could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    /// A placement step failed.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// etcd cannot be run (no binary).
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The hosts could not be readied or their nodes did not start.
    #[error(transparent)]
    Hosts(#[from] HostsError),
    /// A node exited while the cluster formed.
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
    /// The run's token could not be made.
    #[error("a token for the run: {0}")]
    Token(String),
}

impl NodesSpec {
    /// The store for `self.cluster`, its admin client sending `token` when the nodes check
    /// one.
    fn store(&self, token: Option<&str>, on_hosts: bool) -> Result<Store, NodesError> {
        let c = &self.cluster;
        Ok(match c.target {
            TargetKind::Reference => {
                let admin = match token {
                    Some(t) => {
                        AdminClient::with_token(t).map_err(|e| NodesError::Token(e.to_string()))?
                    }
                    None => AdminClient::new(),
                };
                Store::Reference(Reference::new(c.node_flags(), admin))
            }
            TargetKind::Etcd => {
                let opts = EtcdOptions {
                    heartbeat: c.heartbeat,
                    // etcd takes one election timeout and spreads it over [1×, 2×] itself.
                    election_timeout: c.election_timeout.map(|(min, _)| min),
                    ..EtcdOptions::default()
                };
                // On hosts, `etcd` from each host's PATH runs; this machine needs none.
                let (binary, token) = if on_hosts {
                    ("etcd".into(), "raftdrill-hosts".to_string())
                } else {
                    let t = new_token().map_err(|e| NodesError::Token(e.to_string()))?;
                    (
                        find_etcd(self.etcd_bin.as_deref())?,
                        format!("raftdrill-{}", &t[..12]),
                    )
                };
                Store::Etcd(Etcd::new(binary, opts, token))
            }
        })
    }

    /// Starts the nodes and waits for a leader. On any failure everything started is stopped
    /// again (and, on hosts, their logs fetched first).
    pub async fn start(&self) -> Result<Nodes, NodesError> {
        match &self.at {
            Where::Local { .. } => self.start_local().await,
            Where::Hosts { .. } => self.start_on_hosts().await,
        }
    }

    async fn start_local(&self) -> Result<Nodes, NodesError> {
        let Where::Local {
            base_port,
            data_dir,
            link_proxies,
            disks,
            clocks,
            token,
        } = &self.at
        else {
            unreachable!("called for a local placement")
        };
        let store = self.store(token.as_deref(), false)?;
        let opts = LocalOptions {
            nodes: self.cluster.nodes,
            base_port: *base_port,
            data_dir: data_dir.clone(),
            log_dir: self.log_dir.clone(),
            token: token.clone(),
            link_proxies: *link_proxies,
            exe: self.exe.clone(),
        };
        let mut local = Local::prepare(&opts, &store).await?;
        if *disks {
            local.mount_disks(&store).await?;
        }
        if *clocks {
            local.enable_clocks()?;
        }
        local.start_initial(&store)?;
        let nodes = Nodes::new(store, Placement::Local(Box::new(Mutex::new(local))))
            .with_log_dir(self.log_dir.clone());
        match nodes.first_leader(ELECTION_DEADLINE).await {
            Ok(_) => Ok(nodes),
            Err(e) => {
                nodes.shutdown(STOP_GRACE).await;
                Err(e)
            }
        }
    }

    async fn start_on_hosts(&self) -> Result<Nodes, NodesError> {
        let Where::Hosts {
            file,
            port,
            link_modes,
            clocks,
        } = &self.at
        else {
            unreachable!("called for hosts")
        };
        let token = new_token().map_err(|e| NodesError::Token(e.to_string()))?;
        let store = self.store(Some(&token), true)?;
        let opts = HostOptions {
            exe: self.exe.clone(),
            port: *port,
            token,
            link_modes: link_modes.clone(),
            store: store.clone(),
            clocks: *clocks,
        };
        let cluster = HostCluster::prepare(file, opts).await?;
        let nodes = Nodes::new(store, Placement::Hosts(std::sync::Arc::new(cluster)))
            .with_log_dir(self.log_dir.clone());
        let hosts = nodes.placement().hosts().expect("hosts").clone();
        let started = async {
            hosts.start_all().await?;
            nodes.first_leader(HOSTS_ELECTION_DEADLINE).await
        };
        match started.await {
            Ok(_) => Ok(nodes),
            Err(e) => {
                nodes.shutdown(STOP_GRACE).await;
                Err(e)
            }
        }
    }
}

impl Nodes {
    /// Waits for the first leader, every node answering and agreeing; fails at once when a
    /// node process exits meanwhile (with the end of its log).
    pub async fn first_leader(&self, timeout: Duration) -> Result<NodeId, NodesError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(mut l) = self.placement().local()
                && let Some((id, status, tail)) = l.reap_exited().into_iter().next()
            {
                return Err(NodesError::NodeExited {
                    id,
                    status: status.to_string(),
                    tail,
                });
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(l) = self.leader_within(None, Duration::ZERO).await {
                return Ok(l);
            }
            if left.is_zero() {
                return Err(NodesError::NoLeader(timeout));
            }
            tokio::time::sleep(super::POLL).await;
        }
    }
}
