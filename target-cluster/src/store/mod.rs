//! Storage of the node: the log store ([`LogStore`], on an append-only segmented log file,
//! `wal`) and the state machine ([`StateMachine`], an in-memory map with durable snapshots).
//!
//! Why a log file of our own rather than an embedded database: the log is append, truncate the
//! tail and purge the head, and every live entry is held in memory anyway, so the file is only
//! replayed at start. A batch of jobs is one write and one `fdatasync`; a B-tree commit (redb,
//! which this store used before) cost about twice that on every write's path. The well-kept
//! Raft log engines (TiKV's raft-engine) bring their own formats, threads and dependency trees
//! for multi-group logs; the format here is small enough to read in one file and is proven by
//! its tests, openraft's suite and the crash drills.

// openraft's storage traits return its `StorageError` (224 bytes) by value; the helpers here
// return the same type so that `?` works without conversions.
#![allow(clippy::result_large_err)]

pub mod commit_stats;
mod durable;
mod log_store;
mod state_machine;
mod wal;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub use log_store::LogStore;
pub use state_machine::{KvHandle, KvState, SnapshotBuilder, StateMachine, Stored};

/// Which storage engine backs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// The log in `wal/` in the data dir, snapshots in the data dir.
    #[default]
    Disk,
    /// The same code with nothing written: everything is lost when the process dies.
    /// For measuring, and as the planted "loses acknowledged writes on crash" bug.
    Memory,
}

/// Whether log appends are fsync'd before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Every append commit is durable before openraft hears of it.
    #[default]
    Always,
    /// Unsafe: appends are acknowledged without an fsync. For measuring its cost only.
    Never,
}

impl StoreKind {
    /// The spelling of `--store` and of scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Disk => "disk",
            StoreKind::Memory => "memory",
        }
    }
}

impl std::str::FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disk" => Ok(StoreKind::Disk),
            "memory" => Ok(StoreKind::Memory),
            other => Err(format!("unknown store {other:?} (expected disk or memory)")),
        }
    }
}

impl FsyncPolicy {
    /// The spelling of `--fsync` and of scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Never => "never",
        }
    }
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(format!(
                "unknown fsync policy {other:?} (expected always or never)"
            )),
        }
    }
}

/// How to open the store.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Engine.
    pub kind: StoreKind,
    /// Fsync policy of the disk store.
    pub fsync: FsyncPolicy,
    /// Data folder; required for [`StoreKind::Disk`].
    pub data_dir: Option<PathBuf>,
    /// Testing aid: sleep this long per applied entry.
    pub apply_delay: Duration,
}

/// Opening the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk store needs a data dir.
    #[error("the disk store needs a data dir")]
    NoDataDir,
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log could not be opened or replayed.
    #[error("cannot open the log {path}: {source}")]
    Log {
        /// The log folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log holds what this node could not have written: damage on disk.
    #[error(
        "the log {path} is damaged: {what}. This node's data cannot be trusted: wipe its data \
         directory and let it rejoin the cluster, which restores it from the leader"
    )]
    Damaged {
        /// The log folder.
        path: PathBuf,
        /// Where and what (a segment and a byte, or the missing indexes).
        what: String,
    },
    /// The saved snapshot could not be read.
    #[error("{0}")]
    Snapshot(String),
}

/// An opened store: what openraft takes, plus the handles the API reads.
pub struct OpenedStore {
    /// The log store for openraft.
    pub log: LogStore,
    /// The state machine for openraft.
    pub state_machine: StateMachine,
    /// Read access to the applied state.
    pub kv: KvHandle,
    /// The committed index as last saved by openraft.
    pub committed: Arc<AtomicU64>,
    /// Stage timings of the write path, shared with the network and the API.
    pub stages: Arc<crate::stages::Stages>,
}

/// Opens (or creates) the store.
pub fn open(opts: &StoreOptions) -> Result<OpenedStore, StoreError> {
    let committed = Arc::new(AtomicU64::new(0));
    let (wal, contents, snap_dir, loaded) = match opts.kind {
        StoreKind::Memory => (None, wal::Contents::default(), None, None),
        StoreKind::Disk => {
            let dir = opts.data_dir.clone().ok_or(StoreError::NoDataDir)?;
            let create_err = |source| StoreError::CreateDir {
                path: dir.clone(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(create_err)?;
            // A new folder is durable only once the directory that names it is synced (POSIX;
            // a power loss shows it), whoever made it. The log folder and each segment are
            // synced as they are made (`wal`).
            if let Some(parent) = dir.parent() {
                sync_dir(parent).map_err(create_err)?;
            }
            let path = dir.join(wal::DIR);
            let sync = opts.fsync == FsyncPolicy::Always;
            let (wal, contents) = wal::Wal::open(&path, sync).map_err(|e| match e {
                wal::OpenError::Io(source) => StoreError::Log { path, source },
                wal::OpenError::Damaged(what) => StoreError::Damaged { path, what },
            })?;
            let loaded = state_machine::load_snapshot(&dir).map_err(StoreError::Snapshot)?;
            (Some(wal), contents, Some(dir), loaded)
        }
    };
    let stages = Arc::new(crate::stages::Stages::default());
    let log = LogStore::new(wal, contents, committed.clone(), stages.clone());
    let log = log.map_err(|source| StoreError::Log {
        path: "log writer thread".into(),
        source,
    })?;
    let state_machine = StateMachine::new(
        snap_dir,
        opts.apply_delay,
        loaded,
        stages.clone(),
        log.durable(),
    );
    let kv = state_machine.handle();
    Ok(OpenedStore {
        log,
        state_machine,
        kv,
        committed,
        stages,
    })
}

/// fsync of a directory: makes the names in it durable.
pub(crate) fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use openraft::StorageError;
    use openraft::testing::{StoreBuilder, Suite};

    use super::*;
    use crate::typ::{NodeId, TypeConfig};

    struct DiskBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for DiskBuilder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = StoreOptions {
                kind: StoreKind::Disk,
                fsync: FsyncPolicy::Always,
                data_dir: Some(dir.path().to_path_buf()),
                apply_delay: Duration::ZERO,
            };
            let s = open(&opts).expect("open store");
            Ok((dir, s.log, s.state_machine))
        }
    }

    struct MemBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for MemBuilder {
        async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<NodeId>> {
            let s = open(&StoreOptions {
                kind: StoreKind::Memory,
                ..Default::default()
            })
            .expect("open store");
            Ok(((), s.log, s.state_machine))
        }
    }

    fn entry(index: u64) -> crate::typ::Entry {
        use crate::typ::{LogId, Request};
        let log_id = LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
        let req = Request::Put {
            key: format!("k{index}"),
            value: "v".into(),
        };
        openraft::Entry {
            log_id,
            payload: openraft::EntryPayload::Normal(req),
        }
    }

    /// Appends through openraft's storage API, drops the store, opens it again.
    async fn append_and_reopen(opts: StoreOptions) -> Vec<u64> {
        use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt};
        let mut s = open(&opts).unwrap();
        s.log.blocking_append((0..=10).map(entry)).await.unwrap();
        s.log.save_vote(&crate::typ::Vote::new(3, 2)).await.unwrap();
        drop(s);
        let mut s = open(&opts).unwrap();
        assert_eq!(
            s.log.read_vote().await.unwrap().is_some(),
            opts.kind == StoreKind::Disk
        );
        let entries = s.log.try_get_log_entries(0..100).await.unwrap();
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn disk_log_survives_reopen_and_memory_log_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let disk = StoreOptions {
            kind: StoreKind::Disk,
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        assert_eq!(append_and_reopen(disk).await, (0..=10).collect::<Vec<_>>());
        let mem = StoreOptions {
            kind: StoreKind::Memory,
            ..Default::default()
        };
        assert!(append_and_reopen(mem).await.is_empty());
    }

    /// openraft's storage conformance suite on the disk store.
    #[test]
    fn disk_store_passes_openraft_suite() {
        Suite::test_all(DiskBuilder).expect("suite");
    }

    /// The same suite on the in-memory store.
    #[test]
    fn memory_store_passes_openraft_suite() {
        Suite::test_all(MemBuilder).expect("suite");
    }
}
