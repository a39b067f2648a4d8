//! Completed operations on their way out of the request path: the stream of [`OpRecord`]s
//! (the drill's lost-write and recovery checks) and the [`HistoryRecord`]s of `history.jsonl`.
//!
//! A send per operation on an unbounded channel wakes the reader (the drill's tracker task,
//! the history writer's thread) for nearly every operation: a task switch, and a futex call
//! when that reader sleeps on the other core. So a worker only appends to its shard's buffer,
//! and a flusher task moves the buffers to the channels ten times a second, in completion
//! order, so each reader wakes ten times a second. The channels, and what goes through them,
//! are as before; the records arrive up to a tenth of a second later.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::history::{HistoryRecord, OpRecord};

/// How often the buffers are handed on.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Sharded buffers of completed operations and the channels they go to.
#[derive(Debug)]
pub(crate) struct Outbox {
    shards: Box<[Mutex<Batch>]>,
    ops: Option<UnboundedSender<OpRecord>>,
    history: Option<UnboundedSender<HistoryRecord>>,
}

#[derive(Debug, Default)]
struct Batch {
    ops: Vec<OpRecord>,
    history: Vec<HistoryRecord>,
}

impl Outbox {
    /// An outbox with `shards` buffers (see [`crate::metrics::Recorders`] for why shards).
    pub(crate) fn new(
        shards: usize,
        ops: Option<UnboundedSender<OpRecord>>,
        history: Option<UnboundedSender<HistoryRecord>>,
    ) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
            ops,
            history,
        }
    }

    /// Whether anyone takes the stream of [`OpRecord`]s.
    pub(crate) fn wants_ops(&self) -> bool {
        self.ops.is_some()
    }

    /// Whether a history is kept.
    pub(crate) fn wants_history(&self) -> bool {
        self.history.is_some()
    }

    /// Buffers what `worker` completed.
    pub(crate) fn push(&self, worker: usize, op: Option<OpRecord>, history: Option<HistoryRecord>) {
        if op.is_none() && history.is_none() {
            return;
        }
        let shard = &self.shards[worker % self.shards.len()];
        let mut batch = shard.lock().unwrap_or_else(PoisonError::into_inner);
        batch.ops.extend(op);
        batch.history.extend(history);
    }

    /// Hands everything buffered to the channels, each in completion order.
    pub(crate) fn flush(&self) {
        let mut ops = Vec::new();
        let mut history = Vec::new();
        for shard in self.shards.iter() {
            let batch = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            ops.extend(batch.ops);
            history.extend(batch.history);
        }
        // Each shard's part is nearly sorted already, so this is a merge of a few runs.
        ops.sort_by_key(|r| r.complete_us);
        history.sort_by_key(|r| r.complete_us);
        if let Some(tx) = &self.ops {
            for r in ops {
                let _ = tx.send(r);
            }
        }
        if let Some(tx) = &self.history {
            for r in history {
                let _ = tx.send(r);
            }
        }
    }
}

/// Flushes `outbox` ten times a second until `done`, then once more.
pub(crate) async fn flush_until(outbox: Arc<Outbox>, done: CancellationToken) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let finished = tokio::select! {
            _ = tick.tick() => false,
            _ = done.cancelled() => true,
        };
        outbox.flush();
        if finished {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::outcome::Outcome;

    fn op(complete_us: u64) -> OpRecord {
        OpRecord {
            intended_us: 0,
            invoke_us: 0,
            complete_us,
            outcome: Outcome::Ok,
            write: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn records_arrive_in_completion_order_and_the_stream_ends_after_the_last() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let outbox = Arc::new(Outbox::new(3, Some(tx), None));
        assert!(outbox.wants_ops() && !outbox.wants_history());
        let done = CancellationToken::new();
        let flusher = tokio::spawn(flush_until(outbox.clone(), done.clone()));
        for (worker, t) in [(0, 30), (1, 10), (2, 20), (0, 40), (1, 35)] {
            outbox.push(worker, Some(op(t)), None);
        }
        tokio::time::sleep(FLUSH_EVERY * 2).await;
        let mut got = Vec::new();
        while let Ok(r) = rx.try_recv() {
            got.push(r.complete_us);
        }
        assert_eq!(got, [10, 20, 30, 35, 40]);
        outbox.push(2, Some(op(50)), None);
        done.cancel();
        flusher.await.unwrap();
        drop(outbox);
        assert_eq!(rx.recv().await.map(|r| r.complete_us), Some(50));
        assert_eq!(rx.recv().await, None, "the stream ends with the outbox");
    }
}
