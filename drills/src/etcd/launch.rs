//! How an etcd member is started: finding the binary, and the flags of one member.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use target_cluster::typ::NodeId;

use super::EtcdError;

/// How to run the members of a local etcd cluster.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    /// Number of initial members, node numbers `1..=members`.
    pub members: u64,
    /// The `etcd` binary; without it, `etcd` on `PATH`.
    pub binary: Option<PathBuf>,
    /// Root of the member data dirs (`member-<id>/`) and logs (`logs/<id>.log`); without it,
    /// a temporary folder removed when the cluster is dropped.
    pub data_dir: Option<PathBuf>,
    /// Folder for member logs, when it should differ from `<data_dir>/logs`.
    pub log_dir: Option<PathBuf>,
    /// Root of the members' WAL folders, when the WAL should not sit in the data dir: member
    /// `i` writes it in `<wal_root>/member-<i>/wal` (`--wal-dir`). Each `member-<i>` may be a
    /// mount point: etcd creates the WAL as `wal.tmp` and renames it, inside that folder.
    pub wal_root: Option<PathBuf>,
    /// `--heartbeat-interval`; etcd's default (100 ms) when not given.
    pub heartbeat: Option<Duration>,
    /// `--election-timeout`; etcd's default (1000 ms) when not given.
    pub election_timeout: Option<Duration>,
    /// Extra flags for every member (`--snapshot-count=1000`, ...).
    pub extra_flags: Vec<String>,
}

/// The etcd binary to run: `explicit` if given (it must exist), else `etcd` on `PATH`.
pub fn find_etcd(explicit: Option<&Path>) -> Result<PathBuf, EtcdError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(EtcdError::MissingBinary(path.display().to_string()))
        };
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("etcd"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| EtcdError::MissingBinary("etcd on PATH".into()))
}

/// Whether a member starts a new cluster or joins a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// `--initial-cluster-state new`: one of the initial members.
    New,
    /// `--initial-cluster-state existing`: added at run time through the member API.
    Existing,
}

/// The fixed facts of one member.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    /// raftdrill's node number.
    pub id: NodeId,
    /// `--name` (`m<id>`).
    pub name: String,
    /// Where it serves clients (and the gateway).
    pub client: SocketAddr,
    /// Where its peer listener is (the proxy forwards here).
    pub peer_listen: SocketAddr,
    /// Its advertised peer address: the proxy in front of `peer_listen`.
    pub peer_advertised: SocketAddr,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its WAL dir, when outside the data dir.
    pub wal_dir: Option<PathBuf>,
    /// Its log file.
    pub log: PathBuf,
}

impl MemberInfo {
    /// `http://` URL of the client listener.
    pub fn client_url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// `http://` URL other members reach it at (through its proxy).
    pub fn peer_url(&self) -> String {
        format!("http://{}", self.peer_advertised)
    }
}

/// The name etcd knows node `id` by.
pub fn member_name(id: NodeId) -> String {
    format!("m{id}")
}

/// The flags of `member`, joining a cluster of `initial_cluster` (`name=peer-url,...`).
pub fn member_args(
    member: &MemberInfo,
    initial_cluster: &str,
    state: ClusterState,
    token: &str,
    opts: &EtcdOptions,
) -> Vec<String> {
    let client = member.client_url();
    let mut args = vec![
        format!("--name={}", member.name),
        format!("--data-dir={}", member.data_dir.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls=http://{}", member.peer_listen),
        format!("--initial-advertise-peer-urls={}", member.peer_url()),
        format!("--initial-cluster={initial_cluster}"),
        format!(
            "--initial-cluster-state={}",
            match state {
                ClusterState::New => "new",
                ClusterState::Existing => "existing",
            }
        ),
        format!("--initial-cluster-token={token}"),
        // zap is 3.4's structured logger; the default (capnslog) is deprecated.
        "--logger=zap".into(),
        "--log-outputs=stderr".into(),
    ];
    if let Some(w) = &member.wal_dir {
        args.push(format!("--wal-dir={}", w.display()));
    }
    if let Some(h) = opts.heartbeat {
        args.push(format!("--heartbeat-interval={}", h.as_millis()));
    }
    if let Some(e) = opts.election_timeout {
        args.push(format!("--election-timeout={}", e.as_millis()));
    }
    args.extend(opts.extra_flags.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> MemberInfo {
        MemberInfo {
            id: 2,
            name: member_name(2),
            client: "127.0.0.1:2002".parse().unwrap(),
            peer_listen: "127.0.0.1:3002".parse().unwrap(),
            peer_advertised: "127.0.0.1:4002".parse().unwrap(),
            data_dir: "/d/member-2".into(),
            wal_dir: None,
            log: "/d/logs/2.log".into(),
        }
    }

    #[test]
    fn flags_advertise_the_proxy_and_listen_behind_it() {
        let opts = EtcdOptions::default();
        let args = member_args(
            &member(),
            "m2=http://127.0.0.1:4002",
            ClusterState::New,
            "t",
            &opts,
        );
        for want in [
            "--name=m2",
            "--listen-peer-urls=http://127.0.0.1:3002",
            "--initial-advertise-peer-urls=http://127.0.0.1:4002",
            "--advertise-client-urls=http://127.0.0.1:2002",
            "--initial-cluster-state=new",
            "--initial-cluster-token=t",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
        assert!(!args.iter().any(|a| a.starts_with("--heartbeat-interval")));
    }

    #[test]
    fn timings_are_passed_in_milliseconds_only_when_set() {
        let opts = EtcdOptions {
            heartbeat: Some(Duration::from_millis(50)),
            election_timeout: Some(Duration::from_millis(500)),
            extra_flags: vec!["--snapshot-count=100".into()],
            ..EtcdOptions::default()
        };
        let args = member_args(&member(), "x", ClusterState::Existing, "t", &opts);
        assert!(args.contains(&"--heartbeat-interval=50".to_string()));
        assert!(args.contains(&"--election-timeout=500".to_string()));
        assert!(args.contains(&"--initial-cluster-state=existing".to_string()));
        assert_eq!(args.last().unwrap(), "--snapshot-count=100");
    }

    #[test]
    fn a_missing_binary_names_the_debian_package() {
        let e = find_etcd(Some(Path::new("/nonexistent/etcd"))).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("etcd-server"), "{text}");
        assert!(text.contains("/nonexistent/etcd"), "{text}");
    }
}
