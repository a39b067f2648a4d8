//! The adapter between workloads and a store: the few calls a workload makes.
//!
//! The reference cluster's adapter is [`crate::reference::ReferenceCluster`], etcd's is
//! [`crate::etcd::EtcdCluster`]; [`Store`] is either, picked at run time by [`TargetKind`].
//! An adapter writes one try of each call at one endpoint (`Attempts`); the client-side
//! failover around those tries, and with it the [`Target`] calls, is written once
//! (`failover`).
//!
//! # Layout
//! - this file: [`Target`], [`CasResult`], [`TargetError`]
//! - `failover`: an adapter's `Endpoints`, `Attempts`, and every adapter's [`Target`] calls
//!   with failover
//! - `store`: [`TargetKind`] and [`Store`]

mod failover;
mod store;

use std::future::Future;

use raftdrill_wire::Consistency;

use crate::outcome::OpError;

pub(crate) use failover::{Attempts, Endpoints};
pub use store::{Store, TargetKind};

/// The answer of a compare-and-swap that reached the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasResult {
    /// Whether the swap happened.
    pub swapped: bool,
    /// The value after the operation.
    pub current: Option<String>,
    /// The store's commit position of the operation (the Raft log index), when it says.
    pub index: Option<u64>,
}

/// A key-value store reachable through `nodes()` endpoints. `node` picks the endpoint, in
/// `0..nodes()`; every call ends within the adapter's timeout.
pub trait Target: Send + Sync + 'static {
    /// How many endpoints there are.
    fn nodes(&self) -> usize;

    /// Read `key`: `Ok(None)` when it does not exist.
    fn get(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> impl Future<Output = Result<Option<String>, OpError>> + Send;

    /// A session read of `key` ([`Consistency::Session`]): any endpoint serves it once it has
    /// applied the log up to `min_index`, with no leader round. On success, the value and the
    /// commit position of the write that produced it (`None` when the key does not exist), so a
    /// client can raise its `min_index` and never read back in time.
    fn get_session(
        &self,
        node: usize,
        key: &str,
        min_index: u64,
    ) -> impl Future<Output = Result<(Option<String>, Option<u64>), OpError>> + Send;

    /// Write `value` to `key`; on success, the store's commit position of the write (the Raft
    /// log index), when it reports one. The lost-write check orders acknowledged writes by it.
    fn put(
        &self,
        node: usize,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<Option<u64>, OpError>> + Send;

    /// Set `key` to `value` if it holds `expect` (`None`: if it does not exist).
    fn cas(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> impl Future<Output = Result<CasResult, OpError>> + Send;
}

/// The adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// No endpoint was given.
    #[error("no endpoints given")]
    NoEndpoints,
    /// An endpoint is not an http URL.
    #[error("bad endpoint {0:?}: expected http://HOST:PORT")]
    BadEndpoint(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}
