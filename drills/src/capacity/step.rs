//! One step of the search: a load at one rate, measured over its window, and the drain after it.
//!
//! A step's figures are its own only if it starts on a drained cluster and its load generator
//! can offer the rate: [`settle`] waits for the leader to apply its whole log between steps,
//! and [`pool_for_step`] gives the open loop enough workers that only a latency already past
//! the SLO can make a start late.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loadgen::metrics::{Counts, ErrorCounts, LatencySummary};
use loadgen::output::{TimelineRow, percentile_distribution};
use loadgen::{LoadModel, LoadReport, LoadRun, Snapshot};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::failure::Failure;
use super::{CapacityOptions, CapacityProgress};
use crate::drill::remote_load::RemoteLoad;
use crate::drill::{Drill, DrillError, RunOptions};
use crate::nodes::Nodes;
use crate::store::agreed_leader;

/// The open loop's largest pool: goose builds its users one at a time before the clock starts,
/// and a pool of thousands would take seconds to arrive.
const MAX_POOL: usize = 2048;

/// How often [`settle`] asks the nodes.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// One step, as `capacity.json` lists it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepResult {
    /// Target rate.
    pub target_rate: f64,
    /// Operations completed per second inside the measured window (those that complete after
    /// the window are left out, so an overloaded step shows the rate the store managed).
    pub achieved_rate: f64,
    /// The same for operations that completed ok.
    #[serde(default)]
    pub ok_rate: f64,
    /// The median of the window's once-a-second ok completion rates.
    #[serde(default)]
    pub median_ok_rate: f64,
    /// How fast the backlog (operations offered and not yet completed) grew over the window, in
    /// percent of the rate per second: about 0 when the store keeps up, the overload when it
    /// does not. `None` for steps run as drills (`--with-faults`), whose faults disturb it by
    /// design.
    #[serde(default)]
    pub backlog_growth_pct: Option<f64>,
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
    /// Errors by class.
    #[serde(default)]
    pub errors: ErrorCounts,
    /// Operations that started late.
    pub late: u64,
    /// The same in percent of operations.
    pub late_pct: f64,
    /// The open loop's bound on operations in flight.
    #[serde(default)]
    pub pool: Option<usize>,
    /// `pass` or `fail`.
    #[schemars(extend("enum" = ["pass", "fail"]))]
    pub verdict: String,
    /// Why it failed, in one line (every reason of `reasons`).
    pub reason: Option<String>,
    /// Why it failed, one entry per cause.
    #[serde(default)]
    pub reasons: Vec<Failure>,
    /// Whether this step repeats a failed step at the same rate before the search trusts it.
    #[serde(default)]
    pub rerun: bool,
    /// Whether the leader's log drained after the step (the next step started clean). `None`
    /// for steps that ran on a fresh cluster each.
    pub drained: Option<bool>,
    /// How long the drain took, s.
    #[serde(default)]
    pub settle_s: Option<f64>,
    /// Entries the leader had not applied when the settle timeout ran out.
    #[serde(default)]
    pub backlog_left: Option<u64>,
    /// When the step's load started, seconds from the start of the search.
    pub started_s: f64,
    /// When its load ended.
    pub ended_s: f64,
}

impl StepResult {
    /// A step's figures, not yet judged.
    pub fn measured(
        target_rate: f64,
        flow: Flow,
        latency: &LatencySummary,
        counts: &Counts,
    ) -> Self {
        StepResult {
            target_rate,
            achieved_rate: flow.achieved_rate,
            ok_rate: flow.ok_rate,
            median_ok_rate: flow.median_ok_rate,
            backlog_growth_pct: flow.growth_per_s.map(|g| g * 100.0 / target_rate),
            p50_ms: latency.p50,
            p90_ms: latency.p90,
            p99_ms: latency.p99,
            p999_ms: latency.p999,
            max_ms: latency.max,
            success_rate: counts.success_rate().unwrap_or(0.0),
            errors: counts.errors,
            late: counts.late,
            late_pct: if counts.ops > 0 {
                counts.late as f64 * 100.0 / counts.ops as f64
            } else {
                0.0
            },
            ..StepResult::default()
        }
    }
}

/// What went through the store in a run's measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Flow {
    /// Operations completed per second.
    pub achieved_rate: f64,
    /// Operations completed ok per second.
    pub ok_rate: f64,
    /// Open loop: the slope of the backlog, ops/s (least squares over the once-a-second
    /// samples, the window's start included). `None` in closed loop or without samples.
    pub growth_per_s: Option<f64>,
    /// The median of the window's once-a-second ok completion rates: what the store completes
    /// in a typical second, unmoved by a second or two in which another process held the
    /// machine.
    pub median_ok_rate: f64,
}

/// The flow of a run from its once-a-second snapshots. The window starts where the warmup
/// snapshots end and ends at `end_s` (warmup plus the step); a snapshot belongs to it when
/// most of its interval does, so the drain after the end is left out. With `rate` (open loop),
/// the backlog at each sample is the slots planned before it, `ceil(rate * t)`, less the
/// operations completed by then.
pub fn flow(snaps: &[Snapshot], rate: Option<f64>, end_s: f64) -> Flow {
    let mut completed = 0u64;
    let (mut ops, mut ok, mut secs) = (0u64, 0u64, 0.0);
    let mut rates = Vec::new();
    let mut start = Some((0.0, 0u64));
    let mut points = Vec::new();
    for s in snaps {
        completed += s.counts.ops;
        if s.warmup {
            start = Some((s.t, completed));
            continue;
        }
        if s.t - s.interval / 2.0 >= end_s {
            break;
        }
        if let Some(p) = start.take() {
            points.push(p);
        }
        ops += s.counts.ops;
        ok += s.counts.ok;
        secs += s.interval;
        if s.interval > 0.0 {
            rates.push(s.counts.ok as f64 / s.interval);
        }
        points.push((s.t, completed));
    }
    let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let growth_per_s = rate.and_then(|r| {
        let backlog: Vec<(f64, f64)> = points
            .iter()
            .map(|&(t, done)| (t, (r * t).ceil() - done as f64))
            .collect();
        slope(&backlog)
    });
    Flow {
        achieved_rate: per_s(ops),
        ok_rate: per_s(ok),
        growth_per_s,
        median_ok_rate: median(&mut rates),
    }
}

/// The median (the mean of the middle two for an even count); 0 for none.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The least-squares slope of `points`; `None` with fewer than two distinct times.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_y)).sum();
    (sxx > 1e-9).then(|| sxy / sxx)
}

/// The open loop's worker pool for a step at `rate`: enough to keep every operation of a
/// latency budget in flight (`budget_ms`, the SLO's largest latency bound), so that a start
/// comes late only when the latency is already past the budget or when the load generator
/// itself is short of CPU. The default pool (half a second of arrivals) made a 0.4 s stall at
/// 50 ops/s, far inside an 800 ms SLO, fail its step on late starts.
pub fn pool_for_step(rate: f64, budget_ms: f64) -> usize {
    let need = (rate * budget_ms / 1000.0).ceil() as usize;
    need.clamp(loadgen::pool_for_rate(rate), MAX_POOL)
}

/// Runs one load on the shared cluster: `model` for `warmup + window`, its snapshots forwarded
/// to the live view.
pub async fn run_load(
    c: &Nodes,
    opts: &CapacityOptions,
    model: LoadModel,
    out: &Path,
    stop: CancellationToken,
) -> Result<LoadReport, DrillError> {
    let mut scenario = opts.scenario.clone();
    scenario.load.model = model;
    scenario.load.warmup = opts.step_warmup;
    scenario.load.duration = opts.step_warmup + opts.step_duration;
    scenario.checks.lost_writes = false;
    if let Some(hosts) = &opts.load_hosts {
        // The step's load from the load hosts; its logs in `out`.
        let mut load = RemoteLoad::new(
            &scenario,
            &c.urls(),
            hosts.clone(),
            out.to_path_buf(),
            opts.seed,
        )
        .map_err(DrillError::LoadHosts)?;
        // Nobody reads the operations here; dropping the receiver discards them.
        drop(load.take_ops());
        let report = forwarding(opts, load.snapshots(), load.run(stop)).await;
        return Ok(report?.0);
    }
    let mut config = scenario.load_config(c.urls(), None, opts.seed);
    // Nobody reads the stream of operations here; left on, it would queue every one.
    config.stream_ops = false;
    let load = LoadRun::new(config)?;
    let report = forwarding(opts, load.snapshots(), load.run(stop)).await;
    Ok(report?)
}

/// Runs `load` while its snapshots go to the live view's progress, when there is one.
async fn forwarding<T>(
    opts: &CapacityOptions,
    snapshots: tokio::sync::watch::Receiver<Snapshot>,
    load: impl std::future::Future<Output = T>,
) -> T {
    let forward = opts
        .progress
        .clone()
        .map(|p| tokio::spawn(forward_snapshots(snapshots, p)));
    let out = load.await;
    if let Some(f) = forward {
        f.abort();
    }
    out
}

/// The folder of the `n`th step, at `rate`, in the search's folder `dir`: `step-03-400`.
pub fn folder(dir: &Path, n: usize, rate: f64) -> PathBuf {
    dir.join(format!("step-{n:02}-{rate:.0}"))
}

/// One open-loop step on the shared cluster, not yet judged, and its timeline rows; its
/// files go to `out` (the load hosts' logs) and beside it (`out.hgrm`).
pub async fn step_on(
    c: &Nodes,
    opts: &CapacityOptions,
    rate: f64,
    out: &Path,
    stop: CancellationToken,
) -> Result<(StepResult, Vec<TimelineRow>), DrillError> {
    let budget_ms = opts
        .slo
        .latency_budget_ms()
        .unwrap_or(opts.scenario.load.timeout.as_secs_f64() * 1000.0)
        .min(opts.scenario.load.timeout.as_secs_f64() * 1000.0);
    let pool = pool_for_step(rate, budget_ms);
    let model = LoadModel::Open {
        rate,
        max_in_flight: pool,
    };
    let report = run_load(c, opts, model, out, stop).await?;
    let hgrm = out.with_extension("hgrm");
    std::fs::write(&hgrm, percentile_distribution(&report.totals.latency))
        .map_err(|source| DrillError::Io { path: hgrm, source })?;
    let end_s = (opts.step_warmup + opts.step_duration).as_secs_f64();
    let mut step = StepResult::measured(
        rate,
        flow(&report.snapshots, Some(rate), end_s),
        &report.latency(),
        report.counts(),
    );
    step.pool = Some(pool);
    Ok((
        step,
        report.snapshots.iter().map(TimelineRow::from).collect(),
    ))
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settle {
    /// The leader applied its whole log in time.
    pub drained: bool,
    /// How long it took (or the timeout).
    pub waited_s: f64,
    /// Entries the leader had not applied at the end, when a leader answered.
    pub backlog: Option<u64>,
}

/// Waits until the leader has applied its whole log, so a step's backlog does not spill into
/// the next one.
pub async fn settle(c: &Nodes, timeout: Duration) -> Settle {
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut backlog = None;
    loop {
        let mut statuses = Vec::new();
        for (_, call) in c.status_calls() {
            statuses.extend(call.await);
        }
        if let Some(leader) = agreed_leader(&statuses)
            && let Some(s) = statuses.iter().find(|s| s.id == leader)
        {
            let left = s.last_log_index.saturating_sub(s.applied);
            backlog = Some(left);
            if left == 0 {
                return Settle {
                    drained: true,
                    waited_s: started.elapsed().as_secs_f64(),
                    backlog,
                };
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Settle {
                drained: false,
                waited_s: started.elapsed().as_secs_f64(),
                backlog,
            };
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// One step as a full drill (its faults included) on a fresh cluster, its run folder `out`.
pub async fn step_with_faults(
    opts: &CapacityOptions,
    rate: f64,
    out: &Path,
    stop: CancellationToken,
) -> Result<(StepResult, Vec<TimelineRow>), DrillError> {
    let mut scenario = opts.scenario.clone();
    scenario.load.model = LoadModel::open(rate);
    scenario.load.warmup = opts.step_warmup;
    let run = RunOptions {
        out: Some(out.to_path_buf()),
        seed: opts.seed,
        duration: Some(
            scenario
                .load
                .duration
                .max(opts.step_warmup + opts.step_duration),
        ),
        exe: opts.exe.clone(),
        direct_links: false,
        progress: false,
        etcd_bin: opts.etcd_bin.clone(),
        hosts: opts.hosts.clone(),
    };
    let drill = Drill::prepare(scenario, run).await?;
    if let Some(follow) = &opts.follow_step {
        (follow.0)(&drill.scenario().name, drill.watch());
    }
    let outcome = forwarding(opts, drill.watch().snapshots, drill.run(stop)).await?;
    let s = &outcome.summary;
    let l = &s.measured.latency_ms.overall;
    let latency = LatencySummary {
        p50: l.p50,
        p90: l.p90,
        p99: l.p99,
        p999: l.p999,
        max: l.max,
        ..Default::default()
    };
    let window = (s.duration_s - s.warmup_s).max(1e-3);
    let flow = Flow {
        achieved_rate: s.counts.ops as f64 / window,
        ok_rate: s.counts.ok as f64 / window,
        growth_per_s: None,
        median_ok_rate: s.counts.ok as f64 / window,
    };
    let step = StepResult::measured(rate, flow, &latency, &s.counts);
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
    mut snaps: tokio::sync::watch::Receiver<Snapshot>,
    progress: tokio::sync::watch::Sender<CapacityProgress>,
) {
    while snaps.changed().await.is_ok() {
        let s = snaps.borrow_and_update().clone();
        progress.send_modify(|p| p.current = s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snapshots of a run at `rate` whose store completes `served` ops/s (all ok), one a
    /// second for `secs` seconds, the first `warmup` of them in the warmup, then a tail.
    fn run(rate: f64, served: f64, warmup: u32, secs: u32) -> Vec<Snapshot> {
        let mut out = Vec::new();
        let mut done = 0.0;
        for k in 1..=secs {
            let t = k as f64;
            let now = (served * t).min(rate * t);
            let ops = (now - done).round() as u64;
            done += ops as f64;
            out.push(snap(t, 1.0, ops, k <= warmup, false));
        }
        out.push(snap(secs as f64 + 0.4, 0.4, 300, false, true));
        out
    }

    fn snap(t: f64, interval: f64, ops: u64, warmup: bool, last: bool) -> Snapshot {
        Snapshot {
            t,
            interval,
            counts: Counts {
                ops,
                ok: ops,
                ..Counts::default()
            },
            warmup,
            last,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_store_that_keeps_up_has_a_flat_backlog() {
        let f = flow(&run(400.0, 1000.0, 2, 12), Some(400.0), 12.0);
        assert!((f.achieved_rate - 400.0).abs() < 1.0, "{f:?}");
        assert!(f.growth_per_s.unwrap().abs() < 1.0, "{f:?}");
    }

    /// At 500 ops/s on a store that serves 460, the backlog grows by 40 ops/s (8 % of the rate)
    /// and the window's throughput is the service rate; the drain after the end is not in it.
    #[test]
    fn an_overloaded_store_shows_its_service_rate_and_a_growing_backlog() {
        let f = flow(&run(500.0, 460.0, 2, 12), Some(500.0), 12.0);
        assert!((f.achieved_rate - 460.0).abs() < 1.0, "{f:?}");
        assert!((f.growth_per_s.unwrap() - 40.0).abs() < 1.0, "{f:?}");
        assert_eq!(f.achieved_rate, f.ok_rate);
    }

    #[test]
    fn a_closed_loop_has_no_backlog_figure() {
        let f = flow(&run(500.0, 460.0, 2, 12), None, 12.0);
        assert_eq!(f.growth_per_s, None);
        assert!((f.achieved_rate - 460.0).abs() < 1.0);
    }

    /// A late tick that still covers mostly the window is in it; the tail is not.
    #[test]
    fn the_window_ends_where_most_of_an_interval_lies_beyond_it() {
        let snaps = vec![
            snap(1.0, 1.0, 100, true, false),
            snap(2.0, 1.0, 100, false, false),
            snap(3.04, 1.04, 104, false, false),
            snap(3.5, 0.46, 500, false, true),
        ];
        let f = flow(&snaps, Some(100.0), 3.0);
        assert!((f.achieved_rate - 204.0 / 2.04).abs() < 1e-9, "{f:?}");
        let empty = flow(&[], Some(100.0), 3.0);
        assert_eq!(empty.achieved_rate, 0.0);
        assert_eq!(empty.growth_per_s, None, "no sample, no slope");
    }

    #[test]
    fn the_pool_holds_the_latency_budget() {
        assert_eq!(
            pool_for_step(50.0, 800.0),
            40.max(loadgen::pool_for_rate(50.0))
        );
        assert_eq!(pool_for_step(460.0, 800.0), 368);
        assert_eq!(pool_for_step(100_000.0, 800.0), MAX_POOL);
        assert!(pool_for_step(1000.0, 1.0) >= loadgen::pool_for_rate(1000.0));
    }

    /// A one-second stall moves the mean of a closed loop's window but not its median.
    #[test]
    fn the_median_rate_ignores_a_stalled_second() {
        let mut snaps: Vec<Snapshot> = (1..=12)
            .map(|k| snap(k as f64, 1.0, 460, k <= 2, false))
            .collect();
        snaps[6].counts.ops = 60;
        snaps[6].counts.ok = 60;
        let f = flow(&snaps, None, 12.0);
        assert!((f.achieved_rate - 420.0).abs() < 1e-9, "{f:?}");
        assert_eq!(f.median_ok_rate, 460.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn a_slope_needs_two_times() {
        assert_eq!(slope(&[(1.0, 5.0)]), None);
        assert_eq!(slope(&[(1.0, 5.0), (1.0, 7.0)]), None);
        assert!((slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap() - 2.0).abs() < 1e-12);
    }
}
