//! `raftdrill capacity`: the highest open-loop rate that meets the SLO and that the store keeps
//! up with, found by a series of steps on one cluster (doubling, then bisection), with the
//! latency–throughput curve, why each failed step failed, and with `--verify` a closed-loop
//! cross-check of the answer.
//!
//! # Layout
//! - this file: [`CapacityOptions`], [`run`]: the search's loop
//! - [`step`]: one step (the load, its figures, the drain after it)
//! - [`judge`]: whether a step passed, and every reason it did not
//! - [`search`]: the doubling and bisection with re-runs, pure
//! - [`verify`]: the closed-loop saturation run and what it says about the answer
//! - [`slo`]: the SLO expression
//! - [`output`]: `capacity.json`, `capacity.md`
//! - [`plot`]: draws `capacity.svg`
//! - [`progress`]: what the search has done so far, for a live view
//! - [`timeline`]: writes `timeline.csv` and `timeline.svg` of the whole search, steps as bands

pub mod judge;
pub mod output;
pub mod plot;
pub mod progress;
pub mod search;
pub mod slo;
pub mod step;
pub mod timeline;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use self::output::{CapacityReport, Uncertainty};
pub use self::progress::CapacityProgress;
use self::search::Search;
use self::slo::Slo;
pub use self::step::StepResult;
use crate::drill::{DrillError, results_dir};
use crate::drill::{NodeStart, nodes_spec};
use crate::exit::Exit;
use crate::scenario::Scenario;

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
    /// End with a closed-loop saturation run of this many users on the same cluster.
    pub verify_users: Option<usize>,
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
    /// Run the nodes on hosts over SSH (and the load on the `[load] from` hosts).
    pub hosts: Option<crate::drill::HostPlan>,
    /// The load hosts, once readied (set by [`run`]).
    pub load_hosts: Option<std::sync::Arc<crate::hosts::LoadHosts>>,
}

/// Stops the search's cluster (nodes on hosts are not stopped by dropping it) and hands back
/// the error that ended the search.
async fn shut_down(cluster: Option<crate::nodes::Nodes>, e: DrillError) -> DrillError {
    if let Some(c) = cluster {
        c.shutdown(Duration::from_secs(5)).await;
    }
    e
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
    let mut opts = opts;
    if let Some(plan) = &opts.hosts
        && !opts.scenario.load_from.is_empty()
    {
        // Readied once, before any node starts; every step's load runs there.
        let (_, specs) = plan
            .file
            .split(&opts.scenario.load_from)
            .map_err(DrillError::LoadHosts)?;
        let hosts = crate::hosts::LoadHosts::prepare(&specs, &opts.exe).await?;
        opts.load_hosts = Some(std::sync::Arc::new(hosts));
    }
    let opts = opts;
    let mut cluster = None;
    if !opts.with_faults {
        // Steps without faults need no link proxies between reference nodes.
        let start = NodeStart {
            exe: opts.exe.clone(),
            etcd_bin: opts.etcd_bin.clone(),
            direct_links: true,
            hosts: opts.hosts.clone(),
        };
        // The steps carry no faults, so no disk faults either: no disks to mount.
        let mut healthy = opts.scenario.clone();
        healthy.faults.clear();
        cluster = Some(nodes_spec(&healthy, &start, &dir)?.start().await?);
    }
    let mut search = Search::new(opts.start_rate, opts.resolution, 1_000_000.0);
    let mut steps: Vec<StepResult> = Vec::new();
    let mut stopped: Option<String> = None;
    let mut rows = Vec::new();
    let settle_timeout_s = opts.settle_timeout.as_secs_f64();
    if let Some(c) = &cluster {
        // The first step starts clean too: the cluster's own first entries applied.
        if !step::settle(c, opts.settle_timeout).await.drained {
            stopped = Some(format!(
                "the new cluster had no leader with its log applied within {settle_timeout_s:.0} s"
            ));
        }
    }
    while let Some(rate) = search.next().filter(|_| stopped.is_none()) {
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
        let stepped = match &cluster {
            Some(c) => step::step_on(c, &opts, rate, &dir, n, stop.clone()).await,
            None => step::step_with_faults(&opts, rate, &dir, n, stop.clone()).await,
        };
        let (mut step, step_rows) = match stepped {
            Ok(s) => s,
            Err(e) => return Err(shut_down(cluster, e).await),
        };
        step.rerun = search.is_rerun(rate);
        step.started_s = offset;
        step.ended_s = offset + step_rows.last().map_or(0.0, |r| r.t_s);
        rows.extend(timeline::shift(step_rows, offset));
        if let Some(c) = &cluster {
            // The next step starts only on a drained log.
            let settled = step::settle(c, opts.settle_timeout).await;
            step.drained = Some(settled.drained);
            step.settle_s = Some(settled.waited_s);
            step.backlog_left = settled.backlog.filter(|_| !settled.drained);
        }
        judge::judge(&opts.slo, &mut step, settle_timeout_s);
        if let Some(p) = &opts.progress {
            let done = step.clone();
            p.send_modify(move |p| p.steps.push(done));
        } else {
            eprintln!("{}", step_line(n, &step));
        }
        let canceled = stop.is_cancelled();
        let polluted = step.drained == Some(false);
        if !canceled {
            search.record(rate, judge::outcome(&step));
        }
        steps.push(step);
        if polluted {
            // The next step would start on this one's backlog: its figures would not be its own.
            stopped = Some(format!(
                "the log did not drain after the step at {rate:.0} ops/s within {settle_timeout_s:.0} s; \
                 the search stopped rather than go on polluted"
            ));
        }
        if canceled {
            break;
        }
    }
    if let Some(service) = search.service_rate() {
        // Passes that ran before the service rate was known and have no headroom under it.
        for (i, s) in steps.iter_mut().enumerate() {
            let was = s.verdict == "pass";
            judge::deny_headroom(s, service);
            if was && s.verdict != "pass" && opts.progress.is_none() {
                eprintln!(
                    "step {}: {:.0} ops/s no longer counts: {}",
                    i + 1,
                    s.target_rate,
                    s.reason.as_deref().unwrap_or_default()
                );
            }
        }
    }
    let answer = search.answer().and_then(|a| {
        steps
            .iter()
            .rev()
            .find(|s| s.target_rate == a && s.verdict == "pass")
            .cloned()
    });
    let verify = match opts.verify_users {
        None => None,
        Some(users) => Some(match &cluster {
            Some(c) if stopped.is_none() && !stop.is_cancelled() => {
                let a = answer.as_ref().map(|a| (a.target_rate, a.p99_ms));
                let offset = started.elapsed().as_secs_f64();
                let verified = verify::verify(
                    c,
                    &opts,
                    users,
                    a,
                    opts.slo.p99_bound_ms(),
                    &dir,
                    stop.clone(),
                )
                .await;
                let (mut v, v_rows) = match verified {
                    Ok(v) => v,
                    Err(e) => return Err(shut_down(cluster, e).await),
                };
                v.started_s = offset;
                v.ended_s = offset + v_rows.last().map_or(0.0, |r| r.t_s);
                rows.extend(timeline::shift(v_rows, offset));
                if opts.progress.is_none() {
                    eprintln!(
                        "verify: closed loop, {users} users → {:.0} ops/s (median second; mean {:.0}), p50 {:.1} ms, p99 {:.1} ms",
                        v.saturation_rate, v.mean_rate, v.p50_ms, v.p99_ms
                    );
                }
                v
            }
            _ => verify::Verification {
                users,
                verdict: "unknown".into(),
                note: "not run: the search did not finish on a clean cluster".into(),
                ..Default::default()
            },
        }),
    };
    if let Some(c) = cluster {
        c.shutdown(Duration::from_secs(5)).await;
    }
    if let Some(p) = &opts.progress {
        p.send_modify(|p| p.done = true);
    }
    let report = CapacityReport {
        scenario: name,
        target: opts.scenario.cluster.target.as_str().into(),
        nodes: opts.scenario.cluster.nodes,
        workload: opts.scenario.load.workload.as_str().into(),
        slo: opts.slo.to_string(),
        resolution: opts.resolution,
        with_faults: opts.with_faults,
        step_duration_s: opts.step_duration.as_secs_f64(),
        step_warmup_s: opts.step_warmup.as_secs_f64(),
        answer_rate: answer.as_ref().map(|a| a.target_rate),
        answer,
        uncertainty: Uncertainty {
            last_good: search.answer(),
            first_bad: search.first_bad(),
            reruns: search.reruns(),
            service_rate: search.service_rate(),
            limit: search.limit(),
        },
        verify,
        steps,
        search_s: started.elapsed().as_secs_f64(),
        aborted: stop.is_cancelled(),
        stopped,
    };
    output::write_outputs(&dir, &report, &opts.slo).map_err(|(p, e)| io(&p, e))?;
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

/// The line a finished step prints when no live view is up.
fn step_line(n: usize, s: &StepResult) -> String {
    let why: Vec<String> = s.reasons.iter().map(|r| r.label()).collect();
    format!(
        "step {n}: {:>8.0} ops/s{} → achieved {:.0}, backlog {}, p50 {:.1} ms, p99 {:.1} ms, \
         success {:.2} %, late {:.1} %{}: {}{}",
        s.target_rate,
        if s.rerun { " (re-run)" } else { "" },
        s.achieved_rate,
        s.backlog_growth_pct
            .map_or("–".into(), |g| format!("{g:+.1} %/s")),
        s.p50_ms,
        s.p99_ms,
        s.success_rate,
        s.late_pct,
        s.settle_s
            .map_or(String::new(), |t| format!(", drained in {t:.1} s")),
        s.verdict,
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join(", "))
        }
    )
}
