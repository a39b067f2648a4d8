//! The openraft type configuration, declared once, and short aliases for the generic types.
//!
//! No other file spells out openraft's generics: they use these aliases.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A node id.
pub type NodeId = u64;

/// A replicated command, the `D` of the type config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `value` if it currently holds `expect` (`None`: absent).
    Cas {
        /// The key.
        key: String,
        /// The expected current value.
        expect: Option<String>,
        /// The new value.
        value: String,
    },
    /// Several client requests proposed as one entry (see `api::proposer`): applied in order,
    /// all at the entry's index. A batch never holds two requests for the same key, so each
    /// key's writes keep distinct indexes.
    Batch(Vec<Request>),
}

impl Request {
    /// The key the request touches (`None` for a batch).
    pub fn key(&self) -> Option<&str> {
        match self {
            Request::Put { key, .. } | Request::Delete { key } | Request::Cas { key, .. } => {
                Some(key)
            }
            Request::Batch(_) => None,
        }
    }
}

/// What applying a [`Request`] produced, the `R` of the type config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A blank or membership entry, or a put/delete.
    #[default]
    Done,
    /// The result of a compare-and-swap.
    Cas {
        /// Whether the swap happened.
        ok: bool,
        /// The value after the operation.
        current: Option<String>,
    },
    /// The results of a [`Request::Batch`], in its order.
    Batch(Vec<Response>),
}

openraft::declare_raft_types!(
    /// The type configuration of the reference KV node.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
/// A member's address record.
pub type Node = openraft::BasicNode;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// A membership as stored in the log or a snapshot.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
/// A snapshot with its data.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// The storage error openraft expects.
pub type StorageError = openraft::StorageError<NodeId>;
/// Log state (last purged and last log id).
pub type LogState = openraft::storage::LogState<TypeConfig>;
/// Raft metrics.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;

/// RPC and API error aliases.
pub mod err {
    use super::{Node, NodeId};
    pub use openraft::error::{
        CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, InitializeError,
        InstallSnapshotError, NetworkError, RemoteError, Unreachable,
    };
    /// A Raft API error.
    pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
    /// An RPC error as the network layer returns it.
    pub type RpcError<E = openraft::error::Infallible> =
        openraft::error::RPCError<NodeId, Node, RaftError<E>>;
    /// Error of a client write.
    pub type WriteError = RaftError<ClientWriteError<NodeId, Node>>;
    /// Error of a leadership check.
    pub type LeaderCheckError = RaftError<CheckIsLeaderError<NodeId, Node>>;
}

/// The peer RPC messages.
pub mod rpc {
    use super::{NodeId, TypeConfig};
    /// AppendEntries request.
    pub type AppendRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
    /// AppendEntries response.
    pub type AppendResponse = openraft::raft::AppendEntriesResponse<NodeId>;
    /// Vote request.
    pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
    /// Vote response.
    pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
    /// InstallSnapshot request (one chunk).
    pub type SnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
    /// InstallSnapshot response.
    pub type SnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;
}
