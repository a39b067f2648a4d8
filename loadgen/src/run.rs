//! The public entry: [`LoadConfig`], [`LoadRun`] and [`run`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::driver::Driver;
use crate::engine::{Engine, EngineError, run_goose, run_tasks};
use crate::history::{HistoryError, OpRecord, spawn_writer};
use crate::metrics::{Accumulator, Counts, LatencySummary, Recorders, Snapshot};
use crate::outbox::{Outbox, flush_until};
use crate::output::hlog;
use crate::plan::{LoadModel, Plan};
use crate::reference::TargetError;
use crate::schedule::Schedule;
use crate::stream::Interval;
use crate::target::{Store, Target, TargetKind};
use crate::workload::{OpKind, Workload, WorkloadSpec};

/// Everything a load run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Node base URLs, `http://HOST:PORT`; operation `n` goes to node `n % len`.
    pub endpoints: Vec<String>,
    /// Which store the endpoints belong to.
    pub target: TargetKind,
    /// The workload.
    pub workload: WorkloadSpec,
    /// Open or closed loop.
    pub model: LoadModel,
    /// How the level changes.
    pub plan: Plan,
    /// Length of the run (a steps plan may end it sooner).
    pub duration: Duration,
    /// Per-request timeout (default 2 s).
    pub timeout: Duration,
    /// Open loop: a slot that starts later than this after its intended time counts as late.
    pub late_tolerance: Duration,
    /// Goose users or plain tasks.
    pub engine: Engine,
    /// Write every operation to this `history.jsonl`.
    pub history_path: Option<PathBuf>,
    /// Goose engine only: write goose's HTML report here (e.g. `RUN/goose-report.html`).
    pub goose_report: Option<PathBuf>,
    /// Silence goose's console output (set while a live view is up).
    pub quiet: bool,
    /// Offer the stream of completed operations through [`LoadRun::take_ops`].
    pub stream_ops: bool,
    /// Leading part of the run left out of the report's totals (snapshots still cover it, with
    /// `warmup` set). Whole seconds line up with the snapshot windows.
    pub warmup: Duration,
    /// Start the clock no earlier than this moment on the wall clock (generators on several
    /// machines told one moment share one origin; see [`crate::stream`]).
    pub start_at: Option<std::time::SystemTime>,
    /// Write every second's latency histograms to this HdrHistogram interval log (`.hlog`).
    pub hlog_path: Option<PathBuf>,
}

impl LoadConfig {
    /// A configuration with the defaults: constant plan, 2 s timeout, 10 ms late tolerance,
    /// goose engine, no history, no report, quiet.
    pub fn new(
        endpoints: Vec<String>,
        workload: WorkloadSpec,
        model: LoadModel,
        duration: Duration,
    ) -> Self {
        Self {
            endpoints,
            target: TargetKind::Reference,
            workload,
            model,
            plan: Plan::Constant,
            duration,
            timeout: Duration::from_secs(2),
            late_tolerance: Duration::from_millis(10),
            engine: Engine::Goose,
            history_path: None,
            goose_report: None,
            quiet: true,
            stream_ops: false,
            warmup: Duration::ZERO,
            start_at: None,
            hlog_path: None,
        }
    }
}

/// A load run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target adapter could not be built.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The history could not be written.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The interval log could not be written.
    #[error(transparent)]
    Hlog(#[from] hlog::HlogError),
    /// Goose failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The configuration makes no sense.
    #[error("bad load configuration: {0}")]
    Config(String),
}

/// What a finished (or canceled) run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Wall time from the start of the clock (the pool ready) to the last completion.
    pub elapsed: Duration,
    /// The planned length of the run, warmup included (a steps plan may shorten it).
    pub planned_duration: Duration,
    /// Whether the caller canceled the run.
    pub canceled: bool,
    /// Operations begun.
    pub started: u64,
    /// Open loop: slots the plan held before the end; `None` in closed loop.
    pub planned: Option<u64>,
    /// Open loop: planned slots never begun (the run was canceled, or the pool could not keep
    /// up even in the grace period after the end).
    pub dropped: u64,
    /// Whole-run histograms and counts.
    pub totals: Accumulator,
    /// Lines written to the history, when one was kept.
    pub history_lines: Option<u64>,
    /// The warmup left out of `totals`.
    pub warmup: Duration,
    /// Every once-a-second snapshot, the last one included: the record of the run (the watch
    /// channel of [`LoadRun::snapshots`] is for live readers and may skip a value).
    pub snapshots: Vec<Snapshot>,
}

impl LoadReport {
    /// Counts for the whole run.
    pub fn counts(&self) -> &Counts {
        &self.totals.counts
    }

    /// The judged window: the planned duration less warmup, or for a canceled run the part of
    /// it that ran.
    pub fn window(&self) -> Duration {
        let ran = if self.canceled {
            self.elapsed.min(self.planned_duration)
        } else {
            self.planned_duration
        };
        ran.saturating_sub(self.warmup)
    }

    /// Completed operations per second over the judged window. The operations the open loop
    /// planned inside the window may complete a little after it; they are still its own, so the
    /// rate of a run that kept up is its target rate.
    pub fn tps(&self) -> f64 {
        let secs = self.window().as_secs_f64();
        if secs > 0.0 {
            self.totals.counts.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// Latency over the run (from the intended start in open loop).
    pub fn latency(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.totals.latency)
    }

    /// Raw service time over the run (from the actual start).
    pub fn service(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.totals.service)
    }

    /// Latency per operation kind.
    pub fn per_kind(&self) -> std::collections::BTreeMap<OpKind, LatencySummary> {
        self.totals.per_kind_summary()
    }
}

/// A prepared run: subscribe to its snapshots and writes, then [`LoadRun::run`] it.
pub struct LoadRun {
    config: LoadConfig,
    clock: Arc<RunClock>,
    snapshots: watch::Sender<Snapshot>,
    ops_tx: Option<mpsc::UnboundedSender<OpRecord>>,
    ops_rx: Option<mpsc::UnboundedReceiver<OpRecord>>,
    intervals: Option<mpsc::UnboundedSender<Interval>>,
}

impl LoadRun {
    /// Check `config` and prepare the channels.
    pub fn new(config: LoadConfig) -> Result<Self, LoadError> {
        match &config.model {
            LoadModel::Open { rate, .. } if !(*rate > 0.0 && rate.is_finite()) => {
                return Err(LoadError::Config(format!(
                    "rate must be positive, got {rate}"
                )));
            }
            LoadModel::Closed { users: 0, .. } => {
                return Err(LoadError::Config("users must be at least 1".into()));
            }
            _ => {}
        }
        if !config.target.supports(config.workload.consistency) {
            return Err(LoadError::Config(format!(
                "{} has no {} reads",
                config.target.as_str(),
                config.workload.consistency.as_str()
            )));
        }
        if config.workload.keys == 0 {
            return Err(LoadError::Config("keys must be at least 1".into()));
        }
        let (ops_tx, ops_rx) = if config.stream_ops {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Ok(Self {
            config,
            clock: Arc::new(RunClock::new()),
            snapshots: watch::channel(Snapshot::default()).0,
            ops_tx,
            ops_rx,
            intervals: None,
        })
    }

    /// Every second's snapshot with the histograms behind it, for a generator that streams
    /// them (see [`crate::stream`]). The stream ends with the run.
    pub fn take_intervals(&mut self) -> mpsc::UnboundedReceiver<Interval> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.intervals = Some(tx);
        rx
    }

    /// The run's clock: its origin is set when the worker pool is ready to claim work, and every
    /// time the run reports counts from there.
    pub fn clock(&self) -> Arc<RunClock> {
        self.clock.clone()
    }

    /// A receiver of the once-a-second snapshots.
    pub fn snapshots(&self) -> watch::Receiver<Snapshot> {
        self.snapshots.subscribe()
    }

    /// The stream of completed operations (once; only with `stream_ops`; a run whose stream
    /// was not taken before [`LoadRun::run`] makes none). It ends with the
    /// run.
    pub fn take_ops(&mut self) -> Option<mpsc::UnboundedReceiver<OpRecord>> {
        self.ops_rx.take()
    }

    /// Run against the configured store at the configured endpoints.
    pub async fn run(self, cancel: CancellationToken) -> Result<LoadReport, LoadError> {
        let target = Store::new(
            self.config.target,
            &self.config.endpoints,
            self.config.timeout,
        )?;
        self.run_with(target, cancel).await
    }

    /// Run against any [`Target`]. Canceling `cancel` stops the load promptly:
    /// no new operation starts, those in flight finish (within the timeout), and what was
    /// measured is returned.
    pub async fn run_with<T: Target>(
        self,
        target: T,
        cancel: CancellationToken,
    ) -> Result<LoadReport, LoadError> {
        let config = self.config;
        let workload = Workload::new(config.workload.clone());
        let kinds: Vec<OpKind> = workload.kinds().collect();
        let (history, history_task) = match &config.history_path {
            Some(path) => {
                let (tx, task) = spawn_writer(path)?;
                (Some(tx), Some(task))
            }
            None => (None, None),
        };
        let clock = self.clock;
        let mut schedule = Schedule::new(
            clock.clone(),
            config.duration,
            config.timeout,
            config.model.clone(),
            config.plan.clone(),
            config.late_tolerance,
        );
        if let Some(at) = config.start_at {
            let wait = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            schedule = schedule.not_before(Instant::now() + wait);
        }
        let mut interval_outs: Vec<mpsc::UnboundedSender<Interval>> =
            self.intervals.into_iter().collect();
        let hlog_task = match &config.hlog_path {
            Some(path) => {
                let (tx, task) = hlog::spawn_writer(path, clock.clone())?;
                interval_outs.push(tx);
                Some(task)
            }
            None => None,
        };
        let pool = schedule.pool_size();
        let recorders = Arc::new(Recorders::new(pool, kinds.iter().copied()));
        // A stream nobody took would only pile up in its channel until the end of the run.
        let ops_tx = self.ops_tx.filter(|_| self.ops_rx.is_none());
        let outbox = Arc::new(Outbox::new(recorders.shards(), ops_tx, history));
        let driver = Arc::new(Driver {
            target,
            workload,
            schedule,
            recorders: recorders.clone(),
            outbox: outbox.clone(),
            stop: CancellationToken::new(),
            started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            sessions: (0..pool).map(|_| AtomicU64::new(0)).collect(),
        });
        let canceled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conductor = tokio::spawn(conduct(driver.clone(), cancel, canceled.clone()));
        let done = CancellationToken::new();
        let merger = tokio::spawn(merge_every_second(
            recorders,
            clock.clone(),
            config.warmup,
            self.snapshots,
            interval_outs,
            done.clone(),
        ));
        let flusher = tokio::spawn(flush_until(outbox, done.clone()));

        let engine_result = match config.engine {
            Engine::Tasks => {
                run_tasks(driver.clone(), pool).await;
                Ok(())
            }
            Engine::Goose => {
                let host = config.endpoints.first().cloned().unwrap_or_default();
                run_goose(
                    driver.clone(),
                    pool,
                    host,
                    config.goose_report.clone(),
                    config.quiet,
                )
                .await
            }
        };
        let elapsed = clock.origin().map_or(Duration::ZERO, |o| o.elapsed());
        driver.stop.cancel();
        conductor.abort();
        done.cancel();
        let (totals, snapshots) = merger.await.unwrap_or_default();
        // The last records are handed on before the outbox (and with it the channels) goes.
        let _ = flusher.await;
        let started = driver.started.load(Ordering::Relaxed);
        let planned = driver.schedule.planned();
        let planned_duration = driver.schedule.duration();
        drop(driver);
        let history_lines = match history_task {
            Some(task) => Some(
                task.await
                    .map_err(|e| LoadError::Config(format!("history writer: {e}")))??,
            ),
            None => None,
        };
        if let Some(task) = hlog_task {
            task.await
                .map_err(|e| LoadError::Config(format!("interval log writer: {e}")))??;
        }
        engine_result?;
        Ok(LoadReport {
            elapsed,
            planned_duration,
            canceled: canceled.load(Ordering::Relaxed),
            started,
            planned,
            dropped: planned.map_or(0, |p| p.saturating_sub(started)),
            totals,
            history_lines,
            warmup: config.warmup.min(elapsed),
            snapshots,
        })
    }
}

/// Stop the driver at the end of the run (once the open-loop backlog has drained, at most a
/// grace period late), or on cancel.
async fn conduct<T: Target>(
    driver: Arc<Driver<T>>,
    cancel: CancellationToken,
    canceled: Arc<std::sync::atomic::AtomicBool>,
) {
    let finished = async {
        let origin = driver.schedule.clock().started().await;
        tokio::time::sleep_until(driver.schedule.end_from(origin)).await;
        let planned = driver.schedule.planned();
        loop {
            // Slots still unclaimed at the claim deadline are dropped, never claimed: waiting
            // for them would hang an overloaded run forever.
            let all_claimed = planned.is_none_or(|p| driver.schedule.claimed() >= p)
                || Instant::now() >= driver.schedule.claim_deadline_from(origin);
            let drained = all_claimed && driver.in_flight.load(Ordering::Acquire) == 0;
            if drained {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = finished => {}
        _ = cancel.cancelled() => canceled.store(true, Ordering::Relaxed),
    }
    driver.stop.cancel();
}

/// Once a second, fold every worker's interval into a [`Snapshot`] and publish it; when `done`
/// fires, publish the last one and return the run's totals (intervals that began before the
/// end of `warmup` left out) and every snapshot.
async fn merge_every_second(
    recorders: Arc<Recorders>,
    clock: Arc<RunClock>,
    warmup: Duration,
    snapshots: watch::Sender<Snapshot>,
    intervals: Vec<mpsc::UnboundedSender<Interval>>,
    done: CancellationToken,
) -> (Accumulator, Vec<Snapshot>) {
    let start = tokio::select! {
        origin = clock.started() => origin,
        // Stopped before the pool was ready: nothing ran, nothing to publish but the end.
        _ = done.cancelled() => {
            let last = Snapshot { last: true, ..Snapshot::default() };
            snapshots.send_replace(last.clone());
            return (Accumulator::default(), vec![last]);
        }
    };
    let mut record = Vec::new();
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interval = Accumulator::default();
    let mut run = Accumulator::default();
    let mut last = start;
    loop {
        let finished = tokio::select! {
            _ = ticker.tick() => false,
            _ = done.cancelled() => true,
        };
        let now = Instant::now();
        recorders.drain_into(&mut interval);
        // A few milliseconds of tick jitter must not put the first window after warmup out.
        let in_warmup = (last - start) + Duration::from_millis(50) < warmup;
        if !in_warmup {
            run.merge(&interval);
        }
        let secs = (now - last).as_secs_f64();
        let snapshot = Snapshot {
            t: (now - start).as_secs_f64(),
            interval: secs,
            counts: interval.counts,
            tps: if secs > 0.0 {
                interval.counts.ops as f64 / secs
            } else {
                0.0
            },
            latency: LatencySummary::from_histogram(&interval.latency),
            per_kind: interval.per_kind_summary(),
            total: run.counts,
            last: finished,
            warmup: in_warmup,
        };
        record.push(snapshot.clone());
        for out in &intervals {
            let _ = out.send(Interval {
                snapshot: snapshot.clone(),
                acc: interval.clone(),
            });
        }
        snapshots.send_replace(snapshot);
        interval.reset();
        last = now;
        if finished {
            return (run, record);
        }
    }
}

/// Run a load with `config` against the reference cluster until it ends or `cancel` fires.
/// Use [`LoadRun`] to watch snapshots or take the write stream while it runs.
pub async fn run(config: LoadConfig, cancel: CancellationToken) -> Result<LoadReport, LoadError> {
    LoadRun::new(config)?.run(cancel).await
}
