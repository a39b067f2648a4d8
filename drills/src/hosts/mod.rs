//! Drills beyond one machine: nodes on hosts reached over SSH, link faults by iptables on the
//! hosts, and test hosts on this machine in network namespaces (`raftdrill testnet`). The hosts
//! file itself is an input, read with the scenarios (`crate::scenario::hosts_file`).

pub mod cluster;
pub mod cpu;
pub mod links;
pub mod load;
pub mod node;
pub mod shaping;
pub mod ssh;
pub mod testnet;

pub use crate::scenario::hosts_file::{HostSpec, HostsFile, HostsFileError, SshTarget};
pub use cluster::{HostCluster, HostOptions};
pub use load::{LoadHost, LoadHosts};
pub use node::HostNode;
pub use ssh::{Ssh, SshError};

use std::time::Duration;

use target_cluster::typ::NodeId;

/// How long one control command may take (a copy of the binary gets longer).
pub(crate) const CALL: Duration = Duration::from_secs(15);

/// Driving nodes on hosts failed.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// An SSH call failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A host is not fit to run a node (checked before anything starts).
    #[error("host {host}: {detail}")]
    Unfit {
        /// The host's name.
        host: String,
        /// What is wrong.
        detail: String,
    },
    /// Something on this machine failed.
    #[error("{0}")]
    Local(String),
    /// No leader within the deadline.
    #[error("no leader was elected on the hosts within {0:?}")]
    NoLeader(Duration),
    /// Unknown node id.
    #[error("there is no node {0}")]
    UnknownNode(NodeId),
}

/// The later of two moments hosts reported.
pub fn later(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}
