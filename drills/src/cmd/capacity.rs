//! `raftdrill capacity`: parse the flags, run the search, print the answer line.

use std::io::IsTerminal;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::CmdError;
use crate::capacity::CapacityProgress;
use crate::capacity::slo::Slo;
use crate::capacity::{CapacityOptions, run as search};
use crate::cli::CapacityArgs;
use crate::drill::HostPlan;
use crate::exit::Exit;
use crate::scenario::{Scenario, ScenarioError};

fn usage(origin: &str, message: String) -> CmdError {
    CmdError::Scenario(ScenarioError {
        origin: origin.into(),
        place: "flag".into(),
        message,
    })
}

/// Runs the capacity search.
pub async fn run(
    args: CapacityArgs,
    exe: PathBuf,
    stop: CancellationToken,
) -> Result<Exit, CmdError> {
    let scenario = Scenario::find(Some(args.scenario.as_deref().unwrap_or("baseline")))?
        .on_target(args.target)?;
    let hosts = HostPlan::for_run(
        &scenario,
        args.hosts.as_deref(),
        args.node_port,
        !args.with_faults,
    )
    .map_err(CmdError::Usage)?;
    let slo = match &args.slo {
        Some(text) => Slo::parse(text).map_err(|e| usage("--slo", e))?,
        None => Slo::from_warn_levels(&scenario.load.thresholds).map_err(|e| usage("--slo", e))?,
    };
    let resolution = resolution(&args.resolution)?;
    check_steps(&args)?;
    eprintln!(
        "raftdrill capacity: {} on {} nodes, workload {}, SLO {slo}, resolution {:.0} %",
        scenario.name,
        scenario.cluster.nodes,
        scenario.load.workload.as_str(),
        resolution * 100.0
    );
    let tui = !args.no_tui && std::io::stdout().is_terminal();
    let metrics = crate::live::follow::metrics(args.metrics_listen.as_deref())
        .await
        .map_err(CmdError::CannotRun)?
        .map(std::sync::Arc::new);
    let title = format!("capacity {} · SLO {slo}", scenario.name);
    let (progress, view) = watchers(tui.then_some(title), metrics.as_deref(), &stop);
    let opts = CapacityOptions {
        scenario,
        slo,
        resolution,
        step_duration: args.step_duration,
        step_warmup: args.step_warmup,
        start_rate: args.start_rate,
        with_faults: args.with_faults,
        settle_timeout: args.settle_timeout,
        verify_users: args.verify.then_some(args.verify_users as usize),
        etcd_bin: args.etcd_bin.clone(),
        exe,
        out: args.out,
        seed: args.seed,
        progress,
        quiet: tui,
        follow_step: metrics.map(|m| {
            crate::capacity::FollowStep(std::sync::Arc::new(move |name, w| m.follow(name, w)))
        }),
        hosts,
        load_hosts: None,
    };
    let result = search(opts, stop).await;
    if let Some(view) = view
        && let Ok(Err(e)) = view.await
    {
        eprintln!("raftdrill: the live view failed: {e}");
    }
    let (report, dir, exit) = result?;
    println!("{}", report.answer_line());
    if let Some(line) = report.verify_line() {
        println!("{line}");
    }
    println!(
        "{} steps in {:.0} s; results: {}",
        report.steps.len(),
        report.search_s,
        dir.display()
    );
    Ok(exit)
}

/// `--resolution`: a percentage (`5%` or `5`) as a fraction.
fn resolution(text: &str) -> Result<f64, CmdError> {
    let r = text
        .trim()
        .strip_suffix('%')
        .unwrap_or(text.trim())
        .parse::<f64>()
        .ok()
        .filter(|r| *r > 0.0 && *r < 100.0)
        .ok_or_else(|| {
            usage(
                "--resolution",
                format!("expected a percentage like 5%, got {text:?}"),
            )
        })?;
    Ok(r / 100.0)
}

/// The flags that shape the steps, checked before any node starts.
fn check_steps(args: &CapacityArgs) -> Result<(), CmdError> {
    if !(args.start_rate > 0.0 && args.start_rate.is_finite()) {
        return Err(usage(
            "--start-rate",
            format!("must be a positive rate, got {}", args.start_rate),
        ));
    }
    if args.verify && args.with_faults {
        return Err(usage(
            "--verify",
            "needs the steps to share one cluster, which --with-faults does not".into(),
        ));
    }
    if args.step_duration.is_zero() {
        return Err(usage(
            "--step-duration",
            "must be longer than 0s: a step needs a window to measure".into(),
        ));
    }
    Ok(())
}

/// Where the search publishes its progress, when anyone reads it: the live view (started here
/// when it has a `title`), live metrics, or both.
fn watchers(
    title: Option<String>,
    metrics: Option<&crate::live::metrics::Metrics>,
    stop: &CancellationToken,
) -> (
    Option<tokio::sync::watch::Sender<CapacityProgress>>,
    Option<tokio::task::JoinHandle<std::io::Result<()>>>,
) {
    let (progress, view) = match title {
        Some(title) => {
            let (tx, view) = live_view(title, stop);
            (Some(tx), Some(view))
        }
        None if metrics.is_some() => {
            let (tx, _) = tokio::sync::watch::channel(CapacityProgress::default());
            (Some(tx), None)
        }
        None => (None, None),
    };
    if let (Some(m), Some(p)) = (metrics, &progress) {
        m.follow_search(p.subscribe());
    }
    (progress, view)
}

/// Starts the live view of the search; the search publishes its progress into the sender.
fn live_view(
    title: String,
    stop: &CancellationToken,
) -> (
    tokio::sync::watch::Sender<CapacityProgress>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (tx, rx) = tokio::sync::watch::channel(CapacityProgress::default());
    let view = tokio::spawn(crate::live::capacity::run(title, rx, stop.clone()));
    (tx, view)
}
