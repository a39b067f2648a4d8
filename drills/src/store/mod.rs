//! What runs on a node: a store kind's side of every node, wherever it runs.
//!
//! A [`Store`] gives a node's launch line ([`Store::launch`]), its status call
//! ([`Store::status_call`]), the membership changes made through the cluster
//! ([`Store::add_member`], [`Store::remove_member`]) and its data paths
//! ([`Store::data_paths`], [`Store::disk_dir`]). Where a node runs, and how it is started,
//! signalled and cut off, is its placement's business (`crate::placement`); the two meet in
//! `crate::nodes`, so that no fault is written per store or per placement.
//!
//! # Layout
//! - this file: [`Store`], [`Site`], [`StartMode`], [`PeerStyle`], [`StoreError`]
//! - [`reference`]: raftdrill's own node (`raftdrill node`)
//! - [`etcd`]: etcd members (the gateway client and the flag set are in `crate::etcd`)

pub mod etcd;
pub mod reference;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub use loadgen::target::TargetKind;
use raftdrill_wire::{Role, Status};
use target_cluster::typ::NodeId;

/// A status call that owns what it needs, to run without any lock held.
pub type StatusCall = Pin<Box<dyn Future<Output = Option<Status>> + Send>>;

/// Where one node lives and how it is reached, as its placement chose.
#[derive(Debug, Clone)]
pub struct Site {
    /// Node id.
    pub id: NodeId,
    /// Where it serves clients, status and admin calls.
    pub client: SocketAddr,
    /// Where it listens for its peers, when apart from `client` (etcd's peer listener).
    pub peer_listen: SocketAddr,
    /// The address every peer dials, for a store whose members advertise one
    /// ([`PeerStyle::Advertised`]): the listener, or a link proxy in front of it.
    pub peer_advertised: SocketAddr,
    /// Its data folder.
    pub data_dir: PathBuf,
    /// etcd's WAL folder when it sits apart from the data (on a fault-injecting disk).
    pub wal_dir: Option<PathBuf>,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// The file that holds the run's token, when the node must check one (nodes on hosts).
    pub token_file: Option<PathBuf>,
}

impl Site {
    /// `http://` URL of its client listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.client)
    }
}

/// How a node starts.
#[derive(Debug, Clone, Copy)]
pub enum StartMode<'a> {
    /// One of the initial members, which form the cluster among themselves.
    Bootstrap(&'a [NodeId]),
    /// Empty, joining a running cluster that adds it (a node added or wiped during a run).
    Join,
}

/// How a store's nodes find their peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStyle {
    /// Each node is told, per peer, which address to dial: every directed link can get a
    /// link proxy of its own (the reference node's `--peer ID=ADDR`).
    PerLink,
    /// Each member advertises one peer address that every other member dials (etcd's peer
    /// URL): a link is told apart by who opened the connection (see `crate::etcd::links`).
    Advertised,
}

/// Which program runs a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// raftdrill's hidden `node` subcommand.
    RaftdrillNode,
    /// The `etcd` binary (its path on this machine; on hosts, `etcd` from their `PATH`).
    Etcd(PathBuf),
}

/// A membership change made through the cluster failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No node answered the call until its deadline; the last answer.
    #[error("{0}")]
    Refused(String),
    /// The store cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),
}

/// The store under test, with what its calls need (clients, tokens, etcd's member ids).
#[derive(Clone)]
pub enum Store {
    /// raftdrill's reference node.
    Reference(reference::Reference),
    /// etcd.
    Etcd(etcd::Etcd),
}

impl Default for Store {
    /// The reference node with no extra flags, called without a token.
    fn default() -> Self {
        Store::Reference(reference::Reference::new(
            Vec::new(),
            crate::admin::AdminClient::new(),
        ))
    }
}

impl Store {
    /// The same store, its calls carrying the run's `token` (nodes on hosts check it).
    pub fn with_token(self, token: &str) -> Result<Self, target_cluster::api::BadToken> {
        Ok(match self {
            Store::Reference(r) => {
                Store::Reference(r.with_admin(crate::admin::AdminClient::with_token(token)?))
            }
            etcd => etcd,
        })
    }

    /// Which store this is.
    pub fn kind(&self) -> TargetKind {
        match self {
            Store::Reference(_) => TargetKind::Reference,
            Store::Etcd(_) => TargetKind::Etcd,
        }
    }

    /// The program that runs a node.
    pub fn program(&self) -> Program {
        match self {
            Store::Reference(_) => Program::RaftdrillNode,
            Store::Etcd(e) => Program::Etcd(e.binary()),
        }
    }

    /// How its nodes find their peers.
    pub fn peer_style(&self) -> PeerStyle {
        match self {
            Store::Reference(_) => PeerStyle::PerLink,
            Store::Etcd(_) => PeerStyle::Advertised,
        }
    }

    /// How many ports a node listens on (clients, and peers when apart).
    pub fn ports_per_node(&self) -> usize {
        match self {
            Store::Reference(_) => 1,
            Store::Etcd(_) => 2,
        }
    }

    /// The arguments of node `site` started as `mode`. `peers` are the nodes it must know of,
    /// each at the address it dials: per link for [`PeerStyle::PerLink`], the advertised
    /// peer address (itself included) for [`PeerStyle::Advertised`].
    pub fn launch(
        &self,
        site: &Site,
        peers: &[(NodeId, SocketAddr)],
        mode: StartMode<'_>,
    ) -> Vec<String> {
        match self {
            Store::Reference(r) => r.launch(site, peers, mode),
            Store::Etcd(e) => e.launch(site, peers, mode),
        }
    }

    /// How long a status call of the poller may take.
    pub fn poll_timeout(&self) -> Duration {
        match self {
            Store::Reference(_) => reference::POLL_TIMEOUT,
            Store::Etcd(_) => etcd::POLL_TIMEOUT,
        }
    }

    /// A status call of node `id` at `url`, within `timeout`, to be awaited with no lock held.
    pub fn status_call(&self, id: NodeId, url: String, timeout: Duration) -> StatusCall {
        match self {
            Store::Reference(r) => r.status_call(url, timeout),
            Store::Etcd(e) => e.status_call(id, url, timeout),
        }
    }

    /// Adds node `site` to the running cluster through `urls` (tried in order, again and
    /// again until a deadline): the reference node as a voter at its client address (it
    /// runs already, as a learner catching up), an etcd member at its peer URL (it starts
    /// after, with the member list that names it).
    pub async fn add_member(&self, urls: &[String], site: &Site) -> Result<(), StoreError> {
        match self {
            Store::Reference(r) => r.add_member(urls, site).await,
            Store::Etcd(e) => e.add_member(urls, site).await,
        }
    }

    /// Takes node `id` out of the membership through `urls` (tried in order, again and
    /// again until a deadline).
    pub async fn remove_member(&self, urls: &[String], id: NodeId) -> Result<(), StoreError> {
        match self {
            Store::Reference(r) => r.remove_member(urls, id).await,
            Store::Etcd(e) => e.remove_member(urls, id).await,
        }
    }

    /// Tells the running node at `url` to dial `addr` for peer `peer` from now on (a link
    /// proxy put in front of a new node); a store whose members advertise their peer
    /// address has nothing to tell. A failure is logged: the node learns it at its next start.
    pub async fn set_peer(&self, url: &str, peer: NodeId, addr: SocketAddr) {
        if let Store::Reference(r) = self
            && let Err(e) = r
                .admin()
                .set_peer(url, peer, &addr.to_string(), Duration::from_secs(2))
                .await
        {
            tracing::warn!(error = %e, "cannot tell a node its new peer address");
        }
    }

    /// Whether a node joins by being added first and started after (etcd), rather than
    /// started first and added once it answers (the reference node).
    pub fn adds_before_start(&self) -> bool {
        matches!(self, Store::Etcd(_))
    }

    /// What a wipe deletes of node `site`: its data, and etcd's WAL where it sits apart.
    pub fn data_paths(&self, site: &Site) -> Vec<PathBuf> {
        let mut out = vec![site.data_dir.clone()];
        if let Some(home) = site.wal_dir.as_ref().and_then(|w| w.parent()) {
            out.push(home.to_path_buf());
        }
        out
    }

    /// Where node `site` keeps the files `corrupt` damages: a folder, and the end of their
    /// names. The reference node: `wal/*.wal` (not the `.spare` being filled ahead) and
    /// `snapshot.bin`; etcd: its WAL folder's `*.wal` and `member/snap/*.snap` (its database
    /// file is left alone: bbolt pages have no checksums to find a flip by).
    pub fn corruptible(
        &self,
        site: &Site,
        file: crate::scenario::CorruptFile,
    ) -> (PathBuf, &'static str) {
        use crate::scenario::CorruptFile::{Log, Snapshot};
        match (self, file) {
            (Store::Reference(_), Log) => (site.data_dir.join("wal"), ".wal"),
            (Store::Reference(_), Snapshot) => (site.data_dir.clone(), "snapshot.bin"),
            (Store::Etcd(_), Log) => (
                site.wal_dir
                    .clone()
                    .unwrap_or_else(|| site.data_dir.join("member").join("wal")),
                ".wal",
            ),
            (Store::Etcd(_), Snapshot) => (site.data_dir.join("member").join("snap"), ".snap"),
        }
    }

    /// The folder that a fault-injecting disk is mounted over: the reference node's data, or
    /// etcd's WAL home (its database is memory-mapped, which the FUSE layer cannot serve; the
    /// WAL is what etcd syncs before it acknowledges).
    pub fn disk_dir(&self, site: &Site) -> PathBuf {
        site.wal_dir
            .as_ref()
            .and_then(|w| w.parent())
            .map_or_else(|| site.data_dir.clone(), std::path::Path::to_path_buf)
    }

    /// The run's reference-node admin client (with the token on hosts); none for etcd.
    pub fn admin(&self) -> Option<&crate::admin::AdminClient> {
        match self {
            Store::Reference(r) => Some(r.admin()),
            Store::Etcd(_) => None,
        }
    }

    /// The etcd member id of every node, for the link proxies' attribution (empty for the
    /// reference node).
    pub fn member_ids(&self) -> std::collections::BTreeMap<NodeId, u64> {
        match self {
            Store::Reference(_) => Default::default(),
            Store::Etcd(e) => e.ids(),
        }
    }
}

/// The leader that one node reports itself to be and every answering node agrees on.
pub fn agreed_leader(statuses: &[Status]) -> Option<NodeId> {
    let leader = statuses
        .iter()
        .filter(|s| s.role == Role::Leader)
        .max_by_key(|s| s.term)?
        .id;
    statuses
        .iter()
        .all(|s| s.leader == Some(leader))
        .then_some(leader)
}

/// Calls `call` on each of `urls` in turn until one succeeds, again and again until
/// `deadline` passes, pausing `pause` between rounds; the last error otherwise.
pub(crate) async fn through_cluster<T, E, F, Fut>(
    urls: &[String],
    deadline: Duration,
    pause: Duration,
    call: F,
) -> Result<T, StoreError>
where
    E: std::fmt::Display,
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let end = tokio::time::Instant::now() + deadline;
    let mut last = String::from("no node is up to carry the membership change");
    loop {
        for url in urls {
            match call(url.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(error = %e, "membership change refused; trying again");
                    last = e.to_string();
                }
            }
        }
        if tokio::time::Instant::now() >= end {
            return Err(StoreError::Refused(last));
        }
        tokio::time::sleep(pause).await;
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.kind().as_str())
    }
}
