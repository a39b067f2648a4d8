//! The command line of `raftdrill`, parsed with clap. Parsing only: commands live in [`crate::cmd`].
//!
//! The doc comments below are the `--help` text, plain text as a terminal shows it: a
//! `results/<UTC time>-<name>/` or a `[[host]]` there is not HTML or a link.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use loadgen::keys::Distribution;
use loadgen::target::TargetKind;
use loadgen::{Engine, WorkloadKind};
use raftdrill_wire::Consistency;
use target_cluster::store::{FsyncPolicy, StoreKind};

/// raftdrill: load and fault drills for replicated stores.
#[derive(Debug, Parser)]
#[command(name = "raftdrill", version, about)]
pub struct Cli {
    /// What to do; without one, the default drill runs (leader-kill on 3 nodes).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a drill: a scenario file or a built-in name (default: leader-kill).
    Run(RunArgs),
    /// List the built-in scenarios.
    Scenarios,
    /// Drive load only, against a running cluster.
    Load(LoadArgs),
    /// Find the highest open-loop rate that meets the SLO.
    Capacity(CapacityArgs),
    /// Run a local reference cluster in the foreground until Ctrl-C.
    Cluster(ClusterArgs),
    /// Check a recorded history (a run folder or history.jsonl) for linearizability.
    Check(CheckArgs),
    /// Run every built-in scenario (or every scenario file of a folder) and write one index.
    Suite(SuiteArgs),
    /// Compare two results folders of the same kind: runs, repeats, suites or capacity searches.
    Compare(CompareArgs),
    /// Re-render report.md, report.html and the SVGs of a run folder from its files.
    Report(ReportArgs),
    /// Test hosts on this machine: network namespaces with their own sshd (as root).
    Testnet(TestnetArgs),
    /// Hosts reached over SSH: clean up what a crashed controller left on them.
    Hosts(HostsArgs),
    /// Run one reference node in this process (used by raftdrill itself).
    #[command(hide = true)]
    Node(NodeArgs),
    /// Serve one fault-injecting filesystem under a node's data dir (used by raftdrill itself).
    #[command(hide = true)]
    Faultfs(FaultfsArgs),
    /// Serve the link proxies of one node on its host, driven over stdin (used by raftdrill
    /// itself for link faults on hosts).
    #[command(hide = true)]
    Proxy(ProxyArgs),
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

/// `raftdrill run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// A scenario file, or the name of a built-in scenario (see `raftdrill scenarios`).
    pub scenario: Option<String>,
    /// Print one progress line per second instead of the live view.
    #[arg(long)]
    pub no_tui: bool,
    /// Write the results here instead of results/<UTC time>-<name>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the workload and of `any` targets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run for this long instead of the scenario's duration (e.g. 20s).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Wire nodes directly, without link proxies (to measure what the proxies cost; link faults
    /// then cannot fire).
    #[arg(long, hide = true)]
    pub direct_links: bool,
    /// The store to drill, over the scenario's `[cluster] target`: reference | etcd.
    #[arg(long)]
    pub target: Option<TargetKind>,
    /// The etcd binary (default: `etcd` on PATH; Debian's etcd-server package).
    #[arg(long)]
    pub etcd_bin: Option<PathBuf>,
    /// Run the nodes on these hosts over SSH, one per host (see `raftdrill testnet up`).
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// With --hosts: the port every node listens on at its host's address.
    #[arg(long, default_value_t = 7001)]
    pub node_port: u16,
    /// Run the scenario N times, each on a fresh cluster with seeds SEED, SEED+1, ...; each run
    /// in its own subfolder, with an aggregate summary.json (median, min, max, worst verdict).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
}

/// `raftdrill suite`.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Run each scenario N times (a repeat per scenario).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Only these scenarios, comma-separated (names of built-ins, or of files in --dir).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Run every scenario file (*.toml) of this folder instead of the built-in library.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Shorten (or stretch) every scenario to this length; fault times, fault lengths and the
    /// warmup scale with it, so every fault still fires and heals within the run.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Write the suite here instead of results/<UTC time>-suite/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the first run of each scenario.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `raftdrill compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The folder to compare against (the last release, say).
    pub base: PathBuf,
    /// The folder under judgement; compare.md and compare.json are written here.
    pub new: PathBuf,
    /// Exit 1 when a p99 latency grew by more than this, beyond noise.
    #[arg(long, default_value = "10%", value_parser = parse_limit_pct)]
    pub max_p99_increase: f64,
    /// Exit 1 when throughput (or a capacity) fell by more than this, beyond noise.
    #[arg(long, default_value = "5%", value_parser = parse_limit_pct)]
    pub max_tps_drop: f64,
    /// Exit 1 when a recovery time grew by more than this, beyond noise (or never came).
    #[arg(long, default_value = "20%", value_parser = parse_limit_pct)]
    pub max_recovery_increase: f64,
}

/// `raftdrill report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder (summary.json, timeline.csv, nodes.csv), or a repeat's or a suite's.
    pub dir: PathBuf,
}

/// `raftdrill capacity`.
#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// A scenario file or built-in name (its cluster and workload; default: baseline).
    pub scenario: Option<String>,
    /// The SLO each step must meet, e.g. "p99<800ms,success>=99.5%" (default: the warn levels
    /// of the scenario's threshold table).
    #[arg(long)]
    pub slo: Option<String>,
    /// Stop bisecting when the gap is within this, e.g. 5%.
    #[arg(long, default_value = "5%")]
    pub resolution: String,
    /// Measured window of each step (10 s: see results/baselines/capacity.md for the measurements).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub step_duration: Duration,
    /// Warmup before each step's window (1 s: only a step's first second runs off its rate).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub step_warmup: Duration,
    /// Rate of the first step, ops/s.
    #[arg(long, default_value_t = 50.0)]
    pub start_rate: f64,
    /// Carry the scenario's faults in every step (each on a fresh cluster).
    #[arg(long)]
    pub with_faults: bool,
    /// How long a step's backlog may take to drain before the search stops.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub settle_timeout: Duration,
    /// End with a closed-loop saturation run on the same cluster and report the answer as a
    /// fraction of it.
    #[arg(long)]
    pub verify: bool,
    /// Users of the closed-loop run of --verify (no think time).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub verify_users: u32,
    /// Print one line per step instead of the live view.
    #[arg(long)]
    pub no_tui: bool,
    /// Output folder instead of results/<UTC time>-capacity-<name>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Workload seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The store to measure, over the scenario's `[cluster] target`: reference | etcd.
    #[arg(long)]
    pub target: Option<TargetKind>,
    /// The etcd binary (default: `etcd` on PATH).
    #[arg(long)]
    pub etcd_bin: Option<PathBuf>,
    /// Run the nodes on these hosts over SSH (a hosts file: [[host]] tables), over the
    /// scenario's own; `[load] from` hosts drive the load.
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// With hosts: the port every node listens on at its host's address.
    #[arg(long, default_value_t = 7001)]
    pub node_port: u16,
}

/// `raftdrill check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A run folder holding history.jsonl, or a history.jsonl file.
    pub path: PathBuf,
    /// Give up on a key after this long; it is then reported unknown (exit 4).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub time_limit: Duration,
    /// Threads to check keys on (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `raftdrill load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Node URLs, comma-separated: http://127.0.0.1:7001,http://127.0.0.1:7002
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// What the endpoints are: reference | etcd (etcd's client URLs, v3 JSON gateway).
    #[arg(long, default_value = "reference")]
    pub target: TargetKind,
    /// YCSB workload: a b c d f w.
    #[arg(long, default_value = "a")]
    pub workload: WorkloadKind,
    /// Open loop: operations per second.
    #[arg(long, conflicts_with = "users", required_unless_present = "users")]
    pub rate: Option<f64>,
    /// Closed loop: concurrent users.
    #[arg(long)]
    pub users: Option<usize>,
    /// Closed loop: pause after each operation.
    #[arg(long, value_parser = parse_duration)]
    pub think_time: Option<Duration>,
    /// Length of the run.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,
    /// Ramp linearly to the rate (or users) over this long.
    #[arg(long, value_parser = parse_duration, conflicts_with = "steps")]
    pub ramp: Option<Duration>,
    /// Steps of levels, e.g. 100@10s,200@10s,400@10s (levels are rates or user counts).
    #[arg(long)]
    pub steps: Option<String>,
    /// Leading part left out of the judged figures.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Key space.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// uniform | zipfian | latest (default: the workload's).
    #[arg(long)]
    pub distribution: Option<Distribution>,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Read consistency: linearizable | lease | stale | session (each worker a session).
    #[arg(long, default_value = "linearizable")]
    pub consistency: Consistency,
    /// Per-request timeout.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub timeout: Duration,
    /// Threshold table: a TOML file of `metric = { warn = ..., break = ... }` (top level or
    /// under [thresholds]); default: the seed's table.
    #[arg(long)]
    pub thresholds: Option<PathBuf>,
    /// Write the results here instead of results/<UTC time>-load/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Record every operation to history.jsonl.
    #[arg(long)]
    pub history: bool,
    /// Seed of the operation sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one progress line per second instead of the live view.
    #[arg(long)]
    pub no_tui: bool,
    /// Worker engine: goose (writes goose-report.html) | tasks (lighter; no goose report).
    #[arg(long, default_value = "goose")]
    pub engine: Engine,
    /// For a controller (`[load] from`): JSON lines on stdout (every operation, each second's
    /// histograms, the end) instead of the live view; the run stops when stdin closes.
    #[arg(long)]
    pub stream: bool,
    /// Open loop: at most this many operations in flight (default: enough for the rate).
    #[arg(long, requires = "rate")]
    pub max_in_flight: Option<usize>,
    /// With --stream: start the clock at this moment (Unix microseconds, this host's clock).
    #[arg(long, requires = "stream")]
    pub start_at_unix_us: Option<u64>,
}

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
    /// Storage engine of every node: disk | memory.
    #[arg(long, default_value = "disk")]
    pub store: StoreKind,
    /// Fsync policy of every node: always | never.
    #[arg(long, default_value = "always")]
    pub fsync: FsyncPolicy,
    /// The store to run: reference | etcd.
    #[arg(long, default_value = "reference")]
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

/// Where `raftdrill testnet` keeps its keys and sshd configs.
pub const TESTNET_DIR: &str = "/tmp/raftdrill-testnet";

/// `raftdrill testnet`.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// up or down.
    #[command(subcommand)]
    pub action: TestnetAction,
}

/// What `raftdrill testnet` does.
#[derive(Debug, Subcommand)]
pub enum TestnetAction {
    /// Make N namespace hosts on a bridge (198.18.0.0/15), each with its own sshd, and write
    /// a hosts file for `--hosts`.
    Up {
        /// How many hosts.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=32))]
        hosts: u64,
        /// The hosts file to write.
        #[arg(long, default_value = "hosts.toml")]
        out: PathBuf,
        /// Where the keys and sshd configs live.
        #[arg(long, default_value = TESTNET_DIR)]
        dir: PathBuf,
    },
    /// Remove the namespaces, the bridge, every process in them, the keys and the hosts file.
    Down {
        /// The folder `up` used.
        #[arg(long, default_value = TESTNET_DIR)]
        dir: PathBuf,
    },
}

/// `raftdrill hosts`.
#[derive(Debug, Args)]
pub struct HostsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: HostsAction,
}

/// What `raftdrill hosts` does.
#[derive(Debug, Subcommand)]
pub enum HostsAction {
    /// Stop raftdrill's nodes and remove raftdrill's iptables rules on every host of the file.
    Heal {
        /// The hosts file.
        #[arg(long)]
        hosts: PathBuf,
    },
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
    /// Storage engine: disk | memory.
    #[arg(long, default_value = "disk")]
    pub store: StoreKind,
    /// Fsync policy of the log: always | never.
    #[arg(long, default_value = "always")]
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

/// Bootstrap members with optional addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members(pub Vec<(u64, Option<String>)>);

/// Parses `50ms`, `1.5s`, `1m30s` (the one duration parser, shared with scenario files).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    loadgen::units::parse_duration(s)
}

/// Parses a limit in percent: `10%` or `10`, zero or more (an increase may pass 100 %).
fn parse_limit_pct(s: &str) -> Result<f64, String> {
    let t = s.trim();
    match t.strip_suffix('%').unwrap_or(t).trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a percentage such as 10%, got {s:?}")),
    }
}

fn parse_ms_or_duration(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => parse_duration(s),
    }
}

fn parse_range(s: &str) -> Result<(Duration, Duration), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected MIN..MAX, got {s:?}"))?;
    let (a, b) = (parse_ms_or_duration(a)?, parse_ms_or_duration(b)?);
    if a.is_zero() || a >= b {
        return Err(format!("need 0 < MIN < MAX, got {s:?}"));
    }
    Ok((a, b))
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
    fn compare_limits_and_suite_lists_parse() {
        let cli = Cli::try_parse_from([
            "raftdrill",
            "compare",
            "a",
            "b",
            "--max-p99-increase",
            "150%",
        ])
        .unwrap();
        let Some(Command::Compare(c)) = cli.command else {
            panic!("not compare")
        };
        assert_eq!(
            (c.max_p99_increase, c.max_tps_drop, c.max_recovery_increase),
            (150.0, 5.0, 20.0)
        );
        assert!(parse_limit_pct("-1%").is_err() && parse_limit_pct("x").is_err());
        let cli =
            Cli::try_parse_from(["raftdrill", "suite", "--only", "baseline,leader-kill"]).unwrap();
        let Some(Command::Suite(s)) = cli.command else {
            panic!("not suite")
        };
        assert_eq!(s.only, ["baseline", "leader-kill"]);
        assert!(Cli::try_parse_from(["raftdrill", "run", "--repeat", "0"]).is_err());
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
