//! `raftdrill run --repeat N` (and each scenario of `raftdrill suite --repeat N`): the same
//! scenario N times, each on a fresh cluster, with seeds s, s+1, ...; each run in its own
//! subfolder (`run-1/`, ...), then the aggregate summary of the whole repeat.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::CmdError;
use crate::drill::{Drill, RunOptions};
use crate::exit::Exit;
use crate::live::follow::follow;
use crate::report::repeat::RepeatSummary;
use crate::scenario::Scenario;

/// How to repeat.
#[derive(Debug, Clone)]
pub struct RepeatOptions {
    /// The repeat's folder; the runs go in subfolders.
    pub root: PathBuf,
    /// How many runs.
    pub times: u32,
    /// The first run's seed.
    pub seed: u64,
    /// Overrides the scenario's duration.
    pub duration: Option<Duration>,
    /// The raftdrill binary.
    pub exe: PathBuf,
    /// Show the live view (else progress lines).
    pub tui: bool,
    /// The etcd binary, for the etcd target.
    pub etcd_bin: Option<PathBuf>,
    /// Nodes on hosts, each run on a fresh start of them.
    pub hosts: Option<crate::drill::HostPlan>,
    /// Live metrics, following each run in turn.
    pub metrics: Option<std::sync::Arc<crate::live::metrics::Metrics>>,
}

/// Runs the repeat and writes its summary. Ctrl-C ends it after the run in progress (which
/// is then `aborted`), and the summary covers the runs that were made.
pub async fn run(
    scenario: &Scenario,
    opts: &RepeatOptions,
    stop: CancellationToken,
) -> Result<(RepeatSummary, Exit), CmdError> {
    let mut dirs = Vec::new();
    for i in 0..opts.times {
        if stop.is_cancelled() {
            break;
        }
        let dir = format!("run-{}", i + 1);
        let seed = opts.seed + u64::from(i);
        eprintln!(
            "raftdrill: {} run {}/{} (seed {seed})",
            scenario.name,
            i + 1,
            opts.times
        );
        let run = RunOptions {
            out: Some(opts.root.join(&dir)),
            seed,
            duration: opts.duration,
            exe: opts.exe.clone(),
            direct_links: false,
            progress: !opts.tui,
            etcd_bin: opts.etcd_bin.clone(),
            hosts: opts.hosts.clone(),
        };
        let drill = tokio::select! {
            d = Drill::prepare(scenario.clone(), run) => d?,
            _ = stop.cancelled() => break,
        };
        let outcome = follow(drill, opts.tui, opts.metrics.as_deref(), stop.clone()).await?;
        let s = &outcome.summary;
        eprintln!(
            "raftdrill: {} run {}: {} (exit {}), {:.1} ops/s, p99 {:.2} ms",
            scenario.name,
            i + 1,
            s.verdict,
            s.exit_code,
            s.measured.totals.tps,
            s.measured.latency_ms.overall.p99
        );
        dirs.push(dir);
    }
    if dirs.is_empty() {
        return Err(CmdError::Stopped);
    }
    let summary = RepeatSummary::build(&opts.root, &dirs)?;
    summary.write(&opts.root)?;
    let exit = if stop.is_cancelled() {
        Exit::CannotRun
    } else {
        Exit::from_code(summary.exit_code)
    };
    Ok((summary, exit))
}
