//! `raftdrill run`: load a scenario, run the drill (or its repeats), print the verdict.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::CmdError;
use crate::cli::RunArgs;
use crate::cmd::repeat::{self, RepeatOptions};
use crate::drill::{Drill, HostPlan, RunOptions};
use crate::exit::Exit;
use crate::live::follow::{follow, metrics, wanted};
use crate::scenario::Scenario;

/// Runs the drill; `stop` is cancelled by Ctrl-C or SIGTERM.
pub async fn run(args: RunArgs, exe: PathBuf, stop: CancellationToken) -> Result<Exit, CmdError> {
    let scenario = Scenario::find(args.scenario.as_deref())?.on_target(args.target)?;
    for line in crate::placement::disks::clean_stale_mounts() {
        eprintln!("raftdrill: {line}");
    }
    let tui = wanted(args.no_tui);
    let metrics = metrics(args.metrics_listen.as_deref())
        .await
        .map_err(CmdError::CannotRun)?;
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
            metrics: metrics.map(std::sync::Arc::new),
        };
        let (summary, exit) = repeat::run(&scenario, &ropts, stop).await?;
        print!("{}", crate::report::terminal::repeat_text(&summary, &root));
        return Ok(exit);
    }
    let drill = tokio::select! {
        d = Drill::prepare(scenario, opts) => d?,
        _ = stop.cancelled() => return Ok(Exit::CannotRun),
    };
    let outcome = follow(drill, tui, metrics.as_ref(), stop).await?;
    print!("{}", crate::report::terminal::run_text(&outcome.dir));
    Ok(outcome.exit)
}
