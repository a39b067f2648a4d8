//! `raftdrill load`: load only, against a cluster raftdrill does not run. The flags become a
//! [`Scenario`] (no faults, no lost-write check), and the run goes through the drill's own
//! machinery: the same load configuration, snapshot collector, verdict, results folder and
//! final text as `raftdrill run`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use loadgen::thresholds::Thresholds;
use loadgen::{LoadModel, Plan, pool_for_rate};
use tokio_util::sync::CancellationToken;

use crate::cli::LoadArgs;
use crate::cmd::run::show_live;
use crate::drill::{Drill, RunOptions};
use crate::exit::Exit;
use crate::scenario::{Checks, ClusterSpec, LoadSpec, Scenario};

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

/// The scenario the flags describe.
pub fn scenario(args: &LoadArgs, thresholds: Thresholds) -> Result<Scenario, LoadCmdError> {
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
    if args.warmup >= args.duration {
        return Err(usage("--warmup must be shorter than --duration".into()));
    }
    if args.keys == 0 {
        return Err(usage("--keys must be at least 1".into()));
    }
    Ok(Scenario {
        name: "load".into(),
        description: args.endpoints.join(","),
        duration: args.duration,
        cluster: ClusterSpec {
            nodes: args.endpoints.len() as u64,
            target: args.target,
            ..ClusterSpec::default()
        },
        load: LoadSpec {
            workload: args.workload,
            keys: args.keys,
            distribution: args.distribution,
            value_size: args.value_size,
            model,
            plan,
            warmup: args.warmup,
            consistency: args.consistency,
            timeout: args.timeout,
            history: args.history,
            engine: args.engine,
            from: Vec::new(),
        },
        faults: Vec::new(),
        thresholds,
        checks: Checks {
            lost_writes: false,
            linearizability: args.history,
            ..Checks::default()
        },
        expect: None,
        hosts: None,
    })
}

/// Runs the load; `stop` (Ctrl-C) ends it early with what was measured.
pub async fn run(args: LoadArgs, stop: CancellationToken) -> Result<Exit, LoadCmdError> {
    let thresholds = match &args.thresholds {
        Some(p) => read_thresholds(p)?,
        None => Thresholds::default(),
    };
    let scenario = scenario(&args, thresholds)?;
    scenario.check_target().map_err(LoadCmdError::Usage)?;
    if args.stream {
        return stream(&args, &scenario, stop).await;
    }
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
    let outcome = show_live(drill, tui, stop)
        .await
        .map_err(|e| LoadCmdError::Run(e.to_string()))?;
    print!("{}", crate::report::terminal::run_text(&outcome.dir));
    Ok(outcome.exit)
}

/// `--stream`: the run for a controller on another machine. Every line on stdout is a
/// [`loadgen::stream::Line`]: the clock's origin, then every completed operation and each
/// second's histograms as they come, then the end report. The run stops early when stdin
/// closes (the controller is done, or gone) or on `stop`. The results folder keeps
/// `latency.hlog` (and `history.jsonl` with `--history`); the verdict is the controller's.
async fn stream(
    args: &LoadArgs,
    scenario: &Scenario,
    stop: CancellationToken,
) -> Result<Exit, LoadCmdError> {
    use loadgen::stream::{EndWire, IntervalWire, Line, OpWire};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = crate::drill::results_dir(args.out.as_deref(), "load", std::time::SystemTime::now());
    std::fs::create_dir_all(&dir)
        .map_err(|e| LoadCmdError::Run(format!("cannot create {}: {e}", dir.display())))?;
    let mut config = scenario.load_config(args.endpoints.clone(), Some(&dir), args.seed);
    config.goose_report = None;
    config.start_at = args
        .start_at_unix_us
        .map(|us| std::time::UNIX_EPOCH + std::time::Duration::from_micros(us));
    let mut load = loadgen::LoadRun::new(config).map_err(|e| match e {
        loadgen::LoadError::Config(m) => LoadCmdError::Usage(m),
        other => LoadCmdError::Run(other.to_string()),
    })?;
    let clock = load.clock();
    let mut ops = load.take_ops().expect("the scenario streams ops");
    let mut intervals = load.take_intervals();
    let (end_tx, end_rx) = tokio::sync::oneshot::channel::<EndWire>();
    // One writer owns stdout, so lines never interleave.
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
        let put = async |out: &mut tokio::io::BufWriter<tokio::io::Stdout>, line: Line| {
            out.write_all(line.to_json_line().as_bytes()).await
        };
        let origin = tokio::select! {
            _ = clock.started() => clock.origin_unix_us(),
            _ = intervals.recv() => None,
        };
        if let Some(unix_us) = origin {
            put(&mut out, Line::Origin { unix_us }).await?;
            out.flush().await?;
        }
        let (mut ops_open, mut secs_open, mut n) = (true, true, 0u32);
        while ops_open || secs_open {
            tokio::select! {
                op = ops.recv(), if ops_open => match op {
                    Some(op) => put(&mut out, Line::Op(OpWire::from(&op))).await?,
                    None => ops_open = false,
                },
                sec = intervals.recv(), if secs_open => match sec {
                    Some(sec) => {
                        n += 1;
                        let wire = IntervalWire::new(n, &sec)
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        put(&mut out, Line::Interval(wire)).await?;
                        out.flush().await?;
                    }
                    None => secs_open = false,
                },
            }
        }
        if let Ok(end) = end_rx.await {
            put(&mut out, Line::End(end)).await?;
        }
        out.flush().await
    });
    // Stdin closing is the controller's stop.
    let hangup = stop.child_token();
    let watcher = tokio::spawn({
        let hangup = hangup.clone();
        async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            hangup.cancel();
        }
    });
    let report = load.run(hangup).await;
    watcher.abort();
    let report = report.map_err(|e| LoadCmdError::Run(e.to_string()))?;
    let _ = end_tx.send(EndWire::from(&report));
    match writer.await {
        Ok(Ok(())) => Ok(Exit::Pass),
        Ok(Err(e)) => Err(LoadCmdError::Run(format!("the stream broke: {e}"))),
        Err(e) => Err(LoadCmdError::Run(format!("the stream writer failed: {e}"))),
    }
}
