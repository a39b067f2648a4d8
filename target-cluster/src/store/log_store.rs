//! The Raft log and vote: an in-memory view for openraft, made durable in redb by a writer
//! thread of its own with group commit.
//!
//! openraft's storage API lets `append` return as soon as the entries are readable and report
//! durability later through a callback. openraft 0.9's core nevertheless awaits that callback
//! before it handles its next message (`RaftCore::append_to_log`), so each append still costs
//! the core one durable commit; the API batches client writes into few entries for that reason
//! (`api::proposer`). The disk work itself stays off the async runtime:
//!
//! - every entry not yet purged is kept in memory ([`MemLog`]); reads never touch the disk;
//! - appends, truncations, purges and vote and commit saves are queued, in order, to one
//!   writer thread; it takes every job waiting, applies them all in one redb transaction and
//!   commits it once (with `--fsync always`, `Durability::Immediate`: one fsync for the batch),
//!   then calls each append's callback;
//! - `save_vote` waits for its own commit, as openraft requires a vote to be durable before
//!   it is used.
//!
//! One redb database holds two tables: `log` (index → postcard-encoded entry) and `meta` (the
//! vote, the last purged log id and the committed log id). The disk store uses a file; the
//! `--store memory` store uses redb's in-memory backend, so both run the same code and differ
//! only in whether anything survives the process.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::storage::{LogFlushed, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::stages::{Stage, Stages};
use crate::store::FsyncPolicy;
use crate::store::commit_stats::CommitStats;
use crate::typ::{Entry, LogId, LogState, StorageError, TypeConfig, Vote};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_VOTE: &str = "vote";
const KEY_PURGED: &str = "last_purged";
const KEY_COMMITTED: &str = "committed";

/// Most jobs the writer folds into one commit.
const MAX_BATCH: usize = 4096;

/// The log as openraft sees it: every entry after the last purged one.
#[derive(Debug, Default)]
struct MemLog {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// One step for the writer thread, applied in the order queued.
enum Job {
    Append {
        entries: Vec<(u64, Vec<u8>)>,
        callback: LogFlushed<TypeConfig>,
        /// When openraft handed it over: the `log_append` stage ends at its callback.
        queued: Instant,
    },
    Truncate {
        from: u64,
    },
    Purge {
        upto: LogId,
    },
    Vote {
        bytes: Vec<u8>,
        done: oneshot::Sender<Result<(), String>>,
    },
    Committed {
        bytes: Vec<u8>,
    },
}

impl Job {
    /// Whether this job must be on disk before it is reported done.
    fn needs_sync(&self) -> bool {
        !matches!(self, Job::Committed { .. })
    }
}

/// The log store handed to openraft. Cloning shares the same log and writer.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    mem: Mutex<MemLog>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Tells a writer that is retrying a failed commit to give up: the node is closing.
    closing: Arc<AtomicBool>,
    /// Published for `/status`: openraft 0.9's metrics carry no committed index.
    committed: Arc<AtomicU64>,
    stats: Arc<CommitStats>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has committed what is queued; joining it
        // lets go of the database, so the same files can be opened again at once.
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
    /// Loads the log from `db` and starts its writer thread.
    /// `reopen`: the database file, for a disk store, so the writer can open it again after
    /// an I/O error (redb refuses further use of a database whose commit failed).
    pub(crate) fn new(
        db: Database,
        reopen: Option<PathBuf>,
        fsync: FsyncPolicy,
        committed: Arc<AtomicU64>,
        stages: Arc<Stages>,
    ) -> Result<Self, redb::Error> {
        let mem = load(&db)?;
        committed.store(mem.committed.map_or(0, |c| c.index), Ordering::Relaxed);
        let stats = Arc::new(CommitStats::default());
        let (tx, rx) = mpsc::channel();
        let durability = match fsync {
            FsyncPolicy::Always => Durability::Immediate,
            FsyncPolicy::Never => Durability::None,
        };
        let writer_stats = stats.clone();
        let closing = Arc::new(AtomicBool::new(false));
        let disk = Disk {
            db: Some(db),
            reopen,
            closing: closing.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || write_loop(disk, durability, &rx, &writer_stats, &stages))
            .map_err(redb::Error::Io)?;
        Ok(Self {
            inner: Arc::new(Inner {
                mem: Mutex::new(mem),
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

    fn mem(&self) -> std::sync::MutexGuard<'_, MemLog> {
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
}

fn write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    postcard::to_allocvec(value).map_err(write_err)
}

/// Ensures both tables exist, so readers never see "table does not exist" after the first open.
pub(crate) fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(META)?;
    txn.commit()?;
    Ok(())
}

/// Reads the whole durable log and meta into memory.
fn load(db: &Database) -> Result<MemLog, redb::Error> {
    fn meta<T: DeserializeOwned>(
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        key: &str,
    ) -> Result<Option<T>, redb::Error> {
        match table.get(key)? {
            Some(v) => postcard::from_bytes(v.value())
                .map(Some)
                .map_err(|e| redb::Error::Corrupted(format!("meta {key}: {e}"))),
            None => Ok(None),
        }
    }
    let txn = db.begin_read()?;
    let m = txn.open_table(META)?;
    let log = txn.open_table(LOG)?;
    let mut entries = BTreeMap::new();
    for item in log.iter()? {
        let (k, v) = item?;
        let entry: Entry = postcard::from_bytes(v.value())
            .map_err(|e| redb::Error::Corrupted(format!("log entry {}: {e}", k.value())))?;
        entries.insert(k.value(), entry);
    }
    let committed: Option<Option<LogId>> = meta(&m, KEY_COMMITTED)?;
    Ok(MemLog {
        entries,
        last_purged: meta(&m, KEY_PURGED)?,
        vote: meta(&m, KEY_VOTE)?,
        committed: committed.flatten(),
    })
}

/// The writer's database, and how to open it again after an I/O error.
struct Disk {
    /// `None` between closing a database that failed and opening it again.
    db: Option<Database>,
    /// The file of a disk store; `None` for the memory store.
    reopen: Option<PathBuf>,
    closing: Arc<AtomicBool>,
}

impl Disk {
    /// Commits `batch`. A failed commit is counted, logged and tried again on a freshly opened
    /// database (redb refuses a database whose commit failed) until it succeeds or the node
    /// closes, so a full or failing disk stalls the node's acknowledgements instead of
    /// stopping its Raft core for good; it goes on once the disk is healthy. Nothing is
    /// acknowledged before it is on disk.
    fn commit(
        &mut self,
        durability: Durability,
        batch: &[Job],
        stats: &CommitStats,
    ) -> Result<(), String> {
        let mut attempt = 0u32;
        loop {
            let err = match &self.db {
                Some(db) => match commit(db, durability, batch) {
                    Ok(()) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                None => "the log database is closed after an I/O error".to_string(),
            };
            stats.error(&err);
            tracing::error!(error = %err, attempt, "the log could not be written; trying again");
            let Some(path) = &self.reopen else {
                return Err(err);
            };
            if self.closing.load(Ordering::Acquire) {
                return Err(err);
            }
            std::thread::sleep(Duration::from_millis(50u64 << attempt.min(4)));
            attempt += 1;
            // redb holds a lock on its file: the failed handle must close before the file
            // can be opened again.
            self.db = None;
            match Database::create(path) {
                Ok(db) => {
                    tracing::info!(attempt, "the log database is open again");
                    self.db = Some(db);
                }
                Err(e) => tracing::error!(error = %e, "cannot open the log again"),
            }
        }
    }
}

/// The writer thread: takes every job waiting, applies them in one transaction, commits once,
/// then reports each job done. Ends when the queue closes.
fn write_loop(
    mut disk: Disk,
    durability: Durability,
    jobs: &mpsc::Receiver<Job>,
    stats: &CommitStats,
    stages: &Stages,
) {
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
        let durability_now = if sync { durability } else { Durability::None };
        let result = disk.commit(durability_now, &batch, stats);
        if sync && matches!(durability, Durability::Immediate) && result.is_ok() {
            stats.record(started.elapsed(), batch.len());
        }
        for job in batch {
            match job {
                Job::Append {
                    callback,
                    queued,
                    entries,
                } => {
                    stages.record(Stage::LogAppend, queued.elapsed(), entries.len());
                    if result.is_ok()
                        && let (Some((first, _)), Some((last, _))) =
                            (entries.first(), entries.last())
                    {
                        stages.flushed(*first, *last);
                    }
                    callback.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                Job::Vote { done, .. } => {
                    let _ = done.send(result.clone());
                }
                Job::Truncate { .. } | Job::Purge { .. } | Job::Committed { .. } => {}
            }
        }
    }
}

/// Applies `batch` in order in one transaction.
fn commit(db: &Database, durability: Durability, batch: &[Job]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    {
        let mut log = txn.open_table(LOG)?;
        let mut meta = txn.open_table(META)?;
        for job in batch {
            match job {
                Job::Append { entries, .. } => {
                    for (index, bytes) in entries {
                        log.insert(*index, bytes.as_slice())?;
                    }
                }
                Job::Truncate { from } => {
                    log.retain_in(*from.., |_, _| false)?;
                }
                Job::Purge { upto } => {
                    let bytes = postcard::to_allocvec(upto)
                        .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
                    meta.insert(KEY_PURGED, bytes.as_slice())?;
                    log.retain_in(..=upto.index, |_, _| false)?;
                }
                Job::Vote { bytes, .. } => {
                    meta.insert(KEY_VOTE, bytes.as_slice())?;
                }
                Job::Committed { bytes } => {
                    meta.insert(KEY_COMMITTED, bytes.as_slice())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
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
        let bytes = encode(vote)?;
        let (done, saved) = oneshot::channel();
        self.queue(Job::Vote { bytes, done })?;
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
        // the leader), so it rides along with the next commit and never waits for an fsync.
        self.queue(Job::Committed {
            bytes: encode(&committed)?,
        })
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
        let mut encoded = Vec::new();
        {
            let mut mem = self.mem();
            for entry in entries {
                encoded.push((entry.log_id.index, encode(&entry)?));
                mem.entries.insert(entry.log_id.index, entry);
            }
            // Queued under the memory lock, so the writer sees jobs in the order the log
            // changed.
            self.queue(Job::Append {
                entries: encoded,
                callback,
                queued: Instant::now(),
            })
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut mem = self.mem();
        mem.entries.split_off(&log_id.index);
        self.queue(Job::Truncate { from: log_id.index })
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut mem = self.mem();
        let kept = mem.entries.split_off(&(log_id.index + 1));
        mem.entries = kept;
        mem.last_purged = Some(log_id);
        self.queue(Job::Purge { upto: log_id })
    }
}
