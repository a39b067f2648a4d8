//! The Raft log and vote: an in-memory view for openraft, made durable in the write-ahead log
//! (`wal`) by a writer thread of its own with group commit.
//!
//! openraft's storage API lets `append` return as soon as the entries are readable and report
//! durability later through a callback. openraft 0.9's core nevertheless awaits that callback
//! before it handles its next command (`RaftCore::append_to_log`), so each append still costs
//! the core one durable write; the API batches client writes into few entries for that reason
//! (`api::proposer`). The disk work itself stays off the async runtime:
//!
//! - every entry not yet purged is kept in memory; reads never touch the disk;
//! - appends, truncations, purges and vote and commit saves are queued, in order, to one
//!   writer thread; it takes every job waiting, writes them as one batch and syncs once (with
//!   `--fsync always`, one `fdatasync` for the batch), then calls each append's callback;
//! - `save_vote` waits for its own sync, as openraft requires a vote to be durable before it
//!   is used.
//!
//! The disk store writes a `wal::Wal`; the `--store memory` store writes nothing, runs the same
//! code otherwise, and keeps nothing past the process.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::storage::{LogFlushed, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, StorageIOError};
use tokio::sync::oneshot;

use crate::stages::{Stage, Stages};
use crate::store::commit_stats::CommitStats;
use crate::store::wal::{self, Contents, Effect, RecordRef, Wal};
use crate::typ::{Entry, LogId, LogState, StorageError, TypeConfig, Vote};

/// Most jobs the writer folds into one commit.
const MAX_BATCH: usize = 4096;

/// One step for the writer thread, applied in the order queued: a frame to write, what it
/// changes, and who waits for it.
struct Job {
    frame: Vec<u8>,
    effect: Effect,
    done: Done,
}

enum Done {
    /// An append: its callback, and when openraft handed it over (the `log_append` stage ends
    /// at the callback).
    Append {
        callback: LogFlushed<TypeConfig>,
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

/// The log store handed to openraft. Cloning shares the same log and writer.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    mem: Mutex<Contents>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Tells a writer that is retrying a failed write to give up: the node is closing.
    closing: Arc<AtomicBool>,
    /// Published for `/status`: openraft 0.9's metrics carry no committed index.
    committed: Arc<AtomicU64>,
    stats: Arc<CommitStats>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written what is queued; joining it
        // closes the files, so the same folder can be opened again at once.
        self.closing.store(true, Ordering::Release);
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut writer) = self.writer.lock()
            && let Some(handle) = writer.take()
        {
            let _ = handle.join();
        }
    }
}

impl LogStore {
    /// Starts the writer thread on `wal` (`None`: the memory store, nothing is written)
    /// holding `contents`, the log as replayed from it.
    pub(crate) fn new(
        wal: Option<Wal>,
        contents: Contents,
        committed: Arc<AtomicU64>,
        stages: Arc<Stages>,
    ) -> std::io::Result<Self> {
        committed.store(contents.committed.map_or(0, |c| c.index), Ordering::Relaxed);
        let stats = Arc::new(CommitStats::default());
        let (tx, rx) = mpsc::channel();
        let writer_stats = stats.clone();
        let closing = Arc::new(AtomicBool::new(false));
        let disk = Disk {
            wal,
            closing: closing.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_loop(disk, &rx, &writer_stats, &stages))?;
        Ok(Self {
            inner: Arc::new(Inner {
                mem: Mutex::new(contents),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                closing,
                committed,
                stats,
            }),
        })
    }

    /// How long the writer's commits take.
    pub fn commit_stats(&self) -> Arc<CommitStats> {
        self.inner.stats.clone()
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Contents> {
        self.inner.mem.lock().expect("log memory lock")
    }

    fn queue(&self, job: Job) -> Result<(), StorageError> {
        let jobs = self.inner.jobs.lock().expect("log queue lock");
        match jobs.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => Err(write_err(std::io::Error::other(
                "the log writer has stopped",
            ))),
        }
    }

    /// Queues `record` with what it changes and who waits for it.
    fn queue_record(
        &self,
        record: &RecordRef<'_>,
        effect: Effect,
        done: Done,
    ) -> Result<(), StorageError> {
        let frame = wal::frame(record).map_err(write_err)?;
        self.queue(Job {
            frame,
            effect,
            done,
        })
    }
}

fn write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

/// The writer's log folder; `None` for the memory store.
struct Disk {
    wal: Option<Wal>,
    closing: Arc<AtomicBool>,
}

impl Disk {
    /// Writes `batch`. A failed write is counted, logged and tried again (into a new segment)
    /// until it succeeds or the node closes, so a full or failing disk stalls the node's
    /// acknowledgements instead of stopping its Raft core for good; it goes on once the disk
    /// is healthy. Nothing is acknowledged before it is on disk.
    fn commit(&mut self, batch: &[Job], sync: bool, stats: &CommitStats) -> Result<(), String> {
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
            tracing::error!(error = %err, attempt, "the log could not be written; trying again");
            if self.closing.load(Ordering::Acquire) {
                return Err(err);
            }
            std::thread::sleep(Duration::from_millis(50u64 << attempt.min(4)));
            attempt += 1;
        }
    }
}

/// The writer thread: takes every job waiting, writes them as one batch with one sync, then
/// reports each job done. Ends when the queue closes.
fn write_loop(mut disk: Disk, jobs: &mpsc::Receiver<Job>, stats: &CommitStats, stages: &Stages) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let sync = batch.iter().any(Job::needs_sync);
        let started = Instant::now();
        let result = disk.commit(&batch, sync, stats);
        if sync && disk.wal.as_ref().is_some_and(Wal::syncs) && result.is_ok() {
            stats.record(started.elapsed(), batch.len());
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
                    stages.record(Stage::LogAppend, queued.elapsed(), count);
                    if result.is_ok() {
                        stages.flushed(first, last);
                    }
                    callback.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                Done::Vote(done) => {
                    let _ = done.send(result.clone());
                }
                Done::Synced | Done::Unsynced => {}
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self
            .mem()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState, StorageError> {
        let mem = self.mem();
        let last = mem
            .entries
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or(mem.last_purged);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let (done, saved) = oneshot::channel();
        self.queue_record(
            &RecordRef::Vote(vote),
            Effect::Vote(*vote),
            Done::Vote(done),
        )?;
        match saved.await {
            Ok(Ok(())) => {
                self.mem().vote = Some(*vote);
                Ok(())
            }
            Ok(Err(e)) => Err(write_err(std::io::Error::other(e))),
            Err(_) => Err(write_err(std::io::Error::other(
                "the log writer has stopped",
            ))),
        }
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.mem().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.inner
            .committed
            .store(committed.map_or(0, |c| c.index), Ordering::Relaxed);
        self.mem().committed = committed;
        // Losing the newest committed id in a crash is harmless (openraft learns it again from
        // the leader), so it rides along with the next synced batch and never waits for one.
        self.queue_record(
            &RecordRef::Committed(&committed),
            Effect::Committed(committed),
            Done::Unsynced,
        )
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.mem().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let (first, last, count) = (first.log_id.index, last.log_id.index, entries.len());
        let frame = wal::frame(&RecordRef::Append(&entries)).map_err(write_err)?;
        let mut mem = self.mem();
        for entry in entries {
            mem.entries.insert(entry.log_id.index, entry);
        }
        // Queued under the memory lock, so the writer sees jobs in the order the log changed.
        self.queue(Job {
            frame,
            effect: Effect::Append { last },
            done: Done::Append {
                callback,
                queued: Instant::now(),
                first,
                last,
                count,
            },
        })
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut mem = self.mem();
        mem.entries.split_off(&log_id.index);
        self.queue_record(
            &RecordRef::Truncate(log_id.index),
            Effect::Other,
            Done::Synced,
        )
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut mem = self.mem();
        let kept = mem.entries.split_off(&(log_id.index + 1));
        mem.entries = kept;
        mem.last_purged = Some(log_id);
        self.queue_record(
            &RecordRef::Purge(&log_id),
            Effect::Purge(log_id),
            Done::Synced,
        )
    }
}
