//! One worker step: take the next slot, run the operation, record it. Both engines (goose
//! users and plain tokio tasks) only call [`Driver::step`] in a loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::history::{HistoryRecord, OpRecord, WriteRecord, WriteStatus};
use crate::metrics::Recorders;
use crate::outbox::Outbox;
use crate::outcome::{ErrorClass, OpError, Outcome};
use crate::schedule::{Schedule, Slot};
use crate::target::Target;
use crate::workload::{Op, OpKind, Workload};
use raftdrill_wire::Consistency;

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An operation ran.
    Done {
        /// Its kind.
        kind: OpKind,
        /// From the intended start to completion.
        latency: Duration,
        /// How it ended.
        outcome: Outcome,
    },
    /// No more work for this worker.
    Finished,
}

/// Everything the workers share.
pub struct Driver<T> {
    pub(crate) target: T,
    pub(crate) workload: Workload,
    pub(crate) schedule: Schedule,
    pub(crate) recorders: Arc<Recorders>,
    /// Where completed operations go when someone takes them (stream, history).
    pub(crate) outbox: Arc<Outbox>,
    /// Stops every worker: set at the end of the run or on cancel.
    pub(crate) stop: CancellationToken,
    pub(crate) started: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
    /// Per worker, for session reads: the highest commit position it has seen from its own
    /// writes and reads, sent as the next read's `min_index`.
    pub(crate) sessions: Box<[AtomicU64]>,
}

/// The result of running one operation against the target.
struct Completed {
    outcome: Outcome,
    error: Option<OpError>,
    returned: Option<String>,
    expect: Option<Option<String>>,
    applied: Option<bool>,
    /// Commit position of an acknowledged write, or of the write a session read returned.
    index: Option<u64>,
}

impl<T: Target> Driver<T> {
    /// Run the next operation of `worker`, or say there is none.
    pub async fn step(&self, worker: usize) -> Step {
        let Slot::Run { n, intended } = self.schedule.next(worker, &self.stop).await else {
            return Step::Finished;
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::Relaxed);
        let actual = Instant::now();
        let late = self.schedule.is_late(intended, actual);
        let op = self.workload.op(n);
        let node = (n % self.target.nodes().max(1) as u64) as usize;
        let done = self.execute(worker, node, &op).await;
        let end = Instant::now();
        let latency = end - intended;
        let class = done.error.as_ref().map(|e| e.class);
        let (kind, outcome) = (op.kind, done.outcome);
        self.recorders
            .record(worker, kind, latency, end - actual, outcome, class, late);
        if let Some(e) = &done.error {
            tracing::debug!(op = n, kind = kind.as_str(), error = %e, "operation did not complete");
        }
        self.publish(worker, op, [intended, actual, end], done, class);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(think) = self.schedule.think() {
            tokio::select! {
                _ = tokio::time::sleep(think) => {}
                _ = self.stop.cancelled() => {}
            }
        }
        Step::Done {
            kind,
            latency,
            outcome,
        }
    }

    /// The worker's session position: the `min_index` of its next session read.
    fn session(&self, worker: usize) -> Option<&AtomicU64> {
        self.sessions.get(worker)
    }

    /// Raises the worker's session position to `index`.
    fn saw(&self, worker: usize, index: Option<u64>) {
        if let (Some(s), Some(i)) = (self.session(worker), index) {
            s.fetch_max(i, Ordering::Relaxed);
        }
    }

    /// A read of `key` at the workload's consistency: the value, and for a session read the
    /// commit position of the write it returned (which raises the worker's session).
    async fn read(
        &self,
        worker: usize,
        node: usize,
        key: &str,
    ) -> Result<(Option<String>, Option<u64>), OpError> {
        let consistency = self.workload.spec().consistency;
        if consistency != Consistency::Session {
            return Ok((self.target.get(node, key, consistency).await?, None));
        }
        let min_index = self
            .session(worker)
            .map_or(0, |s| s.load(Ordering::Relaxed));
        let (value, index) = self.target.get_session(node, key, min_index).await?;
        self.saw(worker, index);
        Ok((value, index))
    }

    async fn execute(&self, worker: usize, node: usize, op: &Op) -> Completed {
        let value = op.value.as_deref().unwrap_or_default();
        let failed = |e: OpError| Completed {
            outcome: e.outcome,
            error: Some(e),
            returned: None,
            expect: None,
            applied: None,
            index: None,
        };
        match op.kind {
            OpKind::Read => match self.read(worker, node, &op.key).await {
                Ok((returned, index)) => Completed {
                    outcome: Outcome::Ok,
                    error: None,
                    returned,
                    expect: None,
                    applied: None,
                    index,
                },
                Err(e) => failed(e),
            },
            OpKind::Update | OpKind::Insert => match self.target.put(node, &op.key, value).await {
                Ok(index) => {
                    self.saw(worker, index);
                    Completed {
                        outcome: Outcome::Ok,
                        error: None,
                        returned: None,
                        expect: None,
                        applied: Some(true),
                        index,
                    }
                }
                Err(e) => failed(e),
            },
            OpKind::ReadModifyWrite => {
                let current = match self.read(worker, node, &op.key).await {
                    Ok((current, _)) => current,
                    // The swap was never sent, so nothing was written.
                    Err(e) => {
                        return failed(OpError {
                            outcome: Outcome::Fail,
                            ..e
                        });
                    }
                };
                match self
                    .target
                    .cas(node, &op.key, current.as_deref(), value)
                    .await
                {
                    Ok(r) => {
                        self.saw(worker, r.index);
                        Completed {
                            outcome: Outcome::Ok,
                            error: None,
                            returned: r.current,
                            expect: Some(current),
                            applied: Some(r.swapped),
                            index: r.index,
                        }
                    }
                    Err(e) => Completed {
                        expect: Some(current),
                        ..failed(e)
                    },
                }
            }
        }
    }

    /// Hands the operation to the outbox, for whoever takes the stream or the history;
    /// `times` are its intended start, actual start and completion. The operation's key and
    /// value move into the stream's record; the history gets copies only when both are kept.
    fn publish(
        &self,
        worker: usize,
        op: Op,
        times: [Instant; 3],
        done: Completed,
        class: Option<ErrorClass>,
    ) {
        let (want_ops, want_history) = (self.outbox.wants_ops(), self.outbox.wants_history());
        if !want_ops && !want_history {
            return;
        }
        let [intended, actual, end] = times;
        // Operations run only once the clock has started.
        let start = self.schedule.start().unwrap_or(actual);
        let invoke_us = (actual - start).as_micros() as u64;
        let complete_us = (end - start).as_micros() as u64;
        let history = want_history.then(|| HistoryRecord {
            id: op.n,
            worker,
            kind: op.kind,
            key: op.key.clone(),
            value: op.value.clone(),
            expect: done.expect,
            invoke_us,
            complete_us,
            outcome: done.outcome,
            error: class,
            returned: done.returned,
            applied: done.applied,
            index: done.index,
        });
        let record = want_ops.then(|| OpRecord {
            intended_us: intended.saturating_duration_since(start).as_micros() as u64,
            invoke_us,
            complete_us,
            outcome: done.outcome,
            write: op.value.map(|value| WriteRecord {
                id: op.n,
                key: op.key,
                value,
                status: match (done.outcome, done.applied) {
                    (Outcome::Ok, Some(true)) => WriteStatus::Acked,
                    (Outcome::Unknown, _) => WriteStatus::Unknown,
                    _ => WriteStatus::NotApplied,
                },
                index: done.index,
            }),
        });
        self.outbox.push(worker, record, history);
    }
}
