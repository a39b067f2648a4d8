//! The flags of the commands that run nodes: `raftdrill cluster`, and the ones raftdrill
//! runs itself (`node`, `faultfs`, `proxy`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use loadgen::target::TargetKind;
use loadgen::units::{RangeError, parse_duration_range};
use target_cluster::store::{FsyncPolicy, StoreKind};

use super::parse_duration;
use super::words::one_of;

/// `raftdrill cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Node i listens on BASE_PORT + i - 1 (default: free ports).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Keep node data here (default: a temporary folder removed at exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Storage engine of every node.
    #[arg(long, default_value = "disk", value_parser = one_of::<StoreKind>())]
    pub store: StoreKind,
    /// Fsync policy of every node.
    #[arg(long, default_value = "always", value_parser = one_of::<FsyncPolicy>())]
    pub fsync: FsyncPolicy,
    /// The store to run.
    #[arg(long, default_value = "reference", value_parser = one_of::<TargetKind>())]
    pub target: TargetKind,
    /// The etcd binary (default: `etcd` on PATH).
    #[arg(long)]
    pub etcd_bin: Option<PathBuf>,
    /// Run the nodes on these hosts over SSH (a hosts file; see `raftdrill testnet up`).
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// With --hosts: the port every node listens on at its host's address.
    #[arg(long, default_value_t = 7001, requires = "hosts")]
    pub node_port: u16,
}

/// `raftdrill node`: one reference node.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Node id (≥ 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// HTTP listen address (client, admin and peer APIs).
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,
    /// Address recorded in the membership for this node (default: --listen).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Data folder of the disk store.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Storage engine.
    #[arg(long, default_value = "disk", value_parser = one_of::<StoreKind>())]
    pub store: StoreKind,
    /// Fsync policy of the log.
    #[arg(long, default_value = "always", value_parser = one_of::<FsyncPolicy>())]
    pub fsync: FsyncPolicy,
    /// Where to send traffic for peer ID (repeatable): `--peer 2=127.0.0.1:7002`.
    #[arg(long = "peer", value_name = "ID=HOST:PORT", value_parser = parse_peer)]
    pub peers: Vec<(u64, String)>,
    /// Bootstrap members, `1,2,3` (addresses from --peer) or `1=HOST:PORT,2=...`; the lowest id
    /// initializes the cluster once.
    #[arg(long, value_parser = parse_members)]
    pub initial_members: Option<Members>,
    /// Leader heartbeat interval.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Election timeout range, `MIN..MAX` (milliseconds, or with units: `150ms..300ms`).
    #[arg(long, default_value = "150..300", value_parser = parse_range)]
    pub election_timeout: (Duration, Duration),
    /// Build a snapshot every N applied entries.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: u64,
    /// Deadline of a client request; a write not committed by then answers 504.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Testing aid: sleep this long per applied entry, to plant a known capacity limit.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    pub apply_delay: Duration,
    /// Planted bug, for proving the linearizability checker: serve linearizable reads from
    /// this node's own state, with no ReadIndex and no forwarding.
    #[arg(long)]
    pub unsafe_reads: bool,
    /// Planted bug, for raftdrill's own tests of the lost-write check: after a failed fsync,
    /// sync the same log segment again and carry on (PostgreSQL's behaviour before
    /// "fsyncgate") instead of stopping the node. Hidden: never for a real run.
    #[arg(long, hide = true)]
    pub unsafe_fsync_retry: bool,
    /// File holding the run's token (16-256 visible ASCII characters); admin and peer calls
    /// without it are refused. A file, never the command line, so `ps` does not show it.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// With --token-file: the client API (`/kv/...`) needs the token too.
    #[arg(long, requires = "token_file")]
    pub client_auth: bool,
    /// Async runtime worker threads (the log writer has a thread of its own). One suits three
    /// nodes sharing a small machine: every hand-over between the node's tasks stays on one
    /// thread (see results/baselines/cluster-vs-etcd.md); give a node alone on a host more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
}

/// `raftdrill faultfs`: one fault-injecting FUSE filesystem (see the raftdrill-faultfs crate).
#[derive(Debug, Args)]
pub struct FaultfsArgs {
    /// The real directory underneath; it holds exactly what is durable.
    #[arg(long)]
    pub backing: PathBuf,
    /// Where to mount it (the node's data directory).
    #[arg(long)]
    pub mount: PathBuf,
    /// The control socket to create (line-delimited JSON).
    #[arg(long)]
    pub control: PathBuf,
    /// Written with the control socket's path once the mount is live.
    #[arg(long)]
    pub ready: Option<PathBuf>,
    /// FUSE worker threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
}

/// `raftdrill proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// A link: TO=LISTEN,UPSTREAM (the node `TO`'s address behind a proxy on LISTEN).
    #[arg(long = "link", required = true, value_parser = parse_proxy_link)]
    pub links: Vec<(u64, SocketAddr, SocketAddr)>,
}

fn parse_proxy_link(s: &str) -> Result<(u64, SocketAddr, SocketAddr), String> {
    crate::proxy::remote::parse_link(s)
}

/// Bootstrap members with optional addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members(pub Vec<(u64, Option<String>)>);

fn parse_ms_or_duration(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => parse_duration(s),
    }
}

fn parse_range(s: &str) -> Result<(Duration, Duration), String> {
    parse_duration_range(s, parse_ms_or_duration).map_err(|e| match e {
        RangeError::Shape => format!("expected MIN..MAX, got {s:?}"),
        RangeError::Bound(message) => message,
        RangeError::Order => format!("need 0 < MIN < MAX, got {s:?}"),
    })
}

fn parse_id(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("bad node id {s:?}: ids are integers ≥ 1")),
        Ok(id) => Ok(id),
    }
}

fn parse_peer(s: &str) -> Result<(u64, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=HOST:PORT, got {s:?}"))?;
    if !addr.contains(':') {
        return Err(format!("expected HOST:PORT after '=', got {addr:?}"));
    }
    Ok((parse_id(id)?, addr.trim().to_string()))
}

fn parse_members(s: &str) -> Result<Members, String> {
    let members = s
        .split(',')
        .map(|m| match m.split_once('=') {
            Some(_) => parse_peer(m).map(|(id, a)| (id, Some(a))),
            None => parse_id(m).map(|id| (id, None)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Members(members))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn election_timeout_accepts_bare_milliseconds_and_units() {
        let ms = Duration::from_millis;
        assert_eq!(parse_range("150..300").unwrap(), (ms(150), ms(300)));
        assert_eq!(parse_range("150ms..1s").unwrap(), (ms(150), ms(1000)));
        assert!(parse_range("300..150").is_err());
        assert!(parse_range("300").is_err());
    }

    #[test]
    fn members_take_ids_or_ids_with_addresses() {
        assert_eq!(
            parse_members("1,2,3").unwrap().0,
            vec![(1, None), (2, None), (3, None)]
        );
        assert_eq!(
            parse_members("1=127.0.0.1:1,2").unwrap().0,
            vec![(1, Some("127.0.0.1:1".into())), (2, None)]
        );
        assert!(parse_members("0,1").is_err());
        assert!(parse_peer("2=nohost").is_err());
    }

    #[test]
    fn cli_parses_a_node_command_line() {
        let cli = Cli::try_parse_from([
            "raftdrill",
            "node",
            "--id",
            "2",
            "--peer",
            "1=127.0.0.1:7001",
            "--peer",
            "3=127.0.0.1:7003",
            "--initial-members",
            "1,2,3",
            "--store",
            "memory",
        ])
        .unwrap();
        let Some(Command::Node(n)) = cli.command else {
            panic!("not a node command")
        };
        assert_eq!(n.peers.len(), 2);
        assert_eq!(n.store, StoreKind::Memory);
        assert_eq!(n.heartbeat, Duration::from_millis(50));
    }
}
