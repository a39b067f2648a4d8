//! `raftdrill run`: load a scenario, run the drill, print the verdict.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::cmd::repeat::{self, RepeatOptions};
use crate::drill::{Drill, DrillError, DrillOutcome, RunOptions};
use crate::exit::Exit;
use crate::live::ViewSpec;
use crate::scenario::{DEFAULT, Scenario, ScenarioError, builtin};

/// Why `raftdrill run` stopped before a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario is unusable (exit 2; nothing was started).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The drill could not be carried out (exit 4).
    #[error(transparent)]
    Drill(#[from] DrillError),
    /// The folder's pages or aggregate could not be written (exit 4).
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// The hosts file is unusable, or the scenario asks what the hosts cannot do (exit 2;
    /// nothing was started).
    #[error("{0}")]
    Hosts(String),
    /// Ctrl-C or SIGTERM came before any run was made (exit 4).
    #[error("stopped before any run was made")]
    Stopped,
}

impl RunError {
    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            RunError::Scenario(_) | RunError::Hosts(_) => Exit::Usage,
            RunError::Drill(_) | RunError::Report(_) | RunError::Stopped => Exit::CannotRun,
        }
    }
}

/// Finds the scenario: a file if one exists at that path, else a built-in name.
pub fn load_scenario(arg: Option<&str>) -> Result<Scenario, ScenarioError> {
    let name = arg.unwrap_or(DEFAULT);
    if Path::new(name).exists() || name.ends_with(".toml") {
        return Scenario::from_file(Path::new(name));
    }
    builtin(name).unwrap_or_else(|| {
        Err(ScenarioError {
            origin: name.to_string(),
            place: "0:0".into(),
            message:
                "no such file, and no built-in scenario of that name (see `raftdrill scenarios`)"
                    .into(),
        })
    })
}

/// The scenario on `target` when `--target` gives one, checked for what that store can do.
pub fn with_target(
    mut scenario: Scenario,
    target: Option<loadgen::target::TargetKind>,
) -> Result<Scenario, ScenarioError> {
    if let Some(t) = target {
        scenario.cluster.target = t;
    }
    scenario.check_target().map_err(|message| ScenarioError {
        origin: scenario.name.clone(),
        place: "--target".into(),
        message,
    })?;
    Ok(scenario)
}

/// Whether the live view should be shown.
pub fn wants_tui(args: &RunArgs) -> bool {
    !args.no_tui && std::io::stdout().is_terminal()
}

/// The hosts to run on: `--hosts FILE` over the scenario's own `[[host]]` tables, checked
/// against what the scenario asks (`without_faults`: its faults will not run, as in a capacity
/// search without `--with-faults`). `[load] from` without hosts is an error. Exit 2 for each.
pub fn host_plan(
    scenario: &Scenario,
    file: Option<&std::path::Path>,
    port: u16,
    without_faults: bool,
) -> Result<Option<crate::drill::HostPlan>, RunError> {
    let hosts = match file {
        Some(path) => Some((
            crate::hosts::HostsFile::load(path).map_err(|e| RunError::Hosts(e.to_string()))?,
            path.display().to_string(),
        )),
        None => scenario
            .hosts
            .clone()
            .map(|f| (f, "the scenario's [[host]] tables".to_string())),
    };
    let Some((file, origin)) = hosts else {
        if !scenario.load.from.is_empty() {
            return Err(RunError::Hosts(format!(
                "{}: [load] from names hosts ({}); give them with --hosts FILE or [[host]] tables",
                scenario.name,
                scenario.load.from.join(", ")
            )));
        }
        return Ok(None);
    };
    let plan = crate::drill::HostPlan { file, port };
    let mut checked = scenario.clone();
    if without_faults {
        checked.faults.clear();
    }
    let refused = plan.refusals(&checked);
    if !refused.is_empty() {
        return Err(RunError::Hosts(format!(
            "{} cannot run on the hosts of {origin}: {}",
            scenario.name,
            refused.join("; ")
        )));
    }
    Ok(Some(plan))
}

/// Runs the drill; `stop` is cancelled by Ctrl-C or SIGTERM.
pub async fn run(args: RunArgs, exe: PathBuf, stop: CancellationToken) -> Result<Exit, RunError> {
    let scenario = with_target(load_scenario(args.scenario.as_deref())?, args.target)?;
    for line in crate::drill::disks::clean_stale_mounts() {
        eprintln!("raftdrill: {line}");
    }
    let tui = wants_tui(&args);
    let hosts = host_plan(&scenario, args.hosts.as_deref(), args.node_port, false)?;
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
        args.duration.unwrap_or(scenario.duration).as_secs()
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
        print!("{}", crate::report::terminal::repeat_text(&summary, &root));
        return Ok(exit);
    }
    let drill = tokio::select! {
        d = Drill::prepare(scenario, opts) => d?,
        _ = stop.cancelled() => return Ok(Exit::CannotRun),
    };
    let outcome = show_live(drill, tui, stop).await?;
    print!("{}", crate::report::terminal::run_text(&outcome.dir));
    Ok(outcome.exit)
}

/// Runs a prepared drill, with the live view on the terminal when `tui`. The view reads the
/// drill's channels at its own pace and returns once the drill is done (or gone); q and Ctrl-C
/// in it cancel `stop`, the same path as SIGINT.
pub async fn show_live(
    drill: Drill,
    tui: bool,
    stop: CancellationToken,
) -> Result<DrillOutcome, DrillError> {
    if !tui {
        return drill.run(stop).await;
    }
    let view = tokio::spawn(crate::live::run(
        ViewSpec::of(drill.scenario()),
        drill.watch(),
        stop.clone(),
    ));
    let outcome = drill.run(stop).await;
    match view.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("raftdrill: the live view failed: {e}"),
        Err(e) => eprintln!("raftdrill: the live view failed: {e}"),
    }
    outcome
}
