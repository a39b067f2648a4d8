//! The key-value state machine and its snapshots.
//!
//! The map itself lives in memory; durability comes from the log plus the latest snapshot. A
//! snapshot is written to `snapshot.bin` (write to a temporary file, fsync, rename, fsync the
//! folder) before openraft is told it exists, so openraft never purges log entries that no
//! durable snapshot covers. On restart the node loads the snapshot and openraft re-applies the
//! log up to the committed index it saved.

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, StorageIOError};
use serde::{Deserialize, Serialize};

use crate::store::durable::Durable;
use crate::typ::{
    Entry, LogId, Request, Response, Snapshot, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};

const SNAPSHOT_FILE: &str = "snapshot.bin";

/// The first bytes of a snapshot file; the CRC-32 of the body (LE) follows, then the body.
const SNAPSHOT_MAGIC: &[u8; 8] = b"RDSNAP01";

/// A stored value and the log index of the write that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The value.
    pub value: String,
    /// Log index of the write.
    pub index: u64,
}

/// The applied state: the map, the last applied log id and the last applied membership.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct KvState {
    /// The keys and values.
    pub map: HashMap<String, Stored>,
    /// Last log id applied to `map`.
    pub last_applied: Option<LogId>,
    /// Membership as of `last_applied`.
    pub membership: StoredMembership,
}

impl KvState {
    /// Applies one command at `index` and says what it did.
    pub fn apply_request(&mut self, index: u64, req: Request) -> Response {
        match req {
            Request::Put { key, value } => {
                self.map.insert(key, Stored { value, index });
                Response::Done
            }
            Request::Delete { key } => {
                self.map.remove(&key);
                Response::Done
            }
            Request::Batch(requests) => Response::Batch(
                requests
                    .into_iter()
                    .map(|r| self.apply_request(index, r))
                    .collect(),
            ),
            Request::Cas { key, expect, value } => {
                let current = self.map.get(&key).map(|s| &s.value);
                if current == expect.as_ref() {
                    self.map.insert(
                        key,
                        Stored {
                            value: value.clone(),
                            index,
                        },
                    );
                    Response::Cas {
                        ok: true,
                        current: Some(value),
                    }
                } else {
                    Response::Cas {
                        ok: false,
                        current: current.cloned(),
                    }
                }
            }
        }
    }
}

/// Shared read access to the applied state, for the client API.
pub type KvHandle = Arc<RwLock<KvState>>;

/// The current snapshot: its metadata and its encoded state.
type SavedSnapshot = (SnapshotMeta, Arc<Vec<u8>>);

/// A snapshot read back from the data dir at startup.
pub(crate) struct LoadedSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
    state: KvState,
}

/// Where snapshots are kept: a folder (disk store) or nowhere but memory.
#[derive(Clone)]
struct SnapshotStore {
    dir: Option<PathBuf>,
    current: Arc<Mutex<Option<SavedSnapshot>>>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl SnapshotStore {
    fn save(&self, meta: &SnapshotMeta, data: Vec<u8>) -> Result<Arc<Vec<u8>>, StorageError> {
        let data = Arc::new(data);
        if let Some(dir) = &self.dir {
            let file = SnapshotFile {
                meta: meta.clone(),
                data: data.as_ref().clone(),
            };
            let body = postcard::to_allocvec(&file).map_err(snap_write_err)?;
            write_durably(dir, SNAPSHOT_FILE, &framed(&body)).map_err(snap_write_err)?;
        }
        *self.current.lock().expect("snapshot lock") = Some((meta.clone(), data.clone()));
        Ok(data)
    }

    fn current(&self) -> Option<Snapshot> {
        let guard = self.current.lock().expect("snapshot lock");
        guard.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.as_ref().clone())),
        })
    }
}

/// A snapshot file's bytes: the magic, the body's CRC-32, the body. A bit flipped anywhere is
/// then refused at start instead of loading a wrong value or a wrong log position.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a snapshot file, checked; why not when it is damaged.
fn body(bytes: &[u8]) -> Result<&[u8], &'static str> {
    let rest = bytes
        .strip_prefix(SNAPSHOT_MAGIC.as_slice())
        .ok_or("it does not start with the snapshot magic")?;
    if rest.len() < 4 {
        return Err("it is cut short");
    }
    let (crc, body) = rest.split_at(4);
    let want = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != want {
        return Err("its checksum does not match");
    }
    Ok(body)
}

/// Writes `name` in `dir` so that after a crash it is either the old or the new file, whole.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

fn snap_write_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write_snapshot(None, &e).into()
}

fn snap_read_err<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read_snapshot(None, &e).into()
}

/// Loads the snapshot saved in `dir`, if any, as the initial state.
pub(crate) fn load_snapshot(dir: &Path) -> Result<Option<LoadedSnapshot>, String> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let body = body(&bytes).map_err(|why| {
        format!(
            "the snapshot {} is damaged: {why}. This node's data cannot be trusted: wipe its data directory and let it rejoin the cluster, which restores it from the leader",
            path.display()
        )
    })?;
    let file: SnapshotFile = postcard::from_bytes(body)
        .map_err(|e| format!("corrupt snapshot {}: {e}", path.display()))?;
    let state: KvState = postcard::from_bytes(&file.data)
        .map_err(|e| format!("corrupt snapshot data {}: {e}", path.display()))?;
    Ok(Some(LoadedSnapshot {
        meta: file.meta,
        data: file.data,
        state,
    }))
}

/// The state machine handed to openraft.
pub struct StateMachine {
    state: KvHandle,
    snapshots: SnapshotStore,
    apply_delay: Duration,
    stages: Arc<crate::stages::Stages>,
    /// Which log entries are on disk: an entry is applied only once it is (see
    /// `LogStore::reports_early`).
    durable: Arc<Durable>,
}

impl StateMachine {
    pub(crate) fn new(
        dir: Option<PathBuf>,
        apply_delay: Duration,
        loaded: Option<LoadedSnapshot>,
        stages: Arc<crate::stages::Stages>,
        durable: Arc<Durable>,
    ) -> Self {
        let (state, current) = match loaded {
            Some(l) => (l.state, Some((l.meta, Arc::new(l.data)))),
            None => (KvState::default(), None),
        };
        Self {
            state: Arc::new(RwLock::new(state)),
            snapshots: SnapshotStore {
                dir,
                current: Arc::new(Mutex::new(current)),
            },
            apply_delay,
            stages,
            durable,
        }
    }

    /// A handle that reads the applied state.
    pub fn handle(&self) -> KvHandle {
        self.state.clone()
    }
}

/// Grows `span` (first and last index) to take in `index`.
fn widen(span: &mut Option<(u64, u64)>, index: u64) {
    *span = Some(span.map_or((index, index), |(first, _)| (first, index)));
}

impl StateMachine {
    /// Notes one apply call that began at `started` and applied `span`.
    fn applied(&self, started: std::time::Instant, span: Option<(u64, u64)>, n: usize) {
        let stage = crate::stages::Stage::Apply;
        self.stages.record(stage, started.elapsed(), n);
        if let Some((first, last)) = span {
            self.stages.applied(first, last);
        }
    }
}

fn apply_entry(state: &mut KvState, entry: Entry) -> Response {
    state.last_applied = Some(entry.log_id);
    match entry.payload {
        EntryPayload::Blank => Response::Done,
        EntryPayload::Normal(req) => state.apply_request(entry.log_id.index, req),
        EntryPayload::Membership(m) => {
            state.membership = StoredMembership::new(Some(entry.log_id), m);
            Response::Done
        }
    }
}

/// Builds a snapshot of the state as it is when `build_snapshot` runs.
pub struct SnapshotBuilder {
    state: KvHandle,
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (data, last_applied, membership) = {
            let state = self.state.read().expect("state lock");
            let data = postcard::to_allocvec(&*state).map_err(snap_write_err)?;
            (data, state.last_applied, state.membership.clone())
        };
        let snapshot_id = match last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let snapshots = self.snapshots.clone();
        let meta2 = meta.clone();
        let data = tokio::task::spawn_blocking(move || snapshots.save(&meta2, data))
            .await
            .map_err(snap_write_err)??;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.as_ref().clone())),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state.read().expect("state lock");
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // A leader may have counted its own entries committed before they were on its disk;
        // nobody sees their effect before they are.
        let entries: Vec<Entry> = entries.into_iter().collect();
        if let Some(last) = entries.last() {
            self.durable
                .wait(last.log_id.index)
                .await
                .map_err(|e| StorageIOError::apply(last.log_id, &e))?;
        }
        let started = std::time::Instant::now();
        if self.apply_delay.is_zero() {
            let mut span = None;
            let out: Vec<Response> = {
                let mut state = self.state.write().expect("state lock");
                entries
                    .into_iter()
                    .map(|e| {
                        widen(&mut span, e.log_id.index);
                        apply_entry(&mut state, e)
                    })
                    .collect()
            };
            self.applied(started, span, out.len());
            return Ok(out);
        }
        // Testing aid (`--apply-delay`): a known cost per applied client request makes a known
        // capacity knee of 1/D requests per second, however the API batches them into entries
        // (a batch of n sleeps n times D). A thread sleep is precise to tens of microseconds
        // where tokio's timer rounds up to the next millisecond; block_in_place moves this
        // worker's other tasks elsewhere meanwhile.
        let mut out = Vec::new();
        let mut span = None;
        for entry in entries {
            widen(&mut span, entry.log_id.index);
            let requests = match &entry.payload {
                EntryPayload::Normal(Request::Batch(each)) => each.len().max(1),
                _ => 1,
            };
            let delay = self.apply_delay * requests as u32;
            tokio::task::block_in_place(|| std::thread::sleep(delay));
            out.push(apply_entry(
                &mut self.state.write().expect("state lock"),
                entry,
            ));
        }
        self.applied(started, span, out.len());
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut new_state: KvState = postcard::from_bytes(&data).map_err(snap_read_err)?;
        new_state.last_applied = meta.last_log_id;
        new_state.membership = meta.last_membership.clone();
        let snapshots = self.snapshots.clone();
        let meta2 = meta.clone();
        tokio::task::spawn_blocking(move || snapshots.save(&meta2, data))
            .await
            .map_err(snap_write_err)??;
        *self.state.write().expect("state lock") = new_state;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.snapshots.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_swaps_only_on_the_expected_value() {
        let mut s = KvState::default();
        let put = |k: &str, v: &str| Request::Put {
            key: k.into(),
            value: v.into(),
        };
        let cas = |e: Option<&str>, v: &str| Request::Cas {
            key: "k".into(),
            expect: e.map(Into::into),
            value: v.into(),
        };
        assert_eq!(
            s.apply_request(1, cas(None, "a")),
            Response::Cas {
                ok: true,
                current: Some("a".into())
            }
        );
        assert_eq!(
            s.apply_request(2, cas(None, "b")),
            Response::Cas {
                ok: false,
                current: Some("a".into())
            }
        );
        assert_eq!(
            s.apply_request(3, cas(Some("a"), "c")),
            Response::Cas {
                ok: true,
                current: Some("c".into())
            }
        );
        assert_eq!(
            s.map["k"],
            Stored {
                value: "c".into(),
                index: 3
            }
        );
        s.apply_request(4, put("x", "1"));
        s.apply_request(5, Request::Delete { key: "x".into() });
        assert!(!s.map.contains_key("x"));

        // A batch applies its requests in order, all at the entry's index, each answered.
        let got = s.apply_request(
            9,
            Request::Batch(vec![
                put("p", "1"),
                cas(Some("c"), "d"),
                cas(Some("zz"), "e"),
            ]),
        );
        assert_eq!(
            got,
            Response::Batch(vec![
                Response::Done,
                Response::Cas {
                    ok: true,
                    current: Some("d".into())
                },
                Response::Cas {
                    ok: false,
                    current: Some("d".into())
                },
            ])
        );
        assert_eq!(s.map["p"].index, 9);
        assert_eq!(s.map["k"].index, 9);
    }

    #[test]
    fn snapshot_file_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore {
            dir: Some(dir.path().into()),
            current: Default::default(),
        };
        let mut state = KvState::default();
        state.apply_request(
            7,
            Request::Put {
                key: "a".into(),
                value: "b".into(),
            },
        );
        let meta = SnapshotMeta::default();
        store
            .save(&meta, postcard::to_allocvec(&state).unwrap())
            .unwrap();
        let loaded = load_snapshot(dir.path()).unwrap().unwrap().state;
        assert_eq!(
            loaded.map["a"],
            Stored {
                value: "b".into(),
                index: 7
            }
        );
        assert!(!dir.path().join("snapshot.bin.tmp").exists());
        // One bit flipped anywhere (here: in the stored value) is refused, not loaded.
        let path = dir.path().join("snapshot.bin");
        let good = std::fs::read(&path).unwrap();
        for at in [0, 9, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            let err = load_snapshot(dir.path()).err().expect("a damaged snapshot");
            assert!(err.contains("is damaged"), "{err}");
        }
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(load_snapshot(dir.path()).is_err(), "a cut snapshot");
    }
}
