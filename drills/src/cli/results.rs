//! The flags of the commands that read results folders: `raftdrill compare`, `raftdrill
//! report` and `raftdrill check`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse_duration;
use crate::compare::rules::Limit;

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
    /// A limit on any figure the table prints, repeatable: FIGURE=+N% (may rise by) or
    /// FIGURE=-N% (may fall by). FIGURE is a name (p50_ms), the same without its unit (p50,
    /// busiest_node_cpu), or a pattern with * (p99.*, recovery.*.first_success_after); the
    /// later of two that name a figure holds, over the three defaults.
    #[arg(long = "limit", value_name = "FIGURE=±N%")]
    pub limits: Vec<Limit>,
}

/// `raftdrill report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder (summary.json, timeline.csv, nodes.csv), or a repeat's or a suite's.
    pub dir: PathBuf,
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

/// Parses a limit in percent: `10%` or `10`, zero or more (an increase may pass 100 %).
fn parse_limit_pct(s: &str) -> Result<f64, String> {
    loadgen::units::percent_value(s)
        .filter(|v| *v >= 0.0)
        .ok_or_else(|| format!("expected a percentage such as 10%, got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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
}
