//! `raftdrill load`: load only, against a running cluster, with the results folder and the
//! k6-like final summary.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use loadgen::output::{LoadSummary, TimelineRow, TimelineWriter, text_summary, write_hgrm_files};
use loadgen::thresholds::{Observed, Status, Thresholds, worst};
use loadgen::{LoadConfig, LoadModel, LoadRun, Plan, Snapshot, WorkloadKind, WorkloadSpec};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use std::io::IsTerminal;

use tokio::sync::watch;

use crate::cli::{ConsistencyArg, LoadArgs};
use crate::drill::poller::ClusterView;
use crate::drill::{DrillWatch, Phase, folder_stamp, in_flight_for};
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

/// `summary.json` of a load-only run.
#[derive(Debug, Serialize)]
struct Summary {
    scenario: &'static str,
    started_at: String,
    duration_s: f64,
    warmup_s: f64,
    seed: u64,
    endpoints: Vec<String>,
    load: serde_json::Value,
    #[serde(flatten)]
    measured: LoadSummary,
    counts: loadgen::metrics::Counts,
    verdict: &'static str,
    exit_code: u8,
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
    let mut merged = Thresholds::default();
    merged.0.extend(own.0);
    Ok(merged)
}

fn config(args: &LoadArgs) -> Result<LoadConfig, LoadCmdError> {
    let usage = |e: String| LoadCmdError::Usage(e);
    let mut spec = WorkloadSpec::new(args.workload.parse::<WorkloadKind>().map_err(usage)?);
    spec.keys = args.keys;
    spec.distribution = args
        .distribution
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(usage)?;
    spec.value_size = args.value_size;
    spec.consistency = match args.consistency {
        ConsistencyArg::Linearizable => raftdrill_wire::Consistency::Linearizable,
        ConsistencyArg::Lease => raftdrill_wire::Consistency::Lease,
        ConsistencyArg::Stale => raftdrill_wire::Consistency::Stale,
    };
    spec.seed = args.seed;
    let plan = match (&args.ramp, &args.steps) {
        (Some(over), _) => Plan::Ramp { over: *over },
        (None, Some(steps)) => {
            Plan::parse_steps(steps).map_err(|e| LoadCmdError::Usage(e.to_string()))?
        }
        (None, None) => Plan::Constant,
    };
    let model = match (args.rate, args.users) {
        (Some(rate), _) if !(rate > 0.0 && rate.is_finite()) => {
            return Err(LoadCmdError::Usage(format!(
                "--rate must be a positive number, got {rate}"
            )));
        }
        (Some(rate), _) => LoadModel::Open {
            rate,
            max_in_flight: in_flight_for(plan.peak(rate)),
        },
        (None, Some(0)) => return Err(LoadCmdError::Usage("--users must be at least 1".into())),
        (None, Some(users)) => LoadModel::Closed {
            users,
            think: args.think_time,
        },
        (None, None) => return Err(LoadCmdError::Usage("give --rate or --users".into())),
    };
    if args.warmup >= args.duration {
        return Err(LoadCmdError::Usage(
            "--warmup must be shorter than --duration".into(),
        ));
    }
    let mut c = LoadConfig::new(args.endpoints.clone(), spec, model, args.duration);
    c.plan = plan;
    c.timeout = args.timeout;
    c.warmup = args.warmup;
    Ok(c)
}

/// Runs the load; `stop` (Ctrl-C) ends it early with what was measured.
pub async fn run(args: LoadArgs, stop: CancellationToken) -> Result<Exit, LoadCmdError> {
    let thresholds = match &args.thresholds {
        Some(p) => read_thresholds(p)?,
        None => Thresholds::default(),
    };
    let mut cfg = config(&args)?;
    let started_at = SystemTime::now();
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}-load", folder_stamp(started_at)))
    });
    std::fs::create_dir_all(&dir)
        .map_err(|e| LoadCmdError::Run(format!("cannot create {}: {e}", dir.display())))?;
    cfg.history_path = args.history.then(|| dir.join("history.jsonl"));
    cfg.goose_report = Some(dir.join("goose-report.html"));
    let load = LoadRun::new(cfg.clone()).map_err(|e| LoadCmdError::Usage(e.to_string()))?;
    let tui = !args.no_tui && std::io::stdout().is_terminal();
    let view = tui.then(|| {
        let (phase_tx, phase_rx) = watch::channel(Phase::Load);
        let watch = DrillWatch {
            snapshots: load.snapshots(),
            // A load-only run knows no cluster and no faults: those panels stay empty.
            cluster: watch::channel(ClusterView::default()).1,
            phase: phase_rx,
            faults: Default::default(),
            start: std::time::Instant::now(),
        };
        let scenario = view_scenario(&args, &thresholds);
        (
            phase_tx,
            tokio::spawn(crate::live::run(scenario, watch, stop.clone())),
        )
    });
    let mut snaps = load.snapshots();
    let collector = tokio::spawn(async move {
        let mut all: Vec<Snapshot> = Vec::new();
        while snaps.changed().await.is_ok() {
            let s = snaps.borrow_and_update().clone();
            if !tui && (!s.last || s.interval >= 0.5) {
                eprintln!(
                    "t={:.0}s tps={:.0} p99={:.1}ms err={:.1}% late={}",
                    s.t,
                    s.tps,
                    s.latency.p99,
                    s.counts.error_rate().unwrap_or(0.0),
                    s.counts.late
                );
            }
            let last = s.last;
            all.push(s);
            if last {
                break;
            }
        }
        all
    });
    let report = load
        .run(stop.clone())
        .await
        .map_err(|e| LoadCmdError::Run(e.to_string()))?;
    let snapshots = collector.await.unwrap_or_default();
    if let Some((phase, view)) = view {
        phase.send_replace(Phase::Done);
        if let Ok(Err(e)) = view.await {
            eprintln!("raftdrill: the live view failed: {e}");
        }
    }

    let observed = Observed::from_load(report.counts(), &report.latency(), report.tps());
    let results = thresholds.evaluate(&observed);
    let status = worst(&results);
    let aborted = stop.is_cancelled() || report.canceled;
    let (verdict, exit) = match (aborted, status) {
        (true, _) => ("aborted", Exit::CannotRun),
        (false, Status::Break) => ("fail", Exit::ThresholdBroken),
        (false, Status::Warn) => ("warn", Exit::Pass),
        (false, Status::Ok) => ("pass", Exit::Pass),
    };
    let (model, level) = match &cfg.model {
        LoadModel::Open { rate, .. } => ("open", serde_json::json!({ "rate": rate })),
        LoadModel::Closed { users, .. } => ("closed", serde_json::json!({ "users": users })),
    };
    let mut load_info = serde_json::json!({
        "workload": args.workload, "model": model, "keys": args.keys, "value_size": args.value_size,
        "late": report.counts().late, "dropped": report.dropped, "planned": report.planned,
    });
    if let (Some(obj), Some(lv)) = (load_info.as_object_mut(), level.as_object()) {
        obj.extend(lv.clone());
    }
    let summary = Summary {
        scenario: "load",
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        seed: args.seed,
        endpoints: args.endpoints.clone(),
        load: load_info,
        measured: LoadSummary::new(&report, results.clone()),
        counts: *report.counts(),
        verdict,
        exit_code: exit as u8,
    };
    write_results(&dir, &summary, &snapshots, &report).map_err(LoadCmdError::Run)?;
    print!("{}", text_summary(&report, &results));
    println!(
        "\nverdict: {verdict} (exit {})  results: {}",
        exit as u8,
        dir.display()
    );
    Ok(exit)
}

/// What the live view needs to know of a load-only run, in the shape of a scenario.
fn view_scenario(args: &LoadArgs, thresholds: &Thresholds) -> Scenario {
    Scenario {
        name: "load".into(),
        description: args.endpoints.join(","),
        duration: args.duration,
        cluster: ClusterSpec {
            nodes: args.endpoints.len() as u64,
            store: "-".into(),
            fsync: "-".into(),
            snapshot_every: None,
            apply_delay: None,
            heartbeat: None,
            election_timeout: None,
        },
        load: LoadSpec {
            workload: args.workload.clone(),
            keys: args.keys,
            distribution: args.distribution.clone(),
            value_size: args.value_size,
            rate: args.rate,
            users: args.users.map(|u| u as u32),
            think_time: args.think_time,
            warmup: args.warmup,
            consistency: String::new(),
            timeout: args.timeout,
            history: args.history,
        },
        faults: Vec::new(),
        thresholds: thresholds.clone(),
        checks: Checks {
            lost_writes: false,
            recovery_within: None,
        },
    }
}

fn write_results(
    dir: &Path,
    s: &Summary,
    snapshots: &[Snapshot],
    report: &loadgen::LoadReport,
) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("cannot write {}: {e}", p.display());
    let path = dir.join("summary.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(s).expect("the summary serializes"),
    )
    .map_err(|e| err(&path, e))?;
    let path = dir.join("timeline.csv");
    let file = std::fs::File::create(&path).map_err(|e| err(&path, e))?;
    let mut w = TimelineWriter::new(std::io::BufWriter::new(file)).map_err(|e| err(&path, e))?;
    for snap in snapshots {
        w.write(&TimelineRow::from(snap))
            .map_err(|e| err(&path, e))?;
    }
    w.finish().map_err(|e| err(&path, e))?;
    write_hgrm_files(dir, &report.totals).map_err(|e| err(&dir.join("latency.hgrm"), e))
}
