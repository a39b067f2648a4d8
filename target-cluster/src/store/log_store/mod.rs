//! The Raft log and vote: an in-memory view for openraft, made durable in the write-ahead log
//! (`wal`) by a writer thread of its own with group commit.
//!
//! openraft's storage API lets `append` return as soon as the entries are readable and report
//! durability later through a callback. openraft 0.9's core nevertheless awaits that callback
//! before it handles its next command (`RaftCore::append_to_log`), and hands a leader's new
//! entries to replication only after it. The API batches client writes into few entries for
//! that reason (`api::proposer`), and a leader reports its own new entries flushed as soon as
//! they are queued ([`LogStore::reports_early`]), so that its fsync overlaps the followers'
//! instead of preceding it. The disk work itself stays off the async runtime:
//!
//! - every entry not yet purged is kept in memory; reads never touch the disk;
//! - appends, truncations, purges and vote and commit saves are queued, in order, to one
//!   writer thread; it takes every job waiting, writes them as one batch and syncs once (with
//!   `--fsync always`, one `fdatasync` for the batch), then calls each append's callback;
//! - `save_vote` waits for its own sync, as openraft requires a vote to be durable before it
//!   is used;
//! - what is on disk yet is tracked per entry (`durable`): the state machine applies an entry
//!   only once it is, and a leader tells its followers no commit index beyond it.
//!
//! The disk store writes a `wal::Wal`; the `--store memory` store writes nothing, runs the same
//! code otherwise, and keeps nothing past the process.

//!
//! # Layout
//! - this file: the [`LogStore`] handle, its queue to the writer and its early reports;
//! - `storage`: openraft's storage traits over it;
//! - `writer`: the writer thread, its jobs and its health.

mod storage;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::StorageIOError;

use crate::stages::Stages;
use crate::store::commit_stats::CommitStats;
use crate::store::durable::Durable;
use crate::store::wal::{self, Contents, Effect, RecordRef, Wal};
use crate::typ::{Entry, LogId, NodeId, StorageError, Vote};
use writer::{Disk, Done, Health, Job, Writer};

/// The log store handed to openraft. Cloning shares the same log and writer.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    mem: Mutex<Contents>,
    /// The queue to the writer and the number of the last job queued.
    jobs: Mutex<(Option<mpsc::Sender<Job>>, u64)>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Tells a writer that is retrying a failed write to give up: the node is closing.
    closing: Arc<AtomicBool>,
    /// Published for `/status`: openraft 0.9's metrics carry no committed index.
    committed: Arc<AtomicU64>,
    stats: Arc<CommitStats>,
    /// Which appended entries are on disk yet.
    durable: Arc<Durable>,
    /// This node's id once known ([`LogStore::set_node`]; 0 before).
    me: AtomicU64,
    /// The writer syncs: a leader's appends may be reported flushed before they are.
    may_report_early: bool,
    /// The writer's health, for [`LogStore::reports_early`] and [`LogStore::failed`].
    health: Arc<Health>,
    /// Set by [`LogStore::plant_fsync_retry`].
    retry_failed_syncs: Arc<AtomicBool>,
    /// Tests hold this to keep the writer from writing.
    #[cfg(test)]
    hold: Arc<tokio::sync::Mutex<()>>,
}

/// A batch that takes longer than this means a slow, stalled or failing disk: the leader stops
/// reporting its appends early, so its next append holds openraft's core until the disk is
/// back, as it does without early reports.
const STALLED: Duration = Duration::from_millis(20);

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written what is queued; joining it
        // closes the files, so the same folder can be opened again at once.
        self.closing.store(true, Ordering::Release);
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.0.take();
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
        let closing = Arc::new(AtomicBool::new(false));
        let may_report_early = wal.as_ref().is_some_and(Wal::syncs);
        let durable = Arc::new(Durable::default());
        let health = Arc::new(Health {
            busy_since: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            base: Instant::now(),
            fatal: tokio::sync::watch::Sender::new(None),
        });
        let retry_failed_syncs = Arc::new(AtomicBool::new(false));
        #[cfg(test)]
        let hold = Arc::new(tokio::sync::Mutex::new(()));
        let writer = Writer {
            disk: Disk {
                wal,
                closing: closing.clone(),
                retry_failed_syncs: retry_failed_syncs.clone(),
            },
            stats: stats.clone(),
            stages,
            durable: durable.clone(),
            health: health.clone(),
            stopped: None,
            #[cfg(test)]
            hold: hold.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Self {
            inner: Arc::new(Inner {
                mem: Mutex::new(contents),
                jobs: Mutex::new((Some(tx), 0)),
                writer: Mutex::new(Some(writer)),
                closing,
                committed,
                stats,
                durable,
                me: AtomicU64::new(0),
                may_report_early,
                health,
                retry_failed_syncs,
                #[cfg(test)]
                hold,
            }),
        })
    }

    /// Tells the store which node it belongs to, so it knows its own leadership (see
    /// `LogStore::reports_early`). Before this, no append is reported early. Call it once,
    /// right after the store is opened and before openraft reads the vote.
    ///
    /// A vote replayed from disk that made this node leader comes back uncommitted, so the
    /// node wins a new term before it appends again. openraft 0.9 would otherwise resume as
    /// leader of the same term and number its next entry after its last one on disk; but a
    /// follower may hold an entry at that index which this leader reported early and lost in
    /// the crash, with the same log id and another payload, and it would keep it.
    pub fn set_node(&self, id: NodeId) {
        self.inner.me.store(id, Ordering::Relaxed);
        let mut mem = self.mem();
        if let Some(vote) = &mut mem.vote
            && vote.committed
            && vote.leader_id.node_id == id
        {
            *vote = Vote::new(vote.leader_id.term, id);
        }
    }

    /// The planted bug of `--unsafe-fsync-retry`, for proving the lost-write check: after a
    /// failed fsync the writer syncs the same segment again and, once that succeeds,
    /// acknowledges the batch and carries on, as PostgreSQL did before "fsyncgate" (2018). Under
    /// a disk that drops the pages of a failed fsync, acknowledged writes are then not on disk.
    pub fn plant_fsync_retry(&self) {
        self.inner.retry_failed_syncs.store(true, Ordering::Release);
    }

    /// Resolves once the log has stopped for good after a failed fsync, with why: nothing
    /// more is written or acknowledged, and the node must stop (see the module doc of `wal`).
    pub async fn failed(&self) -> String {
        let mut rx = self.inner.health.fatal.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            // The sender lives in `Inner`, as long as this handle: never reached.
            Err(_) => std::future::pending().await,
        }
    }

    /// Why the log stopped for good after a failed fsync, if it did.
    #[cfg(test)]
    pub(crate) fn failure(&self) -> Option<String> {
        self.inner.health.fatal.borrow().clone()
    }

    /// Which entries are on disk yet; the state machine applies only those.
    pub(crate) fn durable(&self) -> Arc<Durable> {
        self.inner.durable.clone()
    }

    /// Whether the writer has been stuck on one batch for longer than `limit`.
    pub fn stalled_for(&self, limit: Duration) -> bool {
        self.inner.health.stalled_for(limit)
    }

    /// Resolves after a write that lets a held-back commit index go to the followers.
    pub async fn released(&self) {
        self.inner.durable.released().await;
    }

    /// `commit`, lowered to the last entry that is on this node's disk. A leader that reported
    /// its appends early may count its own unwritten entries towards a commit; its followers
    /// hear of that commit only once the leader's copy is written too, so no follower applies
    /// an entry that a crash of the leader could still take back from a majority.
    pub fn durable_commit(&self, commit: Option<LogId>) -> Option<LogId> {
        let c = commit?;
        // Flagged first: a write that lands between the two lines still releases it.
        self.inner.durable.hold_back();
        let first = match self.inner.durable.first_unwritten() {
            Some(first) if first <= c.index => first,
            _ => return commit,
        };
        let below = first.checked_sub(1)?;
        let mem = self.mem();
        mem.entries
            .get(&below)
            .map(|e| e.log_id)
            .or(mem.last_purged.filter(|p| p.index == below))
    }

    /// Whether an append of `entries` may be reported flushed as soon as it is queued, before
    /// its fsync, so that the leader's own fsync overlaps the followers' (openraft 0.9 hands
    /// entries to replication only once the leader's append is reported flushed).
    ///
    /// Only a leader's own new entries qualify: the saved vote is committed and names this
    /// node, and every entry carries that vote's leader id. A follower's appends never do (its
    /// vote names another node), and neither do old entries of this node's earlier terms. The
    /// disk must sync (nothing to overlap otherwise), have never failed a write, and not be
    /// stalled. Safety rests on two guards: the state machine applies an entry only once it is
    /// on disk here ([`Durable::wait`]), so no client hears of a write the leader could lose;
    /// and [`LogStore::durable_commit`] keeps followers from applying beyond it.
    fn reports_early(&self, entries: &[Entry], vote: Option<&Vote>) -> bool {
        let me = self.inner.me.load(Ordering::Relaxed);
        let Some(vote) = vote else { return false };
        self.inner.may_report_early
            && me != 0
            && vote.committed
            && vote.leader_id.node_id == me
            && !self.inner.health.failed.load(Ordering::Acquire)
            && !self.inner.health.stalled_for(STALLED)
            && entries.iter().all(|e| e.log_id.leader_id == vote.leader_id)
    }

    /// How long the writer's commits take.
    pub fn commit_stats(&self) -> Arc<CommitStats> {
        self.inner.stats.clone()
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Contents> {
        self.inner.mem.lock().expect("log memory lock")
    }

    /// Numbers `job` and queues it; returns its number.
    fn queue(&self, frame: Vec<u8>, effect: Effect, done: Done) -> Result<u64, StorageError> {
        let mut jobs = self.inner.jobs.lock().expect("log queue lock");
        let number = jobs.1 + 1;
        let job = Job {
            number,
            frame,
            effect,
            done,
        };
        match jobs.0.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => {
                jobs.1 = number;
                Ok(number)
            }
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
        self.queue(frame, effect, done).map(|_| ())
    }
}

fn write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

#[cfg(test)]
impl LogStore {
    /// While the returned lock is held, the writer writes nothing.
    fn hold(&self) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.hold.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::store::{FsyncPolicy, OpenedStore, StoreKind, StoreOptions, open};
    use crate::typ::Request;

    /// Long enough for a reported append to come back on a loaded machine; an append that is
    /// not reported early cannot come back at all while the writer is held.
    const BACK: Duration = Duration::from_secs(10);
    /// How long a test waits to see that something does not happen while the writer is held
    /// (it cannot, so this bounds the test and never makes it flaky).
    const NOT_BACK: Duration = Duration::from_millis(300);

    fn entries(term: u64, leader: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        indexes
            .map(|index| openraft::Entry {
                log_id: LogId::new(CommittedLeaderId::new(term, leader), index),
                payload: EntryPayload::Normal(Request::Put {
                    key: format!("k{index}"),
                    value: format!("v{index}"),
                }),
            })
            .collect()
    }

    /// A syncing disk store in `dir`.
    fn disk_opts(dir: &tempfile::TempDir) -> StoreOptions {
        StoreOptions {
            kind: StoreKind::Disk,
            fsync: FsyncPolicy::Always,
            data_dir: Some(dir.path().to_path_buf()),
            apply_delay: Duration::ZERO,
        }
    }

    /// A disk store of node 1 that has saved `vote`.
    async fn store(dir: &tempfile::TempDir, vote: Vote) -> OpenedStore {
        let mut s = open(&disk_opts(dir)).expect("open store");
        s.log.set_node(1);
        s.log.save_vote(&vote).await.expect("save vote");
        s
    }

    /// Appends `batch`, which must be reported at once (the writer may be held).
    async fn append_reported_early(log: &mut LogStore, batch: Vec<Entry>) {
        tokio::time::timeout(BACK, log.blocking_append(batch))
            .await
            .expect("reported early")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_reports_its_own_entries_before_the_disk_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir, Vote::new_committed(2, 1)).await;
        let hold = s.log.hold();
        let held = hold.lock().await;
        let batch = entries(2, 1, 1..=5);
        let last = batch[4].log_id;
        append_reported_early(&mut s.log, batch).await;
        let durable = s.log.durable();
        assert!(!durable.is_durable(1) && !durable.is_durable(5));
        assert_eq!(
            s.log.durable_commit(Some(last)),
            None,
            "followers hear of no commit beyond the leader's disk"
        );
        drop(held);
        tokio::time::timeout(BACK, durable.wait(5))
            .await
            .expect("written once the writer goes on")
            .unwrap();
        assert_eq!(s.log.durable_commit(Some(last)), Some(last));
    }

    /// Appends `batch` with the writer held, and checks whether openraft heard of it before
    /// the writer went on.
    async fn check_reported_while_held(s: &mut OpenedStore, batch: Vec<Entry>, expected: bool) {
        let hold = s.log.hold();
        let held = hold.lock().await;
        let mut log = s.log.clone();
        let mut append = tokio::spawn(async move { log.blocking_append(batch).await });
        let limit = if expected { BACK } else { NOT_BACK };
        let back = tokio::time::timeout(limit, &mut append).await.is_ok();
        drop(held);
        assert_eq!(back, expected, "reported while the writer was held");
        if !back {
            tokio::time::timeout(BACK, append)
                .await
                .expect("written once the writer goes on")
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn others_entries_wait_for_the_disk() {
        let cases = [
            // A follower of node 2: its entries are reported only once on disk.
            (Vote::new_committed(2, 2), entries(2, 2, 1..=3), false),
            // Node 1 leads term 3, but these entries are its own from term 1.
            (Vote::new_committed(3, 1), entries(1, 1, 1..=3), false),
            // Node 1 has voted for itself but is not leader yet (the vote is not committed).
            (Vote::new(3, 1), entries(3, 1, 1..=3), false),
            // The control: the same store reports its own entries once it leads.
            (Vote::new_committed(3, 1), entries(3, 1, 1..=3), true),
        ];
        for (vote, batch, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut s = store(&dir, vote).await;
            check_reported_while_held(&mut s, batch, expected).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_disk_stops_early_reports() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir, Vote::new_committed(2, 1)).await;
        let hold = s.log.hold();
        let held = hold.lock().await;
        append_reported_early(&mut s.log, entries(2, 1, 1..=2)).await;
        // The writer has taken that append and cannot finish it: a stalled disk.
        let deadline = Instant::now() + BACK;
        while !s.log.stalled_for(STALLED) {
            assert!(Instant::now() < deadline, "the writer never looked stalled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut log = s.log.clone();
        let mut append =
            tokio::spawn(async move { log.blocking_append(entries(2, 1, 3..=4)).await });
        let back = tokio::time::timeout(NOT_BACK, &mut append).await.is_ok();
        drop(held);
        assert!(!back, "reported early over a stalled disk");
        tokio::time::timeout(BACK, append)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(!s.log.stalled_for(STALLED));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_leader_must_win_a_new_term() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir, Vote::new_committed(4, 1)).await;
        drop(s);
        let opts = disk_opts(&dir);
        let mut s = open(&opts).unwrap();
        s.log.set_node(1);
        assert_eq!(s.log.read_vote().await.unwrap(), Some(Vote::new(4, 1)));
        drop(s);
        // Another node's store keeps the vote it saw committed.
        let mut s = open(&opts).unwrap();
        s.log.set_node(2);
        assert_eq!(
            s.log.read_vote().await.unwrap(),
            Some(Vote::new_committed(4, 1))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_reported_early_is_applied_only_once_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir, Vote::new_committed(2, 1)).await;
        let hold = s.log.hold();
        let held = hold.lock().await;
        let batch = entries(2, 1, 1..=3);
        append_reported_early(&mut s.log, batch.clone()).await;
        let mut sm = s.state_machine;
        let mut apply = tokio::spawn(async move { sm.apply(batch).await });
        let early = tokio::time::timeout(NOT_BACK, &mut apply).await.is_ok();
        assert!(!early, "applied before the leader's copy was on disk");
        assert!(s.kv.read().unwrap().last_applied.is_none());
        drop(held);
        let out = tokio::time::timeout(BACK, apply).await.unwrap().unwrap();
        assert_eq!(out.unwrap().len(), 3);
        assert_eq!(s.kv.read().unwrap().last_applied.map(|l| l.index), Some(3));
    }
}
