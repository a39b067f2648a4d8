//! One node: configuration, startup, bootstrap and graceful shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::{Config, SnapshotPolicy};

use crate::api::{AppState, AppStateParts, Auth, router};
use crate::election_gate::ElectionGate;
use crate::net::{NetworkFactory, PeerMap};
use crate::stages::Stages;
use crate::store::commit_stats::CommitStats;
use crate::store::{self, KvHandle, LogStore, StoreOptions};
use crate::typ::{Node, NodeId, Raft};

/// Everything a node is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (≥ 1).
    pub id: NodeId,
    /// Where the HTTP listener binds.
    pub listen: SocketAddr,
    /// The address recorded in the membership for this node; defaults to `listen`.
    pub advertise: Option<String>,
    /// Storage engine, fsync policy, data dir, apply delay.
    pub store: StoreOptions,
    /// Where to send traffic for each peer (`--peer ID=HOST:PORT`).
    pub peers: Vec<(NodeId, String)>,
    /// Members of the cluster to bootstrap (`--initial-members`); the lowest id initializes.
    /// An address of `None` is taken from `peers` (or `advertise` for this node).
    pub initial_members: Vec<(NodeId, Option<String>)>,
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Build a snapshot every this many applied entries.
    pub snapshot_every: u64,
    /// Deadline of a client request.
    pub request_timeout: Duration,
    /// Planted bug, for proving the linearizability checker: serve `linearizable` reads from
    /// this node's own state machine, with no ReadIndex and no forwarding, on any node.
    pub unsafe_reads: bool,
    /// Planted bug, for proving the lost-write check (`--unsafe-fsync-retry`): after a failed
    /// fsync the log syncs the same segment again and carries on (see
    /// [`LogStore::plant_fsync_retry`]) instead of stopping the node.
    pub unsafe_fsync_retry: bool,
    /// The run's token: without it, admin and peer calls are refused (see [`Auth`]).
    pub auth: Option<Auth>,
}

impl NodeConfig {
    /// A config with the documented defaults.
    pub fn new(id: NodeId, listen: SocketAddr) -> Self {
        Self {
            id,
            listen,
            advertise: None,
            store: StoreOptions::default(),
            peers: Vec::new(),
            initial_members: Vec::new(),
            heartbeat: Duration::from_millis(50),
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
            snapshot_every: 10_000,
            request_timeout: Duration::from_secs(2),
            unsafe_reads: false,
            unsafe_fsync_retry: false,
            auth: None,
        }
    }

    fn advertise(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    fn raft_config(&self) -> Result<Config, NodeError> {
        let ms = |d: Duration| d.as_millis() as u64;
        let config = Config {
            cluster_name: "raftdrill".into(),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_timeout.0),
            election_timeout_max: ms(self.election_timeout.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.snapshot_every.min(1000),
            // Chunks must fit the HTTP body limit of the peer endpoint.
            snapshot_max_chunk_size: 1024 * 1024,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| NodeError::Config(e.to_string()))
    }

    /// The bootstrap membership, when this node is the one that initializes it.
    fn bootstrap_members(&self) -> Result<Option<BTreeMap<NodeId, Node>>, NodeError> {
        let lowest = self.initial_members.iter().map(|(id, _)| *id).min();
        if lowest != Some(self.id) {
            return Ok(None);
        }
        let mut members = BTreeMap::new();
        for (id, addr) in &self.initial_members {
            let addr = match addr {
                Some(a) => a.clone(),
                None if *id == self.id => self.advertise(),
                None => self
                    .peers
                    .iter()
                    .find(|(p, _)| p == id)
                    .map(|(_, a)| a.clone())
                    .ok_or_else(|| {
                        NodeError::Config(format!(
                            "initial member {id} has no address: give --peer {id}=HOST:PORT"
                        ))
                    })?,
            };
            members.insert(*id, Node::new(addr));
        }
        Ok(Some(members))
    }
}

/// Starting or running a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A flag combination is invalid.
    #[error("bad node configuration: {0}")]
    Config(String),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why (often: address already in use).
        source: std::io::Error,
    },
    /// openraft failed to start.
    #[error("raft failed to start: {0}")]
    Raft(String),
    /// The HTTP server failed.
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The log stopped for good after a failed fsync: the node stops rather than go on over
    /// pages the kernel may have dropped.
    #[error("{0}")]
    Log(String),
}

/// Runs the node until `shutdown` resolves, then stops gracefully: stop accepting, let in-flight
/// requests finish (bounded by the request timeout), shut Raft down.
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let raft_config = Arc::new(config.raft_config()?);
    let bootstrap = config.bootstrap_members()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Bind {
            addr: config.listen,
            source,
        })?;
    let Started {
        raft,
        log,
        http,
        peers,
        opened,
        recovered,
    } = start_raft(&config, raft_config).await?;

    if let Some(members) = bootstrap {
        initialize_once(&raft, members).await?;
    }

    let gate = Arc::new(ElectionGate::new(config.election_timeout.0));
    let gate_task = tokio::spawn(gate.clone().run(raft.clone()));
    let disk_task = tokio::spawn(watch_disk(log.clone(), raft.clone(), config.heartbeat));
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let state = AppState::new(AppStateParts {
        id: config.id,
        raft: raft.clone(),
        kv: opened.kv,
        committed: opened.committed,
        peers,
        http,
        request_timeout: config.request_timeout,
        lease: config.election_timeout.0 / 2,
        advertise: config.advertise(),
        quorum_stale: config.election_timeout.1 + config.heartbeat,
        commit_stats: opened.commit_stats,
        stages: opened.stages,
        gate,
        unsafe_reads: config.unsafe_reads,
        closing,
    });
    if config.unsafe_reads {
        tracing::warn!(
            "unsafe reads: linearizable reads are served from local state (a planted bug)"
        );
    }
    tracing::info!(id = config.id, addr = %config.listen, last_log_index = ?recovered, "node listening");

    let served = tokio::select! {
        served = serve(listener, state, &config, async move {
            shutdown.await;
            let _ = closing_tx.send(true);
        }) => served,
        // Not a graceful stop: nothing more can be acknowledged, and the sooner the process
        // is gone, the sooner its supervisor sees it.
        why = log.failed() => {
            tracing::error!(id = config.id, error = %why, "the log failed: the node stops now");
            return Err(NodeError::Log(why));
        }
    };
    gate_task.abort();
    disk_task.abort();
    tracing::info!(id = config.id, "shutting down raft");
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    served
}

/// What the API is built from once Raft runs: the parts of the opened store that Raft did not
/// take, and the peers' map and client that its network shares.
struct Started {
    raft: Raft,
    log: LogStore,
    http: reqwest::Client,
    peers: PeerMap,
    opened: StoreHandles,
    /// The last log index the node starts from: none after a wipe, its last entry after a
    /// crash.
    recovered: Option<u64>,
}

/// The handles of the opened store that the API reads.
struct StoreHandles {
    kv: KvHandle,
    committed: Arc<AtomicU64>,
    commit_stats: Arc<CommitStats>,
    stages: Arc<Stages>,
}

/// Opens the store and starts Raft on it, with the network to the peers.
async fn start_raft(config: &NodeConfig, raft_config: Arc<Config>) -> Result<Started, NodeError> {
    let mut opened = store::open(&config.store)?;
    if config.unsafe_fsync_retry {
        opened.log.plant_fsync_retry();
        tracing::warn!(
            "unsafe fsync retry: a failed fsync is retried and the log carries on (a planted bug)"
        );
    }
    let commit_stats = opened.log.commit_stats();
    // What the node starts from, for its log: empty after a wipe, its last entry after a crash.
    let recovered = opened
        .log
        .get_log_state()
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?
        .last_log_id
        .map(|l| l.index);

    let peers = PeerMap::new(config.peers.iter().cloned());
    let http = peer_client(config.auth.as_ref())?;
    let stages = opened.stages.clone();
    let log = opened.log.clone();
    log.set_node(config.id);
    let network = NetworkFactory::new(http.clone(), peers.clone(), stages.clone(), log.clone());
    let raft = Raft::new(
        config.id,
        raft_config,
        network,
        opened.log,
        opened.state_machine,
    )
    .await
    .map_err(|e| NodeError::Raft(e.to_string()))?;
    Ok(Started {
        raft,
        log,
        http,
        peers,
        opened: StoreHandles {
            kv: opened.kv,
            committed: opened.committed,
            commit_stats,
            stages,
        },
        recovered,
    })
}

/// The HTTP client of peer calls and forwards, carrying the run's token when there is one.
fn peer_client(auth: Option<&Auth>) -> Result<reqwest::Client, NodeError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(auth) = auth {
        headers.insert(reqwest::header::AUTHORIZATION, auth.header());
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| NodeError::Raft(e.to_string()))
}

/// Serves the API on `listener` until `shutdown` resolves; in-flight requests then get the
/// request timeout and a second more, and the server is dropped.
async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    config: &NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let grace = config.request_timeout + Duration::from_secs(1);
    // Answers (and append stream frames) go out at once, not held for Nagle.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, router(state, config.auth.clone())).with_graceful_shutdown(
        async move {
            shutdown.await;
            let _ = stop_tx.send(());
        },
    );
    // In-flight requests get `grace` after the shutdown signal; then the server is dropped.
    tokio::select! {
        r = server => r.map_err(NodeError::Serve),
        () = async {
            let _ = stop_rx.await;
            tokio::time::sleep(grace).await;
        } => Ok(()),
    }
}

/// Works for a leader that reports its own appends flushed before its fsync (see
/// `LogStore::reports_early`):
/// - once a write lets a commit index that was held back from the followers go to them, a
///   heartbeat tells them at once rather than with the next write or heartbeat;
/// - while the log writer has been on one batch for longer than a heartbeat interval, the
///   leader sends no heartbeats. Without early reports a stalled disk blocks openraft's core in
///   the leader's own append, heartbeats stop and the followers elect another leader; with
///   them, a leader whose last entries were reported early would go on heartbeating over a
///   disk that never answers, and never be replaced.
async fn watch_disk(log: LogStore, raft: Raft, heartbeat: Duration) {
    let mut tick = tokio::time::interval((heartbeat / 5).max(Duration::from_millis(5)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stalled = false;
    loop {
        tokio::select! {
            () = log.released() => {
                if raft.trigger().heartbeat().await.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {
                let now = log.stalled_for(heartbeat);
                if now != stalled {
                    stalled = now;
                    raft.runtime_config().heartbeat(!now);
                    if now {
                        tracing::warn!("the log writer is stalled: heartbeats paused");
                    } else {
                        tracing::info!("the log writer is back: heartbeats resumed");
                    }
                }
            }
        }
    }
}

/// Initializes the cluster; a node that already has state refuses, which is the harmless case
/// of a restart.
async fn initialize_once(raft: &Raft, members: BTreeMap<NodeId, Node>) -> Result<(), NodeError> {
    match raft.initialize(members).await {
        Ok(()) => {
            tracing::info!("initialized the cluster");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
            tracing::info!("already initialized; not initializing again");
            Ok(())
        }
        Err(e) => Err(NodeError::Raft(e.to_string())),
    }
}
