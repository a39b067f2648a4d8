//! The reference Raft key-value node of raftdrill, built on openraft 0.9.
//!
//! A node keeps a durable Raft log (a write-ahead log of its own), an in-memory key-value state
//! machine with durable snapshots, and serves three HTTP APIs on one listener: the client API
//! (`/kv/...`), the admin API (`/status`, `/healthz`, `/admin/...`) and the peer RPCs
//! (`/raft/...`, postcard bodies).
//!
//! # Layout
//! - [`typ`]: the openraft type config and the aliases every other module uses
//! - [`store`]: the log store and the state machine
//! - [`net`]: outgoing peer RPCs (the `RaftNetwork` impl) and the peer address map
//! - [`api`]: the HTTP handlers: client, admin and peer
//! - [`node`]: configuration, startup, bootstrap and graceful shutdown of one node
//! - [`election_gate`]: a follower that still hears from a leader does not campaign
#![deny(missing_docs)]

pub mod api;
pub mod election_gate;
pub mod net;
pub mod node;
pub mod stages;
pub mod store;
pub mod typ;

pub use node::{NodeConfig, NodeError, run};
