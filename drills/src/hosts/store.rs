//! What the hosts run: raftdrill's reference node (copied there), or etcd from the host's
//! `PATH`. The rest of the host machinery (pid files, signals, iptables cuts, logs) is the
//! same for both; here are the differences: the start line, the status call and the leftover
//! pattern.
//!
//! An etcd member on a host is named `m<id>`, listens for clients on the node port and for
//! peers on the node port + 1, keeps its data in `data_dir/data` and logs to `node.log`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use raftdrill_wire::Status;
use target_cluster::typ::NodeId;

use crate::etcd::EtcdOptions;
use crate::etcd::api::EtcdApi;
use crate::etcd::launch::{ClusterState, MemberInfo, member_args, member_name};
use crate::etcd::status::{IdMap, to_status};

/// The store the hosts run.
#[derive(Debug, Clone, Default)]
pub enum HostStore {
    /// `raftdrill node`, the binary copied to each host.
    #[default]
    Reference,
    /// `etcd` on each host's `PATH`, with these timings (etcd's defaults when `None`).
    Etcd {
        /// `--heartbeat-interval`.
        heartbeat: Option<Duration>,
        /// `--election-timeout`.
        election_timeout: Option<Duration>,
    },
}

impl HostStore {
    /// Whether this is etcd.
    pub fn is_etcd(&self) -> bool {
        matches!(self, HostStore::Etcd { .. })
    }
}

/// The peer address of an etcd member whose client address is `client`.
pub fn etcd_peer(client: SocketAddr) -> SocketAddr {
    SocketAddr::new(client.ip(), client.port().saturating_add(1))
}

/// The arguments of etcd member `id` of `members` (node id → client address), its data
/// under `data_dir`.
pub fn etcd_args(
    id: NodeId,
    members: &BTreeMap<NodeId, SocketAddr>,
    data_dir: &Path,
    store: &HostStore,
) -> Vec<String> {
    let (heartbeat, election_timeout) = match store {
        HostStore::Etcd {
            heartbeat,
            election_timeout,
        } => (*heartbeat, *election_timeout),
        HostStore::Reference => (None, None),
    };
    let initial: Vec<String> = members
        .iter()
        .map(|(m, client)| format!("{}=http://{}", member_name(*m), etcd_peer(*client)))
        .collect();
    let client = members[&id];
    let info = MemberInfo {
        id,
        name: member_name(id),
        client,
        peer_listen: etcd_peer(client),
        peer_advertised: etcd_peer(client),
        data_dir: data_dir.join("data"),
        wal_dir: None,
        log: data_dir.join("node.log"),
    };
    let opts = EtcdOptions {
        heartbeat,
        election_timeout,
        ..EtcdOptions::default()
    };
    member_args(
        &info,
        &initial.join(","),
        ClusterState::New,
        "raftdrill-hosts",
        &opts,
    )
}

/// The status of etcd member `id` at `url`, in node numbers (members are named `m<id>`).
pub async fn etcd_status(
    api: EtcdApi,
    url: String,
    id: NodeId,
    timeout: Duration,
) -> Option<Status> {
    let (status, members) = tokio::join!(api.status(&url, timeout), api.members(&url, timeout));
    let members = members.ok()?;
    let mut ids = IdMap::default();
    for m in &members {
        if let Some(n) = m
            .name
            .strip_prefix('m')
            .and_then(|n| n.parse::<NodeId>().ok())
        {
            ids.insert(n, m.id);
        }
    }
    Some(to_status(id, &status.ok()?, &members, &ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_name_each_other_and_listen_on_their_hosts() {
        let members: BTreeMap<NodeId, SocketAddr> = [
            (1, "198.18.0.11:7001".parse().unwrap()),
            (2, "198.18.0.12:7001".parse().unwrap()),
        ]
        .into();
        let store = HostStore::Etcd {
            heartbeat: Some(Duration::from_millis(100)),
            election_timeout: None,
        };
        let args = etcd_args(2, &members, Path::new("/srv/rd"), &store);
        for want in [
            "--name=m2",
            "--data-dir=/srv/rd/data",
            "--listen-client-urls=http://198.18.0.12:7001",
            "--listen-peer-urls=http://198.18.0.12:7002",
            "--initial-cluster=m1=http://198.18.0.11:7002,m2=http://198.18.0.12:7002",
            "--heartbeat-interval=100",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
    }
}
