//! `raftdrill load`: load only, against a cluster raftdrill does not run. The flags become a
//! [`LoadSpec`] and that a [`Scenario`] (no faults, no lost-write check), and the run goes
//! through the drill's own machinery: the same load configuration, snapshot collector,
//! verdict, results folder and final text as `raftdrill run`. With `--stream` the spec comes
//! from a controller instead (`stream`).

mod stream;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use loadgen::thresholds::Thresholds;
use loadgen::{LoadModel, LoadSpec, Plan, pool_for_rate};
use tokio_util::sync::CancellationToken;

use crate::cli::LoadArgs;
use crate::drill::{Drill, RunOptions};
use crate::exit::Exit;
use crate::live::follow::follow;
use crate::scenario::{Checks, ClusterSpec, Scenario};

/// Why `raftdrill load` could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadCmdError {
    /// A flag or the thresholds file is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The results could not be written, or the load failed to start (exit 4).
    #[error("{0}")]
    Run(String),
}

impl LoadCmdError {
    /// The exit code.
    pub fn exit(&self) -> Exit {
        match self {
            LoadCmdError::Usage(_) => Exit::Usage,
            LoadCmdError::Run(_) => Exit::CannotRun,
        }
    }
}

/// Reads a thresholds file: metrics at the top level, or under `[thresholds]`.
pub fn read_thresholds(path: &Path) -> Result<Thresholds, LoadCmdError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadCmdError::Usage(format!("{}: cannot read: {e}", path.display())))?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| LoadCmdError::Usage(format!("{}: {}", path.display(), e.message())))?;
    if let Some(toml::Value::Table(t)) = table.remove("thresholds") {
        table = t;
    }
    let own = Thresholds::from_toml(table)
        .map_err(|e| LoadCmdError::Usage(format!("{}: {e}", path.display())))?;
    Ok(Thresholds::over_defaults(own))
}

/// The load the flags describe, judged by `thresholds`.
pub fn spec(args: &LoadArgs, thresholds: Thresholds) -> Result<LoadSpec, LoadCmdError> {
    let usage = |e: String| LoadCmdError::Usage(e);
    let plan = match (&args.ramp, &args.steps) {
        (Some(over), _) => Plan::Ramp { over: *over },
        (None, Some(steps)) => Plan::parse_steps(steps).map_err(|e| usage(e.to_string()))?,
        (None, None) => Plan::Constant,
    };
    let model = match (args.rate, args.users) {
        (Some(rate), _) if !(rate > 0.0 && rate.is_finite()) => {
            return Err(usage(format!(
                "--rate must be a positive number, got {rate}"
            )));
        }
        (Some(rate), _) => LoadModel::Open {
            rate,
            max_in_flight: match args.max_in_flight {
                Some(0) => return Err(usage("--max-in-flight must be at least 1".into())),
                Some(n) => n,
                None => pool_for_rate(plan.peak(rate)),
            },
        },
        (None, Some(0)) => return Err(usage("--users must be at least 1".into())),
        (None, Some(users)) => LoadModel::closed(users, args.think_time),
        (None, None) => return Err(usage("give --rate or --users".into())),
    };
    let duration = args
        .duration
        .ok_or_else(|| usage("give --duration".into()))?;
    if args.warmup >= duration {
        return Err(usage("--warmup must be shorter than --duration".into()));
    }
    if args.keys == 0 {
        return Err(usage("--keys must be at least 1".into()));
    }
    Ok(LoadSpec {
        workload: args.workload,
        keys: args.keys,
        distribution: args.distribution,
        value_size: args.value_size,
        model,
        plan,
        duration,
        warmup: args.warmup,
        consistency: args.consistency,
        timeout: args.timeout,
        history: args.history,
        engine: args.engine,
        thresholds,
    })
}

/// The scenario that runs `load` against the flags' endpoints.
pub fn scenario(args: &LoadArgs, load: LoadSpec) -> Scenario {
    Scenario {
        name: "load".into(),
        description: args.endpoints.join(","),
        cluster: ClusterSpec {
            nodes: args.endpoints.len() as u64,
            target: args.target,
            ..ClusterSpec::default()
        },
        checks: Checks {
            lost_writes: false,
            linearizability: load.history,
            ..Checks::default()
        },
        load,
        load_from: Vec::new(),
        faults: Vec::new(),
        expect: None,
        hosts: None,
    }
}

/// Runs the load; `stop` (Ctrl-C) ends it early with what was measured.
pub async fn run(args: LoadArgs, stop: CancellationToken) -> Result<Exit, LoadCmdError> {
    if args.stream {
        return stream::run(&args, stop).await;
    }
    let thresholds = match &args.thresholds {
        Some(p) => read_thresholds(p)?,
        None => Thresholds::default(),
    };
    let scenario = scenario(&args, spec(&args, thresholds)?);
    scenario.check_target().map_err(LoadCmdError::Usage)?;
    let tui = !args.no_tui && std::io::stdout().is_terminal();
    let opts = RunOptions {
        out: args.out.clone(),
        seed: args.seed,
        duration: None,
        exe: PathBuf::new(),
        direct_links: false,
        progress: !tui,
        etcd_bin: None,
        hosts: None,
    };
    let drill = Drill::attach(scenario, args.endpoints.clone(), opts).map_err(|e| match e {
        crate::drill::DrillError::Load(loadgen::LoadError::Config(m)) => LoadCmdError::Usage(m),
        other => LoadCmdError::Run(other.to_string()),
    })?;
    let metrics = crate::live::follow::metrics(args.metrics_listen.as_deref())
        .await
        .map_err(LoadCmdError::Run)?;
    let outcome = follow(drill, tui, metrics.as_ref(), stop)
        .await
        .map_err(|e| LoadCmdError::Run(e.to_string()))?;
    print!("{}", crate::report::terminal::run_text(&outcome.dir));
    Ok(outcome.exit)
}
