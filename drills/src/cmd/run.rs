//! `raftdrill run`: load a scenario, run the drill (or its repeats), print the verdict.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::CmdError;
use crate::cli::RunArgs;
use crate::cmd::repeat::{self, RepeatOptions};
use crate::drill::results::Summary;
use crate::drill::{Drill, HostPlan, RunOptions};
use crate::exit::Exit;
use crate::live::follow::{follow, wanted};
use crate::scenario::Scenario;

/// Runs the drill; `stop` is cancelled by Ctrl-C or SIGTERM.
pub async fn run(args: RunArgs, exe: PathBuf, stop: CancellationToken) -> Result<Exit, CmdError> {
    let scenario = Scenario::find(args.scenario.as_deref())?.on_target(args.target)?;
    for line in crate::placement::disks::clean_stale_mounts() {
        eprintln!("raftdrill: {line}");
    }
    let tui = wanted(args.no_tui);
    let hosts = HostPlan::for_run(&scenario, args.hosts.as_deref(), args.node_port, false)
        .map_err(CmdError::Usage)?;
    let opts = RunOptions {
        out: args.out.clone(),
        seed: args.seed,
        duration: args.duration,
        exe,
        direct_links: args.direct_links,
        // Progress lines on stderr would scribble over the live view.
        progress: !tui,
        etcd_bin: args.etcd_bin.clone(),
        hosts,
    };
    eprintln!(
        "raftdrill: {} ({}), {} nodes, {}s",
        scenario.name,
        scenario.description,
        scenario.cluster.nodes,
        args.duration.unwrap_or(scenario.load.duration).as_secs()
    );
    if let Some(times) = args.repeat {
        let root = crate::drill::results_dir(
            args.out.as_deref(),
            &format!("{}-x{times}", scenario.name),
            std::time::SystemTime::now(),
        );
        let ropts = RepeatOptions {
            root: root.clone(),
            times,
            seed: args.seed,
            duration: args.duration,
            exe: opts.exe,
            tui,
            etcd_bin: opts.etcd_bin,
            hosts: opts.hosts,
        };
        let (summary, exit) = repeat::run(&scenario, &ropts, stop).await?;
        print!("{}", repeat::final_text(&summary, &root));
        return Ok(exit);
    }
    let drill = tokio::select! {
        d = Drill::prepare(scenario, opts) => d?,
        _ = stop.cancelled() => return Ok(Exit::CannotRun),
    };
    let outcome = follow(drill, tui, stop).await?;
    print!("{}", final_text(&outcome.summary, &outcome.dir));
    Ok(outcome.exit)
}

/// The final summary printed at the end of a run.
pub fn final_text(s: &Summary, dir: &Path) -> String {
    let mut o = String::new();
    let t = &s.measured.totals;
    let l = &s.measured.latency_ms.overall;
    let _ = writeln!(
        o,
        "\n{} — {} ops, {:.1} ops/s, {} errors",
        s.scenario, t.ops, t.tps, t.errors
    );
    let _ = writeln!(
        o,
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        l.p50, l.p90, l.p99, l.p999, l.max
    );
    let _ = writeln!(
        o,
        "\n  {:<14} {:>10} {:>10} {:>10}  status",
        "threshold", "warn", "break", "observed"
    );
    for th in &s.measured.thresholds {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            o,
            "  {:<14} {:>10} {:>10} {:>10}  {}",
            th.metric.as_str(),
            f(th.warn),
            f(th.brk),
            f(th.observed),
            th.status.mark()
        );
    }
    if !s.faults.is_empty() {
        let _ = writeln!(o, "\n  faults:");
        for (n, f) in s.faults.iter().enumerate() {
            let r = s.recovery.iter().find(|r| r.fault == n);
            let fig = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}s"));
            let nodes: Vec<String> = f.resolved.iter().map(u64::to_string).collect();
            let never = r
                .filter(|r| !r.figures.unrecovered.is_empty())
                .map(|r| format!(" (never recovered: {})", r.figures.unrecovered.join(", ")))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} t={:.1}s {} {} [{}]: new leader {}, first success {}, 90% tps {}{never}{}",
                r.map_or("✗", |r| r.status.mark()),
                f.at_s,
                f.action,
                f.target,
                nodes.join(","),
                fig(r.and_then(|r| r.figures.leader_elected_after_s)),
                fig(r.and_then(|r| r.figures.first_success_after_s)),
                fig(r.and_then(|r| r.figures.tps_90pct_after_s)),
                f.error
                    .as_deref()
                    .map(|e| format!(" (could not fire: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    match &s.checks.lost_writes {
        Some(lw) => {
            let mark = match lw.status {
                crate::check::CheckStatus::Ok => "✓",
                crate::check::CheckStatus::Lost => "✗",
                crate::check::CheckStatus::Unknown => "? unknown:",
            };
            let _ = writeln!(
                o,
                "\n  lost writes: {mark} {} (acked {}, keys {}, verified {}, unreadable {})",
                lw.lost, lw.acked, lw.keys_checked, lw.verified, lw.unreadable
            );
        }
        None => {
            let _ = writeln!(o, "\n  lost writes: not checked");
        }
    }
    for r in &s.reasons {
        let _ = writeln!(o, "  - {r}");
    }
    let _ = writeln!(
        o,
        "\nverdict: {} (exit {})  results: {}",
        s.verdict,
        s.exit_code,
        dir.display()
    );
    o
}
