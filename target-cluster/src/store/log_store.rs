//! The Raft log and vote, kept in redb.
//!
//! One redb database holds two tables: `log` (index → postcard-encoded entry) and `meta` (the
//! vote, the last purged log id and the committed log id). The disk store uses a file; the
//! `--store memory` store uses redb's in-memory backend, so both run exactly the same code and
//! differ only in whether anything survives the process.
//!
//! An append is acknowledged to openraft (the `LogFlushed` callback) only after its redb commit
//! returned, and with `--fsync always` that commit is `Durability::Immediate`, which fsyncs.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{LogFlushed, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::FsyncPolicy;
use crate::typ::{Entry, LogId, LogState, StorageError, TypeConfig, Vote};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KEY_VOTE: &str = "vote";
const KEY_PURGED: &str = "last_purged";
const KEY_COMMITTED: &str = "committed";

/// The log store handed to openraft. Cloning shares the same database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    fsync: FsyncPolicy,
    /// Published for `/status`: openraft 0.9's metrics carry no committed index.
    committed: Arc<AtomicU64>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>, fsync: FsyncPolicy, committed: Arc<AtomicU64>) -> Self {
        Self {
            db,
            fsync,
            committed,
        }
    }

    fn durability(&self) -> Durability {
        match self.fsync {
            FsyncPolicy::Always => Durability::Immediate,
            FsyncPolicy::Never => Durability::None,
        }
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        match table.get(key).map_err(read_err)? {
            Some(v) => Ok(Some(postcard::from_bytes(v.value()).map_err(read_err)?)),
            None => Ok(None),
        }
    }

    /// Writes one meta key in its own transaction, blocking; call from a blocking context.
    fn write_meta<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        durability: Durability,
    ) -> Result<(), StorageError> {
        let bytes = postcard::to_allocvec(value).map_err(write_err)?;
        let mut txn = self.db.begin_write().map_err(write_err)?;
        txn.set_durability(durability).map_err(write_err)?;
        {
            let mut table = txn.open_table(META).map_err(write_err)?;
            table.insert(key, bytes.as_slice()).map_err(write_err)?;
        }
        txn.commit().map_err(write_err)
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = match txn.open_table(LOG) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        match table.last().map_err(read_err)? {
            Some((_, v)) => {
                let entry: Entry = postcard::from_bytes(v.value()).map_err(read_err)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    /// Runs a blocking storage step off the async worker threads.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(LogStore) -> Result<T, StorageError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_logs(&e)))?
    }
}

fn read_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

/// Ensures both tables exist, so readers never see "table does not exist" after the first open.
pub(crate) fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(META)?;
    txn.commit()?;
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOG).map_err(read_err)?;
        let mut out = Vec::new();
        for item in table.range(range).map_err(read_err)? {
            let (_, v) = item.map_err(read_err)?;
            out.push(postcard::from_bytes(v.value()).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState, StorageError> {
        let last_purged: Option<LogId> = self.read_meta(KEY_PURGED)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        let durability = self.durability();
        self.blocking(move |s| s.write_meta(KEY_VOTE, &vote, durability))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.committed
            .store(committed.map_or(0, |c| c.index), Ordering::Relaxed);
        // Losing the newest committed id in a crash is harmless (openraft learns it again from
        // the leader), so it never pays for an fsync of its own.
        self.blocking(move |s| s.write_meta(KEY_COMMITTED, &committed, Durability::None))
            .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self.read_meta(KEY_COMMITTED)?;
        let committed = committed.flatten();
        self.committed
            .store(committed.map_or(0, |c| c.index), Ordering::Relaxed);
        Ok(committed)
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
        for entry in entries {
            let bytes = postcard::to_allocvec(&entry).map_err(write_err)?;
            encoded.push((entry.log_id.index, bytes));
        }
        let durability = self.durability();
        let res = self
            .blocking(move |s| {
                let mut txn = s.db.begin_write().map_err(write_err)?;
                txn.set_durability(durability).map_err(write_err)?;
                {
                    let mut table = txn.open_table(LOG).map_err(write_err)?;
                    for (index, bytes) in &encoded {
                        table.insert(*index, bytes.as_slice()).map_err(write_err)?;
                    }
                }
                txn.commit().map_err(write_err)
            })
            .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let durability = self.durability();
        self.blocking(move |s| {
            let mut txn = s.db.begin_write().map_err(write_err)?;
            txn.set_durability(durability).map_err(write_err)?;
            {
                let mut table = txn.open_table(LOG).map_err(write_err)?;
                table
                    .retain_in(log_id.index.., |_, _| false)
                    .map_err(write_err)?;
            }
            txn.commit().map_err(write_err)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let durability = self.durability();
        self.blocking(move |s| {
            let bytes = postcard::to_allocvec(&log_id).map_err(write_err)?;
            let mut txn = s.db.begin_write().map_err(write_err)?;
            txn.set_durability(durability).map_err(write_err)?;
            {
                let mut meta = txn.open_table(META).map_err(write_err)?;
                meta.insert(KEY_PURGED, bytes.as_slice())
                    .map_err(write_err)?;
                let mut table = txn.open_table(LOG).map_err(write_err)?;
                table
                    .retain_in(..=log_id.index, |_, _| false)
                    .map_err(write_err)?;
            }
            txn.commit().map_err(write_err)
        })
        .await
    }
}
