//! The writer thread: it takes every job waiting, writes them as one batch with one sync
//! (group commit), then reports each job done, in queue order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use openraft::storage::LogFlushed;
use tokio::sync::{oneshot, watch};

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
    /// Why the log stopped for good after a failed sync; the node must stop.
    pub(super) fatal: watch::Sender<Option<String>>,
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
    /// The planted bug (`--unsafe-fsync-retry`): a failed sync is retried and the batch then
    /// acknowledged (see [`Wal::retry_sync`]) instead of stopping the log.
    pub(super) retry_failed_syncs: Arc<AtomicBool>,
}

impl Disk {
    /// Writes `batch`. A failed write is counted, logged and tried again (into a new segment)
    /// until it succeeds or the node closes, so a full or flaky disk stalls the node's
    /// acknowledgements instead of stopping its Raft core for good; it goes on once the disk
    /// is healthy. A failed sync stops the log for good (see the module doc of `wal`): it is
    /// published in `health.fatal`, and the node stops. Nothing is acknowledged before it is
    /// on disk. A failed attempt sets `health.failed`.
    fn commit(
        &mut self,
        batch: &[Job],
        sync: bool,
        stats: &CommitStats,
        health: &Health,
    ) -> Result<(), String> {
        let Some(wal) = &mut self.wal else {
            return Ok(());
        };
        let mut attempt = 0u32;
        loop {
            let frames = batch.iter().map(|j| (j.frame.as_slice(), j.effect));
            let written = if wal.unsynced() {
                wal.retry_sync(frames)
            } else {
                wal.write(frames, sync)
            };
            let err = match written {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            stats.error(&err.to_string());
            health.failed.store(true, Ordering::Release);
            if err.is_sync() && !self.retry_failed_syncs.load(Ordering::Acquire) {
                let why =
                    format!("the log could not be synced ({err}); it stops, and the node with it");
                tracing::error!(error = %err, "the log could not be synced: nothing more is written or acknowledged, and the node stops");
                health.fatal.send_replace(Some(why.clone()));
                return Err(why);
            }
            if err.is_sync() {
                tracing::error!(error = %err, attempt, "the log could not be synced; syncing it again (the planted bug of --unsafe-fsync-retry)");
            } else {
                tracing::error!(error = %err, attempt, "the log could not be written; trying again");
            }
            if self.closing.load(Ordering::Acquire) {
                return Err(err.to_string());
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
    /// Why a batch failed for good (a failed sync, or a failed write as the node closes):
    /// nothing more is written, and every later job fails with it.
    pub(super) stopped: Option<String>,
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
        // A clean stop seals the segment, so that damage to its last batch is caught too.
        if self.stopped.is_none()
            && let Some(wal) = &mut self.disk.wal
            && let Err(e) = wal.seal()
        {
            tracing::warn!(error = %e, "cannot seal the log's last segment");
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
        let result = match &self.stopped {
            Some(why) => Err(why.clone()),
            None => self.disk.commit(&batch, sync, &self.stats, &self.health),
        };
        self.health.busy_since.store(0, Ordering::Release);
        if sync && self.disk.wal.as_ref().is_some_and(Wal::syncs) && result.is_ok() {
            self.stats.record(started.elapsed(), batch.len());
        }
        match &result {
            Ok(()) => {
                if let Some(last) = batch.last() {
                    self.durable.written(last.number);
                }
            }
            Err(why) if self.stopped.is_none() => {
                self.stopped = Some(why.clone());
                self.durable.stopped();
            }
            Err(_) => {}
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use openraft::storage::RaftLogStorage;

    use crate::store::LogStore;
    use crate::store::wal::{RecordRef, Wal, frame};
    use crate::typ::Vote;

    /// Long enough for a write to come back on a loaded machine.
    const BACK: Duration = Duration::from_secs(10);

    /// A syncing log in `dir` whose next `fail` batch syncs fail (EIO); `plant`: with the
    /// planted bug of `--unsafe-fsync-retry`.
    fn log(dir: &tempfile::TempDir, fail: u32, plant: bool) -> LogStore {
        let (mut wal, contents) = Wal::open(dir.path(), true).unwrap();
        wal.fail_next_syncs(fail);
        let log = LogStore::new(Some(wal), contents, Default::default(), Default::default());
        let log = log.unwrap();
        if plant {
            log.plant_fsync_retry();
        }
        log
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_stops_the_log_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log(&dir, 1, false);
        assert_eq!(log.failure(), None);
        assert!(log.save_vote(&Vote::new(1, 1)).await.is_err());
        let why = tokio::time::timeout(BACK, log.failed())
            .await
            .expect("the log says it stopped");
        assert!(why.contains("fsync failed"), "{why}");
        // The disk would take this one: it is refused all the same.
        assert!(log.save_vote(&Vote::new(2, 1)).await.is_err());
        assert_eq!(log.failure(), Some(why));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_planted_bug_syncs_again_and_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log(&dir, 1, true);
        log.save_vote(&Vote::new(1, 1)).await.unwrap();
        log.save_vote(&Vote::new(2, 1)).await.unwrap();
        assert_eq!(log.failure(), None);
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_stop_seals_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log(&dir, 0, false);
        log.save_vote(&Vote::new(1, 1)).await.unwrap();
        drop(log);
        let path = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "wal"))
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
        // The last frame is a sync mark that covers every byte before it.
        let sealed = (end.saturating_sub(16)..end)
            .any(|at| bytes[at..end] == frame(&RecordRef::Synced(at as u64)).unwrap()[..]);
        assert!(sealed, "{:?}", &bytes[end.saturating_sub(16)..end]);
    }
}
