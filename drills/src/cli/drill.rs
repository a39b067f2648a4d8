//! The flags of the drills: `raftdrill run` and `raftdrill suite`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use loadgen::target::TargetKind;

use super::parse_duration;
use super::words::one_of;

/// `raftdrill run`.
#[derive(Debug, Args)]
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
    /// The store to drill, over the scenario's `[cluster] target`.
    #[arg(long, value_parser = one_of::<TargetKind>())]
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
    /// Serve live OpenMetrics at http://ADDR/metrics while it runs (e.g. 127.0.0.1:9464; port
    /// 0 picks a free one, printed at the start).
    #[arg(long, value_name = "ADDR", value_parser = super::parse_listen)]
    pub metrics_listen: Option<String>,
}

impl Default for RunArgs {
    /// What `raftdrill run` with no flags gets, clap's defaults included (seed 1): the default
    /// drill (no subcommand) is the same drill as `raftdrill run`.
    fn default() -> Self {
        use clap::{Args as _, FromArgMatches as _};
        let matches = RunArgs::augment_args(clap::Command::new("run")).get_matches_from(["run"]);
        RunArgs::from_arg_matches(&matches).expect("no flags parse")
    }
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn the_default_drill_is_raftdrill_run_with_no_flags() {
        let Some(Command::Run(run)) = Cli::parse_from(["raftdrill", "run"]).command else {
            panic!("not a run")
        };
        let default = RunArgs::default();
        assert_eq!(default.seed, 1);
        assert_eq!(format!("{default:?}"), format!("{run:?}"));
    }
}
