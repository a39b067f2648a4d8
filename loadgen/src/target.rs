//! The adapter between workloads and a store: the few calls a workload makes.
//!
//! The reference cluster's adapter is [`crate::reference::ReferenceCluster`]; another store
//! (etcd's v3 JSON gateway, say) needs only another implementation of [`Target`].

use std::future::Future;

use raftdrill_wire::Consistency;

use crate::outcome::OpError;

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
