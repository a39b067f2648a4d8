//! One worker step: take the next slot, run the operation, record it. Both engines (goose
//! users and plain tokio tasks) only call [`Driver::step`] in a loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::history::{HistoryRecord, OpRecord, WriteRecord, WriteStatus};
use crate::metrics::WorkerRecorder;
use crate::outcome::{ErrorClass, OpError, Outcome};
use crate::schedule::{Schedule, Slot};
use crate::target::Target;
use crate::workload::{Op, OpKind, Workload};

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
    pub(crate) recorders: Arc<[WorkerRecorder]>,
    pub(crate) history: Option<mpsc::UnboundedSender<HistoryRecord>>,
    pub(crate) ops: Option<mpsc::UnboundedSender<OpRecord>>,
    /// Stops every worker: set at the end of the run or on cancel.
    pub(crate) stop: CancellationToken,
    pub(crate) started: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
}

/// The result of running one operation against the target.
struct Completed {
    outcome: Outcome,
    error: Option<OpError>,
    returned: Option<String>,
    expect: Option<Option<String>>,
    applied: Option<bool>,
    /// Commit position of an acknowledged write.
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
        let done = self.execute(node, &op).await;
        let end = Instant::now();
        let latency = end - intended;
        let class = done.error.as_ref().map(|e| e.class);
        if let Some(rec) = self.recorders.get(worker % self.recorders.len().max(1)) {
            rec.record(op.kind, latency, end - actual, done.outcome, class, late);
        }
        if let Some(e) = &done.error {
            tracing::debug!(op = n, kind = op.kind.as_str(), error = %e, "operation did not complete");
        }
        self.publish(worker, &op, [intended, actual, end], &done, class);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(think) = self.schedule.think() {
            tokio::select! {
                _ = tokio::time::sleep(think) => {}
                _ = self.stop.cancelled() => {}
            }
        }
        Step::Done {
            kind: op.kind,
            latency,
            outcome: done.outcome,
        }
    }

    async fn execute(&self, node: usize, op: &Op) -> Completed {
        let consistency = self.workload.spec().consistency;
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
            OpKind::Read => match self.target.get(node, &op.key, consistency).await {
                Ok(returned) => Completed {
                    outcome: Outcome::Ok,
                    error: None,
                    returned,
                    expect: None,
                    applied: None,
                    index: None,
                },
                Err(e) => failed(e),
            },
            OpKind::Update | OpKind::Insert => match self.target.put(node, &op.key, value).await {
                Ok(index) => Completed {
                    outcome: Outcome::Ok,
                    error: None,
                    returned: None,
                    expect: None,
                    applied: Some(true),
                    index,
                },
                Err(e) => failed(e),
            },
            OpKind::ReadModifyWrite => {
                let current = match self.target.get(node, &op.key, consistency).await {
                    Ok(current) => current,
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
                    Ok(r) => Completed {
                        outcome: Outcome::Ok,
                        error: None,
                        returned: r.current,
                        expect: Some(current),
                        applied: Some(r.swapped),
                        index: r.index,
                    },
                    Err(e) => Completed {
                        expect: Some(current),
                        ..failed(e)
                    },
                }
            }
        }
    }

    /// Sends the operation to the drill's stream and the history; `times` are its intended
    /// start, actual start and completion.
    fn publish(
        &self,
        worker: usize,
        op: &Op,
        times: [Instant; 3],
        done: &Completed,
        class: Option<ErrorClass>,
    ) {
        let [intended, actual, end] = times;
        // Operations run only once the clock has started.
        let start = self.schedule.start().unwrap_or(actual);
        let invoke_us = (actual - start).as_micros() as u64;
        let complete_us = (end - start).as_micros() as u64;
        if let Some(ops) = &self.ops {
            let write = op.value.as_ref().map(|value| WriteRecord {
                id: op.n,
                key: op.key.clone(),
                value: value.clone(),
                status: match (done.outcome, done.applied) {
                    (Outcome::Ok, Some(true)) => WriteStatus::Acked,
                    (Outcome::Unknown, _) => WriteStatus::Unknown,
                    _ => WriteStatus::NotApplied,
                },
                index: done.index,
            });
            let _ = ops.send(OpRecord {
                intended_us: intended.saturating_duration_since(start).as_micros() as u64,
                invoke_us,
                complete_us,
                outcome: done.outcome,
                write,
            });
        }
        if let Some(history) = &self.history {
            let _ = history.send(HistoryRecord {
                id: op.n,
                worker,
                kind: op.kind,
                key: op.key.clone(),
                value: op.value.clone(),
                expect: done.expect.clone(),
                invoke_us,
                complete_us,
                outcome: done.outcome,
                error: class,
                returned: done.returned.clone(),
                applied: done.applied,
                index: done.index,
            });
        }
    }
}
