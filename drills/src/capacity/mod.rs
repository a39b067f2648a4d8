//! `raftdrill capacity`: the highest open-loop rate that meets the SLO and that the store keeps
//! up with, found by a series of steps on one cluster (doubling, then bisection), with the
//! latency–throughput curve, why each failed step failed, and with `--verify` a closed-loop
//! cross-check of the answer.
//!
//! # Layout
//! - this file: [`CapacityOptions`], [`run`]: the search's loop
//! - [`step`]: one step (the load, its figures, the drain after it)
//! - [`judge`]: whether a step passed
//! - [`failure`]: every reason a step did not, in words
//! - [`search`]: the doubling and bisection with re-runs, pure
//! - [`verify`]: the closed-loop saturation run and what it says about the answer
//! - [`slo`]: the SLO expression
//! - [`output`]: `capacity.json`, `capacity.md`
//! - [`plot`]: draws `capacity.svg`
//! - [`progress`]: what the search has done so far, for a live view
//! - [`timeline`]: writes `timeline.csv` and `timeline.svg` of the whole search, steps as bands

pub mod failure;
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
use std::time::{Duration, Instant};

use loadgen::output::TimelineRow;
use tokio_util::sync::CancellationToken;

pub use self::output::{CapacityReport, Uncertainty};
pub use self::progress::CapacityProgress;
use self::search::Search;
use self::slo::Slo;
pub use self::step::StepResult;
use self::verify::Verification;
use crate::drill::{DrillError, results_dir};
use crate::drill::{NodeStart, nodes_spec};
use crate::exit::Exit;
use crate::nodes::Nodes;
use crate::scenario::Scenario;

/// A function of a step's scenario name and its drill's watch channels.
pub type StepWatcher = dyn Fn(&str, crate::drill::DrillWatch) + Send + Sync;

/// What a caller does with each step's drill (its name and watch channels).
#[derive(Clone)]
pub struct FollowStep(pub std::sync::Arc<StepWatcher>);

impl std::fmt::Debug for FollowStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FollowStep")
    }
}

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
    /// Where to publish progress, for the live view or live metrics.
    pub progress: Option<tokio::sync::watch::Sender<CapacityProgress>>,
    /// The live view shows the search: no line per step on stderr.
    pub quiet: bool,
    /// Handed each step's drill when steps run with faults (a whole drill each), so that live
    /// metrics serve its nodes, faults and phase too.
    pub follow_step: Option<FollowStep>,
    /// Run the nodes on hosts over SSH (and the load on the `[load] from` hosts).
    pub hosts: Option<crate::drill::HostPlan>,
    /// The load hosts, once readied (set by [`run`]).
    pub load_hosts: Option<std::sync::Arc<crate::hosts::LoadHosts>>,
}

/// Stops the search's cluster (nodes on hosts are not stopped by dropping it) and hands back
/// the error that ended the search.
async fn shut_down(cluster: Option<Nodes>, e: DrillError) -> DrillError {
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
    let started = Instant::now();
    let dir = results_dir(
        opts.out.as_deref(),
        &format!("capacity-{}", opts.scenario.name),
        std::time::SystemTime::now(),
    );
    std::fs::create_dir_all(dir.join("nodes")).map_err(|e| io_error(&dir, e))?;
    let mut opts = opts;
    ready_load_hosts(&mut opts).await?;
    let opts = opts;
    let cluster = shared_cluster(&opts, &dir).await?;
    let mut s = Searching::new(&opts, dir, started, cluster, stop);
    s.settle_first().await;
    if let Err(e) = s.run_steps().await {
        return Err(shut_down(s.cluster, e).await);
    }
    s.deny_headroom();
    let answer = s.answer();
    let verify = match s.verify(answer.as_ref()).await {
        Ok(v) => v,
        Err(e) => return Err(shut_down(s.cluster, e).await),
    };
    if let Some(c) = s.cluster.take() {
        c.shutdown(Duration::from_secs(5)).await;
    }
    if let Some(p) = &opts.progress {
        p.send_modify(|p| p.done = true);
    }
    let (report, dir, rows) = s.report(answer, verify);
    output::write_outputs(&dir, &report, &opts.slo).map_err(|(p, e)| io_error(&p, e))?;
    if let Err((p, e)) = timeline::write(&dir, &rows) {
        // A picture of the search, not its answer: capacity.json stands without it.
        tracing::warn!(path = %p.display(), error = %e, "the search's timeline could not be written");
    }
    let exit = exit_code(&report);
    Ok((report, dir, exit))
}

fn io_error(path: &Path, source: std::io::Error) -> DrillError {
    DrillError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Readies the load hosts of `[load] from`, once, before any node starts: every step's load
/// runs there.
async fn ready_load_hosts(opts: &mut CapacityOptions) -> Result<(), DrillError> {
    if let Some(plan) = &opts.hosts
        && !opts.scenario.load_from.is_empty()
    {
        let (_, specs) = plan
            .file
            .split(&opts.scenario.load_from)
            .map_err(DrillError::LoadHosts)?;
        let hosts = crate::hosts::LoadHosts::prepare(&specs, &opts.exe).await?;
        opts.load_hosts = Some(std::sync::Arc::new(hosts));
    }
    Ok(())
}

/// The cluster every step shares, when the steps carry no faults (with faults, each step is a
/// drill on a fresh cluster of its own).
async fn shared_cluster(opts: &CapacityOptions, dir: &Path) -> Result<Option<Nodes>, DrillError> {
    if opts.with_faults {
        return Ok(None);
    }
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
    Ok(Some(nodes_spec(&healthy, &start, dir)?.start().await?))
}

/// 4 when the search was stopped before its end, 0 with an answer, 1 without.
fn exit_code(report: &CapacityReport) -> Exit {
    if report.aborted || report.stopped.is_some() {
        Exit::CannotRun
    } else if report.answer.is_some() {
        Exit::Pass
    } else {
        Exit::ThresholdBroken
    }
}

/// The search under way: its cluster, the steps so far and the rows of its timeline.
struct Searching<'a> {
    opts: &'a CapacityOptions,
    dir: PathBuf,
    started: Instant,
    stop: CancellationToken,
    /// The cluster the steps share; `None` with `--with-faults`.
    cluster: Option<Nodes>,
    search: Search,
    steps: Vec<StepResult>,
    /// Why the search stopped before its end, when it did.
    stopped: Option<String>,
    rows: Vec<TimelineRow>,
}

impl<'a> Searching<'a> {
    fn new(
        opts: &'a CapacityOptions,
        dir: PathBuf,
        started: Instant,
        cluster: Option<Nodes>,
        stop: CancellationToken,
    ) -> Self {
        Searching {
            opts,
            dir,
            started,
            stop,
            cluster,
            search: Search::new(opts.start_rate, opts.resolution, 1_000_000.0),
            steps: Vec::new(),
            stopped: None,
            rows: Vec::new(),
        }
    }

    fn settle_timeout_s(&self) -> f64 {
        self.opts.settle_timeout.as_secs_f64()
    }

    /// The first step starts clean too: the cluster's own first entries applied.
    async fn settle_first(&mut self) {
        let Some(c) = &self.cluster else {
            return;
        };
        if !step::settle(c, self.opts.settle_timeout).await.drained {
            self.stopped = Some(format!(
                "the new cluster had no leader with its log applied within {:.0} s",
                self.settle_timeout_s()
            ));
        }
    }

    /// Steps until the search has its answer, is stopped, or could only go on polluted.
    async fn run_steps(&mut self) -> Result<(), DrillError> {
        while let Some(rate) = self.search.next().filter(|_| self.stopped.is_none()) {
            if self.stop.is_cancelled() {
                break;
            }
            let step = self.step(rate).await?;
            if self.record(rate, step) {
                break;
            }
        }
        Ok(())
    }

    /// Runs the next step at `rate`, lets the log drain after it, and judges it.
    async fn step(&mut self, rate: f64) -> Result<StepResult, DrillError> {
        let (opts, n) = (self.opts, self.steps.len() + 1);
        if let Some(p) = &opts.progress {
            p.send_modify(|p| {
                p.current_rate = Some(rate);
                p.current = Default::default();
            });
        }
        let offset = self.started.elapsed().as_secs_f64();
        let (out, stop) = (step::folder(&self.dir, n, rate), self.stop.clone());
        let (mut step, step_rows) = match &self.cluster {
            Some(c) => step::step_on(c, opts, rate, &out, stop).await,
            None => step::step_with_faults(opts, rate, &out, stop).await,
        }?;
        step.rerun = self.search.is_rerun(rate);
        step.started_s = offset;
        step.ended_s = offset + step_rows.last().map_or(0.0, |r| r.t_s);
        self.rows.extend(timeline::shift(step_rows, offset));
        if let Some(c) = &self.cluster {
            // The next step starts only on a drained log.
            let settled = step::settle(c, opts.settle_timeout).await;
            step.drained = Some(settled.drained);
            step.settle_s = Some(settled.waited_s);
            step.backlog_left = settled.backlog.filter(|_| !settled.drained);
        }
        judge::judge(&opts.slo, &mut step, self.settle_timeout_s());
        if let Some(p) = &opts.progress {
            let done = step.clone();
            p.send_modify(move |p| p.steps.push(done));
        }
        if !opts.quiet {
            eprintln!("{}", step_line(n, &step));
        }
        Ok(step)
    }

    /// Keeps a judged step and tells the search how it ended; returns whether the search was
    /// cancelled meanwhile (a cancelled step tells the search nothing).
    fn record(&mut self, rate: f64, step: StepResult) -> bool {
        let canceled = self.stop.is_cancelled();
        let polluted = step.drained == Some(false);
        if !canceled {
            self.search.record(rate, judge::outcome(&step));
        }
        self.steps.push(step);
        if polluted {
            // The next step would start on this one's backlog: its figures would not be its own.
            self.stopped = Some(format!(
                "the log did not drain after the step at {rate:.0} ops/s within {:.0} s; \
                 the search stopped rather than go on polluted",
                self.settle_timeout_s()
            ));
        }
        canceled
    }

    /// Fails the passes that ran before the service rate was known and have no headroom
    /// under it.
    fn deny_headroom(&mut self) {
        let Some(service) = self.search.service_rate() else {
            return;
        };
        let quiet = self.opts.quiet;
        for (i, s) in self.steps.iter_mut().enumerate() {
            let was = s.verdict == "pass";
            judge::deny_headroom(s, service);
            if was && s.verdict != "pass" && !quiet {
                eprintln!(
                    "step {}: {:.0} ops/s no longer counts: {}",
                    i + 1,
                    s.target_rate,
                    s.reason.as_deref().unwrap_or_default()
                );
            }
        }
    }

    /// The step that is the search's answer, if it found one.
    fn answer(&self) -> Option<StepResult> {
        self.search.answer().and_then(|a| {
            self.steps
                .iter()
                .rev()
                .find(|s| s.target_rate == a && s.verdict == "pass")
                .cloned()
        })
    }

    /// With `--verify`, the closed-loop run on the shared cluster, or why it did not run.
    async fn verify(
        &mut self,
        answer: Option<&StepResult>,
    ) -> Result<Option<Verification>, DrillError> {
        let (opts, Some(users)) = (self.opts, self.opts.verify_users) else {
            return Ok(None);
        };
        let clean = self.stopped.is_none() && !self.stop.is_cancelled();
        let Some(c) = self.cluster.as_ref().filter(|_| clean) else {
            return Ok(Some(Verification {
                users,
                verdict: "unknown".into(),
                note: "not run: the search did not finish on a clean cluster".into(),
                ..Default::default()
            }));
        };
        let a = answer.map(|a| (a.target_rate, a.p99_ms));
        let offset = self.started.elapsed().as_secs_f64();
        let bound = opts.slo.p99_bound_ms();
        let (mut v, v_rows) =
            verify::verify(c, opts, users, a, bound, &self.dir, self.stop.clone()).await?;
        v.started_s = offset;
        v.ended_s = offset + v_rows.last().map_or(0.0, |r| r.t_s);
        self.rows.extend(timeline::shift(v_rows, offset));
        if !opts.quiet {
            eprintln!(
                "verify: closed loop, {users} users → {:.0} ops/s (median second; mean {:.0}), p50 {:.1} ms, p99 {:.1} ms",
                v.saturation_rate, v.mean_rate, v.p50_ms, v.p99_ms
            );
        }
        Ok(Some(v))
    }

    /// The search's report, its folder and the rows of its timeline.
    fn report(
        self,
        answer: Option<StepResult>,
        verify: Option<Verification>,
    ) -> (CapacityReport, PathBuf, Vec<TimelineRow>) {
        let (opts, search) = (self.opts, &self.search);
        let report = CapacityReport {
            scenario: opts.scenario.name.clone(),
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
            steps: self.steps,
            search_s: self.started.elapsed().as_secs_f64(),
            aborted: self.stop.is_cancelled(),
            stopped: self.stopped,
        };
        (report, self.dir, self.rows)
    }
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
