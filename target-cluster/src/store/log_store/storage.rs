//! openraft's storage API over the [`LogStore`]: reads from memory, changes queued to the
//! writer in the order the log changed.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::atomic::Ordering;
use std::time::Instant;

use openraft::OptionalSend;
use openraft::storage::{LogFlushed, RaftLogReader, RaftLogStorage};
use tokio::sync::oneshot;

use super::writer::Done;
use super::{LogStore, write_err};
use crate::store::wal::{self, Effect, RecordRef};
use crate::typ::{Entry, LogId, LogState, StorageError, TypeConfig, Vote};

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
        let early = self.reports_early(&entries, mem.vote.as_ref());
        for entry in entries {
            mem.entries.insert(entry.log_id.index, entry);
        }
        let mut callback = Some(callback);
        let early_callback = if early { callback.take() } else { None };
        // Queued under the memory lock, so the writer sees jobs in the order the log changed,
        // and the durable table learns them in that order too.
        let number = self.queue(
            frame,
            Effect::Append { last },
            Done::Append {
                callback,
                queued: Instant::now(),
                first,
                last,
                count,
            },
        )?;
        self.inner.durable.appended(first, number);
        drop(mem);
        if let Some(callback) = early_callback {
            callback.log_io_completed(Ok(()));
        }
        Ok(())
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
