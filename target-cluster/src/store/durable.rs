//! Which log entries are on disk yet, for a leader that reports its own appends flushed before
//! they are (see `log_store`: the leader's fsync then overlaps replication).
//!
//! Every job queued to the log writer gets a number, in queue order; the writer publishes the
//! number of the last job it has made durable. An append's entries are durable once its job
//! is written. [`Durable`] keeps, for each append not yet known written, its first index and
//! its job number: a later append starting at or below that index replaced its tail (a
//! truncation and a new leader's entries), so the table stays ordered by index and by job.
//!
//! Two readers depend on it:
//! - the state machine applies an entry only once it is durable here ([`Durable::wait`]), so a
//!   client hears of a write only when the leader's own copy is on disk;
//! - the leader tells followers a commit index no higher than its own durable log
//!   ([`Durable::first_unwritten`]), so no follower applies an entry that only it holds.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, watch};

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Written {
    /// The number of the last job written (jobs are numbered from 1).
    job: u64,
    /// The writer has stopped; jobs after `job` will never be written.
    stopped: bool,
}

/// The writer stopped before the entry was written.
#[derive(Debug, thiserror::Error)]
#[error("the log writer stopped before the entry was on disk")]
pub struct WriterStopped;

/// The table of appends not yet known durable, and the writer's progress.
#[derive(Debug, Default)]
pub struct Durable {
    /// `(first index, job)` of appends, in queue order; ordered by both.
    pending: Mutex<VecDeque<(u64, u64)>>,
    written: watch::Sender<Written>,
    /// A follower was told a lower commit index than the leader's because of unwritten
    /// entries; the next write should tell it the rest at once.
    held_back: AtomicBool,
    /// Fired after a write that ended a hold-back.
    released: Notify,
}

impl Durable {
    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u64)>> {
        self.pending.lock().expect("durable table lock")
    }

    /// Job `job` appends entries from `first` on, replacing any entries at and after `first`.
    /// Called in job order.
    pub fn appended(&self, first: u64, job: u64) {
        let mut p = self.pending();
        while p.back().is_some_and(|&(f, _)| f >= first) {
            p.pop_back();
        }
        p.push_back((first, job));
    }

    /// Jobs up to `job` are on disk.
    pub fn written(&self, job: u64) {
        {
            let mut p = self.pending();
            while p.front().is_some_and(|&(_, j)| j <= job) {
                p.pop_front();
            }
        }
        self.written.send_modify(|w| w.job = w.job.max(job));
        if self.held_back.swap(false, Ordering::AcqRel) {
            self.released.notify_one();
        }
    }

    /// The writer has stopped: waiters for anything not written give up.
    pub fn stopped(&self) {
        self.written.send_modify(|w| w.stopped = true);
    }

    /// The job that must be written for the entry at `index` to be durable, if any is not yet.
    fn needed(&self, index: u64) -> Option<u64> {
        let written = self.written.borrow().job;
        let p = self.pending();
        let (_, job) = p.iter().rev().find(|&&(first, _)| first <= index)?;
        (*job > written).then_some(*job)
    }

    /// Whether the entry at `index` (one in the log now) is on disk.
    #[cfg(test)]
    pub fn is_durable(&self, index: u64) -> bool {
        self.needed(index).is_none()
    }

    /// Waits until the entry at `index` (one in the log now) is on disk.
    pub async fn wait(&self, index: u64) -> Result<(), WriterStopped> {
        let Some(job) = self.needed(index) else {
            return Ok(());
        };
        let mut rx = self.written.subscribe();
        let w = rx
            .wait_for(|w| w.job >= job || w.stopped)
            .await
            .map_err(|_| WriterStopped)?;
        if w.job >= job {
            Ok(())
        } else {
            Err(WriterStopped)
        }
    }

    /// The lowest index not yet on disk, if any.
    pub fn first_unwritten(&self) -> Option<u64> {
        let written = self.written.borrow().job;
        let p = self.pending();
        p.iter()
            .find(|&&(_, j)| j > written)
            .map(|&(first, _)| first)
    }

    /// A commit index was held back from a follower; [`Durable::released`] fires after the
    /// next write.
    pub fn hold_back(&self) {
        self.held_back.store(true, Ordering::Release);
    }

    /// Resolves after a write that follows a hold-back.
    pub async fn released(&self) {
        self.released.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_waits_for_the_job_that_last_wrote_it() {
        let d = Durable::default();
        d.appended(1, 1); // 1..=10
        d.appended(11, 3); // 11..=20
        assert_eq!(d.first_unwritten(), Some(1));
        assert!(!d.is_durable(5));
        d.written(2);
        assert!(d.is_durable(5) && d.is_durable(10));
        assert!(!d.is_durable(11) && !d.is_durable(20));
        assert_eq!(d.first_unwritten(), Some(11));
        d.written(3);
        assert!(d.is_durable(5) && d.is_durable(20));
        assert_eq!(d.first_unwritten(), None);
    }

    #[test]
    fn a_replaced_tail_waits_for_its_new_job() {
        let d = Durable::default();
        d.appended(1, 1); // 1..=10
        d.written(1);
        d.appended(11, 2); // 11..=20, from an old leader
        d.appended(15, 4); // a new leader replaces 15.. after a truncation (job 3)
        d.written(2);
        assert!(d.is_durable(14), "11..=14 came with job 2");
        assert!(!d.is_durable(15), "15 is job 4's now, not job 2's");
        assert_eq!(d.first_unwritten(), Some(15));
        d.appended(12, 5); // and again, from 12
        assert!(!d.is_durable(12) && d.is_durable(11));
        d.written(5);
        assert!(d.is_durable(15) && d.is_durable(12));
    }

    /// Polls `fut` once.
    fn ready<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        fut.poll(&mut cx).is_ready()
    }

    #[test]
    fn wait_resolves_on_the_write_and_fails_when_the_writer_stops() {
        let d = Durable::default();
        d.appended(1, 1);
        d.appended(5, 2);
        let mut wait = std::pin::pin!(d.wait(6));
        assert!(!ready(wait.as_mut()));
        d.written(1);
        assert!(!ready(wait.as_mut()), "job 2 is not written");
        d.written(2);
        assert!(ready(wait.as_mut()));
        d.appended(9, 3);
        let mut wait = std::pin::pin!(d.wait(9));
        assert!(!ready(wait.as_mut()));
        d.stopped();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(matches!(
            wait.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Err(WriterStopped))
        ));
    }

    #[test]
    fn a_hold_back_is_released_by_the_next_write() {
        let d = Durable::default();
        d.hold_back();
        d.written(1);
        // `notify_one` stores a permit when nobody waits yet: the next wait returns at once.
        assert!(ready(std::pin::pin!(d.released())));
        assert!(
            !ready(std::pin::pin!(d.released())),
            "one write, one release"
        );
        d.written(2);
        assert!(
            !ready(std::pin::pin!(d.released())),
            "no hold-back, no release"
        );
    }
}
