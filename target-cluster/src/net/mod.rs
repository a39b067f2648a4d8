//! Outgoing peer traffic: the [`PeerMap`] of addresses and openraft's `RaftNetwork` over HTTP.
//!
//! AppendEntries, the hot path, go over an append stream: one connection per follower, opened
//! as an HTTP/1.1 request that the follower upgrades (`GET /raft/stream`, `Upgrade:
//! raftdrill-append`), then carrying length-framed postcard messages both ways (`frame.rs`),
//! one request and its answer at a time. It saves each round trip the HTTP encoding, parsing
//! and routing on both sides. Votes and snapshot chunks, rare, are HTTP/1.1 POSTs with postcard
//! bodies on pooled keep-alive connections (one `reqwest::Client` per node). HTTP rather than
//! gRPC keeps one listener per node for the client, admin and peer APIs, so one TCP proxy in
//! front of a node's port carries every kind of node-to-node traffic (the streams, the RPCs and
//! forwarded client requests) and a link fault cuts all of it. The answer is a postcard
//! `Result<Resp, RaftError>`, so Raft errors travel as data.

pub(crate) mod frame;
mod peers;
mod stream;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use peers::PeerMap;

use crate::stages::{Stage, Stages};
use crate::store::LogStore;
use stream::{AppendStream, StreamPool};

use crate::typ::err::{RaftError, RpcError};
use crate::typ::rpc::{
    AppendRequest, AppendResponse, SnapshotRequest, SnapshotResponse, VoteRequest, VoteResponse,
};
use crate::typ::{Node, NodeId, TypeConfig};

/// Paths of the peer RPCs, shared by the client and the server side.
pub mod path {
    /// AppendEntries, one per POST (the nodes themselves use [`STREAM`]).
    pub const APPEND: &str = "/raft/append";
    /// `GET` with `Upgrade: raftdrill-append`: the append stream.
    pub const STREAM: &str = "/raft/stream";
    /// The `Upgrade` protocol of [`STREAM`].
    pub const STREAM_PROTOCOL: &str = "raftdrill-append";
    /// RequestVote.
    pub const VOTE: &str = "/raft/vote";
    /// InstallSnapshot (one chunk per call).
    pub const SNAPSHOT: &str = "/raft/snapshot";
    /// `GET ?index=N&wait_ms=M`: 200 once this node has applied index N (for `ack=all`).
    pub const APPLIED: &str = "/raft/applied";
}

/// Makes one [`PeerConn`] per target for openraft.
#[derive(Clone)]
pub struct NetworkFactory {
    client: reqwest::Client,
    streams: StreamPool<reqwest::Upgraded>,
    peers: PeerMap,
    stages: Arc<Stages>,
    log: LogStore,
}

impl NetworkFactory {
    /// A factory that resolves targets through `peers` and sends with `client`; AppendEntries
    /// round trips are timed into `stages`, and carry no commit index beyond what `log` holds
    /// on disk ([`LogStore::durable_commit`]).
    pub fn new(
        client: reqwest::Client,
        peers: PeerMap,
        stages: Arc<Stages>,
        log: LogStore,
    ) -> Self {
        Self {
            client,
            streams: StreamPool::default(),
            peers,
            stages,
            log,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConn;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerConn {
        PeerConn {
            client: self.client.clone(),
            streams: self.streams.clone(),
            peers: self.peers.clone(),
            target,
            member_addr: node.addr.clone(),
            stages: self.stages.clone(),
            log: self.log.clone(),
            last_answer: None,
            stream: Mutex::new(None),
        }
    }
}

/// The connection to one peer. The address is resolved on every call, so a peer map change
/// (a proxy put in front of a new member) takes effect at once.
pub struct PeerConn {
    client: reqwest::Client,
    /// Where the stream goes when this client is dropped, and where it finds one to start with.
    streams: StreamPool<reqwest::Upgraded>,
    peers: PeerMap,
    target: NodeId,
    member_addr: String,
    stages: Arc<Stages>,
    log: LogStore,
    /// When the last AppendEntries with entries was answered.
    last_answer: Option<std::time::Instant>,
    /// The append stream. Replaced after an error, when it is no longer usable and when the
    /// peer's address changes.
    stream: Mutex<Option<AppendStream<reqwest::Upgraded>>>,
}

fn net_err(e: &(impl std::error::Error + 'static)) -> RpcError {
    RpcError::Network(NetworkError::new(e))
}

/// A connection refused is `Unreachable` (openraft backs off); anything else may have reached
/// the peer.
fn send_err<E: std::error::Error>(e: reqwest::Error) -> RpcError<E> {
    if e.is_connect() {
        RpcError::Unreachable(Unreachable::new(&e))
    } else {
        RpcError::Network(NetworkError::new(&e))
    }
}

impl PeerConn {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let addr = self.peers.resolve(self.target, &self.member_addr);
        let body =
            postcard::to_allocvec(req).map_err(|e| RpcError::Network(NetworkError::new(&e)))?;
        let resp = self
            .client
            .post(format!("http://{addr}{path}"))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(send_err)?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RpcError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            let msg = format!("peer {} answered {status}", self.target);
            return Err(RpcError::Network(NetworkError::new(
                &std::io::Error::other(msg),
            )));
        }
        let res: Result<Resp, RaftError<E>> =
            postcard::from_bytes(&bytes).map_err(|e| RpcError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RpcError::RemoteError(RemoteError::new(self.target, e)))
    }

    /// Sends `rpc` on the append stream (opened first when there is none) and reads its
    /// answer, within `ttl`. Cancel-safe (openraft drops a call at its own timeout, the same
    /// `ttl`): see [`AppendStream`].
    async fn append(
        &mut self,
        rpc: &AppendRequest,
        ttl: Duration,
    ) -> Result<AppendResponse, RpcError> {
        let addr = self.peers.resolve(self.target, &self.member_addr);
        let target = self.target;
        let (client, streams) = (&self.client, &self.streams);
        // Never locked: `&mut self` is enough; the mutex only makes the connection `Sync`.
        let slot = self
            .stream
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|s| s.addr != addr || !s.usable()) {
            *slot = None;
        }
        let exchange = async {
            let stream = match slot {
                Some(stream) => stream,
                None => {
                    let stream = match streams.take(&addr) {
                        Some(idle) => idle,
                        None => {
                            let io = open_stream(client, target, &addr).await?;
                            AppendStream::new(addr.clone(), io)
                        }
                    };
                    slot.insert(stream)
                }
            };
            match stream
                .call::<_, Result<AppendResponse, RaftError>>(rpc)
                .await
            {
                Ok(answer) => {
                    Ok(answer.map_err(|e| RpcError::RemoteError(RemoteError::new(target, e))))
                }
                Err(e) => {
                    *slot = None;
                    Err(net_err(&e))
                }
            }
        };
        match tokio::time::timeout(ttl, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Err(e),
            Err(_) => {
                let msg = format!("peer {target} did not answer within {ttl:?}");
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, msg);
                Err(net_err(&e))
            }
        }
    }
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        let slot = self
            .stream
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = slot.take() {
            self.streams.put(s);
        }
    }
}

/// Asks the peer `target` at `addr` to upgrade a connection to an append stream.
async fn open_stream(
    client: &reqwest::Client,
    target: NodeId,
    addr: &str,
) -> Result<reqwest::Upgraded, RpcError> {
    use reqwest::header::{CONNECTION, UPGRADE};
    let resp = client
        .get(format!("http://{addr}{}", path::STREAM))
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, path::STREAM_PROTOCOL)
        .send()
        .await
        .map_err(send_err)?;
    let status = resp.status();
    if status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
        let msg = format!("peer {target} answered {status} to the append stream");
        return Err(net_err(&std::io::Error::other(msg)));
    }
    resp.upgrade().await.map_err(|e| net_err(&e))
}

impl RaftNetwork<TypeConfig> for PeerConn {
    async fn append_entries(
        &mut self,
        mut rpc: AppendRequest,
        option: RPCOption,
    ) -> Result<AppendResponse, RpcError> {
        rpc.leader_commit = self.log.durable_commit(rpc.leader_commit);
        let entries = rpc.entries.len();
        let started = std::time::Instant::now();
        if entries > 0
            && let Some(last) = self.last_answer
        {
            // Only a stream kept busy shows openraft's hand-over time, not an idle spell.
            let waited = started - last;
            if waited < Duration::from_millis(100) {
                self.stages.record(Stage::ReplicateWait, waited, entries);
            }
        }
        let res = self.append(&rpc, option.hard_ttl()).await;
        if entries > 0 && res.is_ok() {
            self.stages
                .record(Stage::Replicate, started.elapsed(), entries);
            self.last_answer = Some(std::time::Instant::now());
        } else if res.is_ok() {
            self.stages
                .record(Stage::ReplicateEmpty, started.elapsed(), 0);
        } else {
            self.last_answer = None;
        }
        res
    }

    async fn install_snapshot(
        &mut self,
        rpc: SnapshotRequest,
        option: RPCOption,
    ) -> Result<SnapshotResponse, RpcError<InstallSnapshotError>> {
        self.call(path::SNAPSHOT, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RpcError> {
        self.call(path::VOTE, &rpc, option.hard_ttl()).await
    }
}
