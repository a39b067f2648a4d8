//! Outgoing peer traffic: the [`PeerMap`] of addresses and openraft's `RaftNetwork` over HTTP.
//!
//! Peer RPCs are HTTP/1.1 POSTs with postcard bodies on pooled keep-alive connections (one
//! `reqwest::Client` per node). HTTP rather than gRPC keeps one listener per node for the client,
//! admin and peer APIs, so one TCP proxy in front of a node's port carries every kind of
//! node-to-node traffic (RPCs and forwarded client requests) and a link fault cuts all of it.
//! The answer is a postcard `Result<Resp, RaftError>`, so Raft errors travel as data.

mod peers;

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use peers::PeerMap;

use crate::stages::{Stage, Stages};
use crate::store::LogStore;

use crate::typ::err::{RaftError, RpcError};
use crate::typ::rpc::{
    AppendRequest, AppendResponse, SnapshotRequest, SnapshotResponse, VoteRequest, VoteResponse,
};
use crate::typ::{Node, NodeId, TypeConfig};

/// Paths of the peer RPCs, shared by the client and the server side.
pub mod path {
    /// AppendEntries.
    pub const APPEND: &str = "/raft/append";
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
            peers: self.peers.clone(),
            target,
            member_addr: node.addr.clone(),
            stages: self.stages.clone(),
            log: self.log.clone(),
            last_answer: None,
        }
    }
}

/// The connection to one peer. The address is resolved on every call, so a peer map change
/// (a proxy put in front of a new member) takes effect at once.
pub struct PeerConn {
    client: reqwest::Client,
    peers: PeerMap,
    target: NodeId,
    member_addr: String,
    stages: Arc<Stages>,
    log: LogStore,
    /// When the last AppendEntries with entries was answered.
    last_answer: Option<std::time::Instant>,
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
            .map_err(|e| {
                if e.is_connect() {
                    RpcError::Unreachable(Unreachable::new(&e))
                } else {
                    RpcError::Network(NetworkError::new(&e))
                }
            })?;
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
        let res = self.call(path::APPEND, &rpc, option.hard_ttl()).await;
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
