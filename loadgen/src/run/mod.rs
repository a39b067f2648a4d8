//! The public entry: [`LoadConfig`], [`LoadRun`] and [`run`].
//!
//! # Layout
//! - this file: [`LoadRun`], the conductor that ends the run, [`run`]
//! - `config`: [`LoadConfig`] and [`LoadError`]
//! - `report`: [`LoadReport`]
//! - `merge`: the 1-Hz merger of the workers' intervals
//! - `writers`: the files a run writes while it runs (history, interval log)

mod config;
mod merge;
mod report;
mod writers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::driver::Driver;
use crate::engine::{Engine, EngineError, run_goose, run_tasks};
use crate::history::OpRecord;
use crate::metrics::{Recorders, Snapshot};
use crate::outbox::{Outbox, flush_until};
use crate::plan::LoadModel;
use crate::schedule::Schedule;
use crate::stream::Interval;
use crate::target::{Store, Target};
use crate::workload::{OpKind, Workload};

pub use config::{LoadConfig, LoadError};
pub use report::LoadReport;
use writers::Writers;

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
        match &config.spec.model {
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
        if !config.target.supports(config.spec.consistency) {
            return Err(LoadError::Config(format!(
                "{} has no {} reads",
                config.target.as_str(),
                config.spec.consistency.as_str()
            )));
        }
        if config.spec.keys == 0 {
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
            self.config.spec.timeout,
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
        let clock = self.clock;
        let writers = Writers::open(&config, &clock, self.intervals)?;
        let schedule = schedule(&config, clock.clone());
        let pool = schedule.pool_size();
        let workload = Workload::new(config.spec.workload_spec(config.seed));
        let kinds: Vec<OpKind> = workload.kinds().collect();
        let recorders = Arc::new(Recorders::new(pool, kinds.iter().copied()));
        // A stream nobody took would only pile up in its channel until the end of the run.
        let ops_tx = self.ops_tx.filter(|_| self.ops_rx.is_none());
        let outbox = Arc::new(Outbox::new(
            recorders.shards(),
            ops_tx,
            writers.history.clone(),
        ));
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
        let canceled = Arc::new(AtomicBool::new(false));
        let conductor = tokio::spawn(conduct(driver.clone(), cancel, canceled.clone()));
        let done = CancellationToken::new();
        let merger = tokio::spawn(merge::merge_every_second(
            recorders,
            clock.clone(),
            config.spec.warmup,
            self.snapshots,
            writers.intervals.clone(),
            done.clone(),
        ));
        let flusher = tokio::spawn(flush_until(outbox, done.clone()));

        let engine_result = drive(&config, driver.clone(), pool).await;
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
        let history_lines = writers.close().await?;
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
            warmup: config.spec.warmup.min(elapsed),
            snapshots,
        })
    }
}

/// The run's schedule: the spec's model and plan over its duration, its clock started no
/// earlier than the configured moment.
fn schedule(config: &LoadConfig, clock: Arc<RunClock>) -> Schedule {
    let spec = &config.spec;
    let schedule = Schedule::new(
        clock,
        spec.duration,
        spec.timeout,
        spec.model.clone(),
        spec.plan.clone(),
        config.late_tolerance,
    );
    match config.start_at {
        Some(at) => {
            let wait = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            schedule.not_before(Instant::now() + wait)
        }
        None => schedule,
    }
}

/// Runs the worker pool on the spec's engine until the driver stops.
async fn drive<T: Target>(
    config: &LoadConfig,
    driver: Arc<Driver<T>>,
    pool: usize,
) -> Result<(), EngineError> {
    match config.spec.engine {
        Engine::Tasks => {
            run_tasks(driver, pool).await;
            Ok(())
        }
        Engine::Goose => {
            let host = config.endpoints.first().cloned().unwrap_or_default();
            run_goose(
                driver,
                pool,
                host,
                config.goose_report.clone(),
                config.quiet,
            )
            .await
        }
    }
}

/// Stop the driver at the end of the run (once the open-loop backlog has drained, at most a
/// grace period late), or on cancel.
async fn conduct<T: Target>(
    driver: Arc<Driver<T>>,
    cancel: CancellationToken,
    canceled: Arc<AtomicBool>,
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

/// Run a load with `config` against the reference cluster until it ends or `cancel` fires.
/// Use [`LoadRun`] to watch snapshots or take the write stream while it runs.
pub async fn run(config: LoadConfig, cancel: CancellationToken) -> Result<LoadReport, LoadError> {
    LoadRun::new(config)?.run(cancel).await
}
