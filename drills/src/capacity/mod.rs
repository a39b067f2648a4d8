//! `raftdrill capacity`: the highest open-loop rate that meets the SLO, found by a series of
//! steps on one cluster (doubling, then bisection), with the latency–throughput curve.
//!
//! # Layout
//! - this file: [`CapacityOptions`], [`StepResult`], [`CapacityReport`], [`run`]
//! - [`search`]: the doubling and bisection, pure
//! - [`slo`]: the SLO expression
//! - [`plot`]: draws `capacity.svg`
//! - [`progress`]: what the search has done so far, for a live view
//! - [`timeline`]: writes `timeline.csv` and `timeline.svg` of the whole search, steps as bands

pub mod plot;
pub mod progress;
pub mod search;
pub mod slo;
pub mod timeline;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loadgen::output::{TimelineRow, percentile_distribution};
use loadgen::thresholds::Metric;
use loadgen::{LoadModel, LoadRun};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use self::progress::CapacityProgress;
use self::search::Search;
use self::slo::Slo;
use crate::admin::AdminClient;
use crate::drill::nodes::Nodes;
use crate::drill::{Drill, DrillError, RunOptions, results_dir};
use crate::drill::{NodeStart, start_nodes};
use crate::exit::Exit;
use crate::local_cluster::agreed_leader;
use crate::scenario::Scenario;

/// The most a step may start late and still count as having reached its rate, in percent.
const MAX_LATE_PCT: f64 = 1.0;

/// How to search.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    /// Cluster and workload (its rate is replaced by each step's).
    pub scenario: Scenario,
    /// What a step must meet.
    pub slo: Slo,
    /// Stop when the gap between the last good and the first bad rate is within this fraction.
    pub resolution: f64,
    /// The measured window of a step.
    pub step_duration: Duration,
    /// The warmup before each step's window.
    pub step_warmup: Duration,
    /// The first step's rate.
    pub start_rate: f64,
    /// Carry the scenario's faults in every step (each step then runs on a fresh cluster).
    pub with_faults: bool,
    /// How long a step's backlog may take to drain before the search stops.
    pub settle_timeout: Duration,
    /// The etcd binary, when the scenario's target is etcd.
    pub etcd_bin: Option<PathBuf>,
    /// The raftdrill binary.
    pub exe: PathBuf,
    /// The output folder; default `results/<ts>-capacity-<name>/`.
    pub out: Option<PathBuf>,
    /// Workload seed.
    pub seed: u64,
    /// Where to publish progress for the live view; without it, one line per step on stderr.
    pub progress: Option<tokio::sync::watch::Sender<CapacityProgress>>,
}

/// One step, as `capacity.json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Target rate.
    pub target_rate: f64,
    /// Operations completed per second in the measured window.
    pub achieved_rate: f64,
    /// Latency, ms.
    pub p50_ms: f64,
    /// Latency, ms.
    pub p90_ms: f64,
    /// Latency, ms.
    pub p99_ms: f64,
    /// Latency, ms.
    pub p999_ms: f64,
    /// Latency, ms.
    pub max_ms: f64,
    /// Percent ok.
    pub success_rate: f64,
    /// Operations that started late.
    pub late: u64,
    /// The same in percent of operations.
    pub late_pct: f64,
    /// `pass` or `fail`.
    pub verdict: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Whether the leader's log drained after the step (the next step started clean). `None`
    /// for steps that ran on a fresh cluster each.
    pub drained: Option<bool>,
    /// When the step's load started, seconds from the start of the search.
    pub started_s: f64,
    /// When its load ended.
    pub ended_s: f64,
}

/// `capacity.json`.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    /// Scenario name.
    pub scenario: String,
    /// The store under test.
    pub target: String,
    /// Nodes.
    pub nodes: u64,
    /// Workload letter.
    pub workload: String,
    /// The SLO.
    pub slo: String,
    /// Relative resolution.
    pub resolution: f64,
    /// Whether the scenario's faults ran in every step.
    pub with_faults: bool,
    /// Every step, in order.
    pub steps: Vec<StepResult>,
    /// The best step that met the SLO.
    pub answer: Option<StepResult>,
    /// How long the search took.
    pub search_s: f64,
    /// Whether Ctrl-C cut the search short.
    pub aborted: bool,
    /// Why the search stopped before it converged, when it did.
    pub stopped: Option<String>,
}

impl CapacityReport {
    /// The one-line answer.
    pub fn answer_line(&self) -> String {
        match &self.answer {
            Some(a) => format!(
                "max sustainable: {} ops/s (p99 {:.0} ms, success {:.1} %) on {} nodes, workload {}",
                thousands(a.achieved_rate),
                a.p99_ms,
                a.success_rate,
                self.nodes,
                self.workload
            ),
            None => format!(
                "no sustainable rate: even the first step failed the SLO ({})",
                self.slo
            ),
        }
    }
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl StepResult {
    /// A step's figures, not yet judged.
    fn measured(
        target_rate: f64,
        window_s: f64,
        latency: &loadgen::metrics::LatencySummary,
        counts: &loadgen::metrics::Counts,
    ) -> Self {
        StepResult {
            target_rate,
            achieved_rate: counts.ops as f64 / window_s.max(1e-3),
            p50_ms: latency.p50,
            p90_ms: latency.p90,
            p99_ms: latency.p99,
            p999_ms: latency.p999,
            max_ms: latency.max,
            success_rate: counts.success_rate().unwrap_or(0.0),
            late: counts.late,
            late_pct: if counts.ops > 0 {
                counts.late as f64 * 100.0 / counts.ops as f64
            } else {
                0.0
            },
            verdict: String::new(),
            reason: None,
            drained: None,
            started_s: 0.0,
            ended_s: 0.0,
        }
    }
}

/// Judges a step's figures. Every metric an SLO can name is observed here (node CPU is not an
/// SLO metric), so no term can fail for want of a figure.
fn judge(slo: &Slo, s: &mut StepResult) {
    let observed = |m: Metric| match m {
        Metric::P50 => Some(s.p50_ms),
        Metric::P90 => Some(s.p90_ms),
        Metric::P99 => Some(s.p99_ms),
        Metric::P999 => Some(s.p999_ms),
        Metric::Max => Some(s.max_ms),
        Metric::SuccessRate => Some(s.success_rate),
        Metric::ErrorRate => Some(100.0 - s.success_rate),
        Metric::Tps => Some(s.achieved_rate),
        Metric::NodeCpu => None,
    };
    let reason = if !slo.met(observed) {
        Some(format!("SLO {slo} not met"))
    } else if s.late_pct > MAX_LATE_PCT {
        Some(format!(
            "{:.1} % of operations started late: the rate was not reached",
            s.late_pct
        ))
    } else {
        None
    };
    s.verdict = if reason.is_none() { "pass" } else { "fail" }.into();
    s.reason = reason;
}

/// Runs the search; returns the report, its folder and the exit code (0 found, 1 not found).
pub async fn run(
    opts: CapacityOptions,
    stop: CancellationToken,
) -> Result<(CapacityReport, PathBuf, Exit), DrillError> {
    let started = std::time::Instant::now();
    let name = opts.scenario.name.clone();
    let dir = results_dir(
        opts.out.as_deref(),
        &format!("capacity-{name}"),
        std::time::SystemTime::now(),
    );
    let io = |path: &Path, source| DrillError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir.join("nodes")).map_err(|e| io(&dir, e))?;
    let mut cluster = None;
    if !opts.with_faults {
        // Steps without faults need no link proxies between reference nodes.
        let start = NodeStart {
            exe: opts.exe.clone(),
            etcd_bin: opts.etcd_bin.clone(),
            direct_links: true,
        };
        // The steps carry no faults, so no disk faults either: no disks to mount.
        let mut healthy = opts.scenario.clone();
        healthy.faults.clear();
        cluster = Some(start_nodes(&healthy, &start, &dir).await?.0);
    }
    let admin = AdminClient::new();
    let mut search = Search::new(opts.start_rate, opts.resolution, 1_000_000.0);
    let mut steps = Vec::new();
    let mut stopped: Option<String> = None;
    let mut rows = Vec::new();
    while let Some(rate) = search.next() {
        if stop.is_cancelled() {
            break;
        }
        let n = steps.len() + 1;
        if let Some(p) = &opts.progress {
            p.send_modify(|p| {
                p.current_rate = Some(rate);
                p.current = Default::default();
            });
        }
        let offset = started.elapsed().as_secs_f64();
        let (mut step, step_rows) = match &mut cluster {
            Some(c) => step_on(c, &admin, &opts, rate, &dir, n, stop.clone()).await?,
            None => step_with_faults(&opts, rate, &dir, n, stop.clone()).await?,
        };
        step.started_s = offset;
        step.ended_s = offset + step_rows.last().map_or(0.0, |r| r.t_s);
        rows.extend(timeline::shift(step_rows, offset));
        judge(&opts.slo, &mut step);
        if let Some(p) = &opts.progress {
            let done = step.clone();
            p.send_modify(move |p| p.steps.push(done));
        }
        if opts.progress.is_none() {
            eprintln!(
                "step {n}: {:>8.0} ops/s → achieved {:.0}, p50 {:.1} ms, p99 {:.1} ms, success {:.2} %, late {:.1} %: {}",
                rate,
                step.achieved_rate,
                step.p50_ms,
                step.p99_ms,
                step.success_rate,
                step.late_pct,
                step.verdict
            );
        }
        search.record(rate, step.verdict == "pass" && !stop.is_cancelled());
        let polluted = step.drained == Some(false);
        steps.push(step);
        if polluted {
            // The next step would start on this one's backlog: its figures would not be its own.
            stopped = Some(format!(
                "the log did not drain after the step at {rate:.0} ops/s within {:.0}s; the search stopped rather than go on polluted",
                opts.settle_timeout.as_secs_f64()
            ));
            break;
        }
    }
    if let Some(mut c) = cluster {
        c.shutdown(Duration::from_secs(5)).await;
    }
    if let Some(p) = &opts.progress {
        p.send_modify(|p| p.done = true);
    }
    let answer = search
        .answer()
        .and_then(|a| steps.iter().find(|s| s.target_rate == a).cloned());
    let report = CapacityReport {
        scenario: name,
        target: opts.scenario.cluster.target.as_str().into(),
        nodes: opts.scenario.cluster.nodes,
        workload: opts.scenario.load.workload.as_str().into(),
        slo: opts.slo.to_string(),
        resolution: opts.resolution,
        with_faults: opts.with_faults,
        steps,
        answer,
        search_s: started.elapsed().as_secs_f64(),
        aborted: stop.is_cancelled(),
        stopped,
    };
    write_outputs(&dir, &report, &opts.slo).map_err(|(p, e)| io(&p, e))?;
    if let Err((p, e)) = timeline::write(&dir, &rows) {
        // A picture of the search, not its answer: capacity.json stands without it.
        tracing::warn!(path = %p.display(), error = %e, "the search's timeline could not be written");
    }
    let exit = if report.aborted || report.stopped.is_some() {
        Exit::CannotRun
    } else if report.answer.is_some() {
        Exit::Pass
    } else {
        Exit::ThresholdBroken
    };
    Ok((report, dir, exit))
}

/// One step on the shared cluster.
async fn step_on(
    c: &mut Nodes,
    admin: &AdminClient,
    opts: &CapacityOptions,
    rate: f64,
    dir: &Path,
    n: usize,
    stop: CancellationToken,
) -> Result<(StepResult, Vec<TimelineRow>), DrillError> {
    let mut scenario = opts.scenario.clone();
    scenario.load.model = LoadModel::open(rate);
    scenario.load.warmup = opts.step_warmup;
    scenario.duration = opts.step_warmup + opts.step_duration;
    scenario.checks.lost_writes = false;
    let load = LoadRun::new(scenario.load_config(c.client_urls(), None, opts.seed))?;
    let forward = opts
        .progress
        .clone()
        .map(|p| tokio::spawn(forward_snapshots(load.snapshots(), p)));
    let report = load.run(stop).await?;
    if let Some(f) = forward {
        f.abort();
    }
    let hgrm = dir.join(format!("step-{n:02}-{rate:.0}.hgrm"));
    std::fs::write(&hgrm, percentile_distribution(&report.totals.latency))
        .map_err(|source| DrillError::Io { path: hgrm, source })?;
    let mut step = StepResult::measured(
        rate,
        opts.step_duration.as_secs_f64(),
        &report.latency(),
        report.counts(),
    );
    step.drained = Some(settle(c, admin, opts.settle_timeout).await);
    Ok((
        step,
        report.snapshots.iter().map(TimelineRow::from).collect(),
    ))
}

/// Waits until the leader has applied its whole log, so a step's backlog does not spill into
/// the next one; false when it did not within `timeout`.
async fn settle(c: &mut Nodes, admin: &AdminClient, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        let mut statuses = Vec::new();
        for (_, call) in c.status_calls(admin) {
            statuses.extend(call.await);
        }
        if let Some(leader) = agreed_leader(&statuses)
            && let Some(s) = statuses.iter().find(|s| s.id == leader)
            && s.applied >= s.last_log_index
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// One step as a full drill (its faults included) on a fresh cluster.
async fn step_with_faults(
    opts: &CapacityOptions,
    rate: f64,
    dir: &Path,
    n: usize,
    stop: CancellationToken,
) -> Result<(StepResult, Vec<TimelineRow>), DrillError> {
    let mut scenario = opts.scenario.clone();
    scenario.load.model = LoadModel::open(rate);
    scenario.load.warmup = opts.step_warmup;
    let run = RunOptions {
        out: Some(dir.join(format!("step-{n:02}-{rate:.0}"))),
        seed: opts.seed,
        duration: Some(scenario.duration.max(opts.step_warmup + opts.step_duration)),
        exe: opts.exe.clone(),
        direct_links: false,
        progress: false,
        etcd_bin: opts.etcd_bin.clone(),
    };
    let drill = Drill::prepare(scenario, run).await?;
    let forward = opts
        .progress
        .clone()
        .map(|p| tokio::spawn(forward_snapshots(drill.watch().snapshots, p)));
    let outcome = drill.run(stop).await?;
    if let Some(f) = forward {
        f.abort();
    }
    let s = &outcome.summary;
    let l = &s.measured.latency_ms.overall;
    let latency = loadgen::metrics::LatencySummary {
        p50: l.p50,
        p90: l.p90,
        p99: l.p99,
        p999: l.p999,
        max: l.max,
        ..Default::default()
    };
    let step = StepResult::measured(rate, s.duration_s - s.warmup_s, &latency, &s.counts);
    // The step's own run folder has its timeline (faults, leaders and all); the search's
    // timeline takes its rows.
    let rows = crate::report::RunFolder::load(&outcome.dir)
        .map(|f| f.timeline)
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the step's timeline is left out of the search's");
            Vec::new()
        });
    Ok((step, rows))
}

/// Copies a step's load snapshots into the progress the live view reads.
async fn forward_snapshots(
    mut snaps: tokio::sync::watch::Receiver<loadgen::Snapshot>,
    progress: tokio::sync::watch::Sender<CapacityProgress>,
) {
    while snaps.changed().await.is_ok() {
        let s = snaps.borrow_and_update().clone();
        progress.send_modify(|p| p.current = s);
    }
}

type WriteError = (PathBuf, std::io::Error);

fn write_outputs(dir: &Path, r: &CapacityReport, slo: &Slo) -> Result<(), WriteError> {
    let p = dir.join("capacity.json");
    std::fs::write(&p, serde_json::to_vec_pretty(r).expect("serializes")).map_err(|e| (p, e))?;
    let p = dir.join("capacity.md");
    std::fs::write(&p, markdown(r)).map_err(|e| (p, e))?;
    let p99_bound = slo
        .0
        .iter()
        .find(|t| t.metric == Metric::P99)
        .map(|t| t.value);
    let title = format!("{}: {} nodes, workload {}", r.scenario, r.nodes, r.workload);
    let svg = dir.join("capacity.svg");
    plot::draw(
        &svg,
        &title,
        &r.steps,
        p99_bound,
        r.answer.as_ref().map(|a| a.achieved_rate),
    )
    .map_err(|e| (svg, std::io::Error::other(e)))
}

fn markdown(r: &CapacityReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Capacity: {}\n\n**{}**\n", r.scenario, r.answer_line());
    let _ = writeln!(
        o,
        "SLO `{}`, resolution {:.0} %, {} steps in {:.0} s{}.\n",
        r.slo,
        r.resolution * 100.0,
        r.steps.len(),
        r.search_s,
        if r.with_faults {
            ", each step with the scenario's faults"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "| step | target ops/s | achieved | p50 ms | p99 ms | p99.9 ms | success % | late % | verdict |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (i, s) in r.steps.iter().enumerate() {
        let _ = writeln!(
            o,
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {}{} |",
            i + 1,
            s.target_rate,
            s.achieved_rate,
            s.p50_ms,
            s.p99_ms,
            s.p999_ms,
            s.success_rate,
            s.late_pct,
            if s.verdict == "pass" { "✓" } else { "✗" },
            s.reason
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(why) = &r.stopped {
        let _ = writeln!(o, "\n**The search stopped early:** {why}.");
    }
    let _ = writeln!(o, "\n![latency–throughput curve](capacity.svg)");
    let _ = writeln!(o, "\n![the search over time, steps as bands](timeline.svg)");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_rates_get_thousands_separators() {
        assert_eq!(thousands(3150.4), "3,150");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }

    #[test]
    fn a_step_fails_on_the_slo_or_on_late_starts() {
        let slo = Slo::parse("p99<800ms,success>=99.5%").unwrap();
        let mut s = StepResult {
            target_rate: 100.0,
            achieved_rate: 100.0,
            p50_ms: 1.0,
            p90_ms: 5.0,
            p99_ms: 10.0,
            p999_ms: 20.0,
            max_ms: 30.0,
            success_rate: 100.0,
            late: 0,
            late_pct: 0.0,
            verdict: String::new(),
            reason: None,
            drained: None,
            started_s: 0.0,
            ended_s: 0.0,
        };
        judge(&slo, &mut s);
        assert_eq!(s.verdict, "pass");
        s.late_pct = 1.5;
        judge(&slo, &mut s);
        assert_eq!(s.verdict, "fail");
        s.late_pct = 0.0;
        s.p99_ms = 900.0;
        judge(&slo, &mut s);
        assert!(s.reason.clone().unwrap().contains("SLO"));
    }

    /// Every metric the SLO parser takes is observed by a step, so a step that meets a
    /// p90, max or tps term passes (they used to be accepted and never observed: every step
    /// failed).
    #[test]
    fn every_slo_metric_is_observed() {
        let mut s = StepResult {
            target_rate: 100.0,
            achieved_rate: 100.0,
            p50_ms: 1.0,
            p90_ms: 5.0,
            p99_ms: 10.0,
            p999_ms: 20.0,
            max_ms: 30.0,
            success_rate: 100.0,
            late: 0,
            late_pct: 0.0,
            verdict: String::new(),
            reason: None,
            drained: None,
            started_s: 0.0,
            ended_s: 0.0,
        };
        for text in [
            "p90<10ms",
            "max<50ms",
            "tps>=99",
            "p50<2ms,p999<25ms,errors<1%",
        ] {
            let slo = Slo::parse(text).unwrap();
            judge(&slo, &mut s);
            assert_eq!(s.verdict, "pass", "{text}: {:?}", s.reason);
        }
        judge(&Slo::parse("tps>=150").unwrap(), &mut s);
        assert_eq!(s.verdict, "fail");
    }
}
