//! The flags of the commands that drive load alone: `raftdrill load` and `raftdrill
//! capacity`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use loadgen::keys::Distribution;
use loadgen::target::TargetKind;
use loadgen::{Engine, WorkloadKind};
use raftdrill_wire::Consistency;

use super::parse_duration;
use super::words::one_of;

/// `raftdrill load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Node URLs, comma-separated: http://127.0.0.1:7001,http://127.0.0.1:7002
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// What the endpoints are (for etcd: its client URLs, the v3 JSON gateway).
    #[arg(long, default_value = "reference", value_parser = one_of::<TargetKind>())]
    pub target: TargetKind,
    /// YCSB workload (e is left out: the API has no scans; w is update-only).
    #[arg(long, default_value = "a", value_parser = one_of::<WorkloadKind>())]
    pub workload: WorkloadKind,
    /// Open loop: operations per second.
    #[arg(
        long,
        conflicts_with = "users",
        required_unless_present_any = ["users", "stream"]
    )]
    pub rate: Option<f64>,
    /// Closed loop: concurrent users.
    #[arg(long)]
    pub users: Option<usize>,
    /// Closed loop: pause after each operation.
    #[arg(long, value_parser = parse_duration)]
    pub think_time: Option<Duration>,
    /// Length of the run.
    #[arg(long, value_parser = parse_duration, required_unless_present = "stream")]
    pub duration: Option<Duration>,
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
    /// Key distribution (default: the workload's).
    #[arg(long, value_parser = one_of::<Distribution>())]
    pub distribution: Option<Distribution>,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Read consistency (with session, each worker is a session).
    #[arg(long, default_value = "linearizable", value_parser = one_of::<Consistency>())]
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
    /// Worker engine: goose writes goose-report.html; tasks is lighter, with no goose report.
    #[arg(long, default_value = "goose", value_parser = one_of::<Engine>())]
    pub engine: Engine,
    /// For a controller (`[load] from`): the load comes as JSON on stdin's first line, and
    /// JSON lines go to stdout (every operation, each second's histograms, the end) instead
    /// of the live view; the run stops when stdin closes.
    #[arg(long)]
    pub stream: bool,
    /// Open loop: at most this many operations in flight (default: enough for the rate).
    #[arg(long, requires = "rate")]
    pub max_in_flight: Option<usize>,
    /// With --stream: start the clock at this moment (Unix microseconds, this host's clock).
    #[arg(long, requires = "stream")]
    pub start_at_unix_us: Option<u64>,
    /// Serve live OpenMetrics at http://ADDR/metrics while it runs (e.g. 127.0.0.1:9464; port
    /// 0 picks a free one, printed at the start).
    #[arg(long, value_name = "ADDR", value_parser = super::parse_listen)]
    pub metrics_listen: Option<String>,
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
    /// The store to measure, over the scenario's `[cluster] target`.
    #[arg(long, value_parser = one_of::<TargetKind>())]
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
    /// Serve live OpenMetrics at http://ADDR/metrics while it runs (e.g. 127.0.0.1:9464; port
    /// 0 picks a free one, printed at the start).
    #[arg(long, value_name = "ADDR", value_parser = super::parse_listen)]
    pub metrics_listen: Option<String>,
}
