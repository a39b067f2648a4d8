//! The writer thread: it takes every job waiting, writes them as one batch with one sync
//! (group commit), then reports each job done, in queue order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use openraft::storage::LogFlushed;
use tokio::sync::oneshot;

use crate::stages::{Stage, Stages};
use crate::store::commit_stats::CommitStats;
use crate::store::durable::Durable;
use crate::store::wal::{Effect, Wal};
use crate::typ::TypeConfig;

/// Most jobs the writer folds into one commit.
const MAX_BATCH: usize = 4096;

/// One step for the writer thread, applied in the order queued: a frame to write, what it
/// changes, and who waits for it.
pub(super) struct Job {
    /// Numbered from 1 in queue order (see `durable`).
    pub(super) number: u64,
    pub(super) frame: Vec<u8>,
    pub(super) effect: Effect,
    pub(super) done: Done,
}

pub(super) enum Done {
    /// An append: its callback (`None`: already called, see [`super::LogStore::reports_early`]),
    /// and when openraft handed it over (the `log_append` stage ends when it is durable).
    Append {
        callback: Option<LogFlushed<TypeConfig>>,
        queued: Instant,
        first: u64,
        last: u64,
        count: usize,
    },
    Vote(oneshot::Sender<Result<(), String>>),
    /// Truncations and purges are synced with their batch; nobody waits for them.
    Synced,
    /// The committed id rides along with the next synced batch.
    Unsynced,
}

impl Job {
    /// Whether this job must be on disk before it is reported done.
    fn needs_sync(&self) -> bool {
        !matches!(self.done, Done::Unsynced)
    }
}

/// What the writer thread says about the disk.
#[derive(Debug)]
pub(super) struct Health {
    /// Since when (nanoseconds after `base`, plus one) the writer has been writing its current
    /// batch; 0 when it waits for work.
    pub(super) busy_since: AtomicU64,
    /// A write has failed since the node started.
    pub(super) failed: AtomicBool,
    pub(super) base: Instant,
}

impl Health {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64 + 1
    }

    /// The writer has been busy with one batch for longer than `limit`.
    pub(super) fn stalled_for(&self, limit: Duration) -> bool {
        let since = self.busy_since.load(Ordering::Acquire);
        since != 0 && self.now().saturating_sub(since) > limit.as_nanos() as u64
    }
}

/// The writer's log folder; `None` for the memory store.
pub(super) struct Disk {
    pub(super) wal: Option<Wal>,
    pub(super) closing: Arc<AtomicBool>,
}

impl Disk {
    /// Writes `batch`. A failed write is counted, logged and tried again (into a new segment)
    /// until it succeeds or the node closes, so a full or failing disk stalls the node's
    /// acknowledgements instead of stopping its Raft core for good; it goes on once the disk
    /// is healthy. Nothing is acknowledged before it is on disk.
    /// A failed attempt sets `failed`.
    fn commit(
        &mut self,
        batch: &[Job],
        sync: bool,
        stats: &CommitStats,
        failed: &AtomicBool,
    ) -> Result<(), String> {
        let Some(wal) = &mut self.wal else {
            return Ok(());
        };
        let mut attempt = 0u32;
        loop {
            let frames = batch.iter().map(|j| (j.frame.as_slice(), j.effect));
            let err = match wal.write(frames, sync) {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            };
            stats.error(&err);
            failed.store(true, Ordering::Release);
            tracing::error!(error = %err, attempt, "the log could not be written; trying again");
            if self.closing.load(Ordering::Acquire) {
                return Err(err);
            }
            std::thread::sleep(Duration::from_millis(50u64 << attempt.min(4)));
            attempt += 1;
        }
    }
}

/// The writer thread and what it reports to.
pub(super) struct Writer {
    pub(super) disk: Disk,
    pub(super) stats: Arc<CommitStats>,
    pub(super) stages: Arc<Stages>,
    pub(super) durable: Arc<Durable>,
    pub(super) health: Arc<Health>,
    /// A batch failed for good (the node is closing): later batches may land in a new
    /// segment, but the jobs before them did not, so nothing more is reported durable.
    pub(super) broken: bool,
    #[cfg(test)]
    pub(super) hold: Arc<tokio::sync::Mutex<()>>,
}

impl Writer {
    /// Takes every job waiting, writes them as one batch with one sync, then reports each job
    /// done. Ends when the queue closes.
    pub(super) fn run(mut self, jobs: &mpsc::Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.write(batch);
        }
        self.durable.stopped();
    }

    fn write(&mut self, batch: Vec<Job>) {
        let sync = batch.iter().any(Job::needs_sync);
        let started = Instant::now();
        self.health
            .busy_since
            .store(self.health.now(), Ordering::Release);
        // A held writer looks like a stalled disk.
        #[cfg(test)]
        let held = self.hold.clone();
        #[cfg(test)]
        let _held = held.blocking_lock();
        let result = self
            .disk
            .commit(&batch, sync, &self.stats, &self.health.failed);
        self.health.busy_since.store(0, Ordering::Release);
        if sync && self.disk.wal.as_ref().is_some_and(Wal::syncs) && result.is_ok() {
            self.stats.record(started.elapsed(), batch.len());
        }
        if result.is_err() && !self.broken {
            self.broken = true;
            self.durable.stopped();
        }
        if !self.broken
            && let Some(last) = batch.last()
        {
            self.durable.written(last.number);
        }
        for job in batch {
            match job.done {
                Done::Append {
                    callback,
                    queued,
                    first,
                    last,
                    count,
                } => {
                    self.stages
                        .record(Stage::LogAppend, queued.elapsed(), count);
                    if result.is_ok() {
                        self.stages.flushed(first, last);
                    }
                    if let Some(callback) = callback {
                        callback.log_io_completed(result.clone().map_err(std::io::Error::other));
                    }
                }
                Done::Vote(done) => {
                    let _ = done.send(result.clone());
                }
                Done::Synced | Done::Unsynced => {}
            }
        }
    }
}
