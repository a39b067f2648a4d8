//! Drills beyond one machine: nodes on hosts reached over SSH, link faults by iptables on the
//! hosts, and test hosts on this machine in network namespaces (`raftdrill testnet`).

pub mod cluster;
pub mod cpu;
pub mod file;
pub mod links;
pub mod load;
pub mod shaping;
pub mod ssh;
pub mod testnet;

pub use cluster::{HostCluster, HostNode, HostOptions, HostsError};
pub use file::{HostSpec, HostsFile, HostsFileError};
pub use load::{LoadHost, LoadHosts};
pub use ssh::{Ssh, SshError};
