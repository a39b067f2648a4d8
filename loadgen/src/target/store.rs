//! [`TargetKind`] and [`Store`]: the stores raftdrill can drive, picked at run time.

use raftdrill_wire::Consistency;

use super::{CasResult, Target};
use crate::outcome::OpError;

/// Which store a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// raftdrill's own reference cluster.
    #[default]
    Reference,
    /// etcd (3.4, Debian's etcd-server), over its v3 JSON gateway.
    Etcd,
}

impl TargetKind {
    /// The spelling in scenario files, flags and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Reference => "reference",
            TargetKind::Etcd => "etcd",
        }
    }

    /// Whether the store offers a read consistency (etcd has no lease reads).
    pub fn supports(self, c: Consistency) -> bool {
        match self {
            TargetKind::Reference => true,
            TargetKind::Etcd => crate::etcd::EtcdCluster::supports(c),
        }
    }
}

impl std::str::FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reference" => Ok(TargetKind::Reference),
            "etcd" => Ok(TargetKind::Etcd),
            other => Err(format!(
                "unknown target {other:?} (expected reference or etcd)"
            )),
        }
    }
}

impl Store {
    /// The adapter of `kind` for `endpoints`, each operation bounded by `timeout`.
    pub fn new(
        kind: TargetKind,
        endpoints: &[String],
        timeout: std::time::Duration,
    ) -> Result<Store, super::TargetError> {
        Ok(match kind {
            TargetKind::Reference => {
                Store::Reference(crate::reference::ReferenceCluster::new(endpoints, timeout)?)
            }
            TargetKind::Etcd => Store::Etcd(crate::etcd::EtcdCluster::new(endpoints, timeout)?),
        })
    }
}

/// The stores raftdrill can drive, as one [`Target`]: the load, the final reads and
/// `raftdrill load --target` pick one at run time.
#[derive(Debug, Clone)]
pub enum Store {
    /// raftdrill's reference cluster.
    Reference(crate::reference::ReferenceCluster),
    /// etcd, over its v3 JSON gateway.
    Etcd(crate::etcd::EtcdCluster),
}

impl Target for Store {
    fn nodes(&self) -> usize {
        match self {
            Store::Reference(t) => t.nodes(),
            Store::Etcd(t) => t.nodes(),
        }
    }

    async fn get(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<String>, OpError> {
        match self {
            Store::Reference(t) => t.get(node, key, consistency).await,
            Store::Etcd(t) => t.get(node, key, consistency).await,
        }
    }

    async fn get_session(
        &self,
        node: usize,
        key: &str,
        min_index: u64,
    ) -> Result<(Option<String>, Option<u64>), OpError> {
        match self {
            Store::Reference(t) => t.get_session(node, key, min_index).await,
            Store::Etcd(t) => t.get_session(node, key, min_index).await,
        }
    }

    async fn put(&self, node: usize, key: &str, value: &str) -> Result<Option<u64>, OpError> {
        match self {
            Store::Reference(t) => t.put(node, key, value).await,
            Store::Etcd(t) => t.put(node, key, value).await,
        }
    }

    async fn cas(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> Result<CasResult, OpError> {
        match self {
            Store::Reference(t) => t.cas(node, key, expect, value).await,
            Store::Etcd(t) => t.cas(node, key, expect, value).await,
        }
    }
}
