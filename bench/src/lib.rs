//! Shared setup for raftdrill's criterion benchmarks: the inputs (entries, values, latencies,
//! write records), the temporary stores and the loopback servers the benches measure against.
//!
//! Every bench builds its inputs here, outside the timed part, so that the figures measure the
//! code under test and nothing else, and so that two groups that speak of "a put" mean the same
//! put: a key from YCSB's default 10,000-key space and a 256-byte value, as loadgen writes them.
//!
//! # Layout
//! - inputs: [`put_entry`], [`put_entries`], [`value`], [`latency_samples`], [`write_history`],
//!   [`register_history`]
//! - stores: [`TempStore`] (a disk store in a temporary folder)
//! - metrics: [`filled_recorders`] (eight workers' worth of one second)
//! - network: [`runtime`], [`Server`] ([`Server::echo`], [`Server::sink`]), [`connect`]
//! - futures: [`ready`] (run a future that never waits, without a runtime)
//! - criterion: [`config`] (the settings every bench group runs with)
#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use loadgen::history::{HistoryRecord, WriteRecord, WriteStatus};
use loadgen::keys::key_name;
use loadgen::metrics::Recorders;
use loadgen::outcome::Outcome;
use loadgen::rng::SplitMix64;
use loadgen::workload::OpKind;
use target_cluster::store::{FsyncPolicy, OpenedStore, StoreKind, StoreOptions, open};
use target_cluster::typ::{Entry, LogId, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Keys in the key space: loadgen's default `keys`.
pub const KEYS: u64 = 10_000;
/// Bytes per written value: loadgen's default `value_size`.
pub const VALUE_LEN: usize = 256;

/// A value of [`VALUE_LEN`] bytes unique to `n`, shaped like loadgen's (`seed-n-` then letters).
pub fn value(n: u64) -> String {
    let mut v = format!("bench-{n:x}-");
    let mut rng = SplitMix64::new(n);
    while v.len() < VALUE_LEN {
        v.push((b'a' + (rng.next_u64() % 26) as u8) as char);
    }
    v
}

/// A put entry at log `index` (term 1, leader 1) writing [`value`]`(index)` to key `key_id`.
pub fn put_entry(index: u64, key_id: u64) -> Entry {
    let log_id = LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
    let req = Request::Put {
        key: key_name(key_id),
        value: value(index),
    };
    openraft::Entry {
        log_id,
        payload: openraft::EntryPayload::Normal(req),
    }
}

/// `n` consecutive put entries from log index `first`, cycling through the [`KEYS`] key space so
/// that a long run overwrites keys instead of growing the map without end.
pub fn put_entries(first: u64, n: u64) -> Vec<Entry> {
    (first..first + n).map(|i| put_entry(i, i % KEYS)).collect()
}

/// Runs a future that completes without ever waiting (`Pending`), such as the state machine's
/// `apply` with no apply delay, by polling it once. No runtime is involved, so nothing but the
/// future's own work is measured.
///
/// # Panics
/// If the future does wait: then it needs a runtime and this helper is the wrong tool.
pub fn ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("ready() was given a future that waits"),
    }
}

/// A disk store in a temporary folder, removed on drop.
///
/// The folder is made under `$TMPDIR` (else `/tmp`): point `TMPDIR` at another file system to
/// measure its fsync instead.
pub struct TempStore {
    /// The opened store.
    pub store: OpenedStore,
    /// Kept so the folder lives as long as the store; dropped after it (field order).
    _dir: tempfile::TempDir,
}

impl TempStore {
    /// Opens a fresh disk store with `fsync`.
    ///
    /// # Panics
    /// If the temporary folder or the store cannot be made: a bench cannot go on without it.
    pub fn open(fsync: FsyncPolicy) -> TempStore {
        let dir = tempfile::tempdir().expect("cannot make a temporary folder");
        let store = open(&StoreOptions {
            kind: StoreKind::Disk,
            fsync,
            data_dir: Some(dir.path().to_path_buf()),
            apply_delay: Duration::ZERO,
        })
        .expect("cannot open the store");
        TempStore { store, _dir: dir }
    }
}

/// `n` latencies in microseconds spread like a healthy run's: mostly 0.2–5 ms, a tail to 200 ms.
/// Varied values keep the histogram's index arithmetic honest (no single hot bucket).
pub fn latency_samples(n: usize) -> Vec<Duration> {
    let mut rng = SplitMix64::new(7);
    (0..n)
        .map(|_| {
            let base = 200 + rng.below(4_800);
            let tail = if rng.below(100) == 0 {
                rng.below(200_000)
            } else {
                0
            };
            Duration::from_micros(base + tail)
        })
        .collect()
}

/// The recorders of a pool of `workers` as the load generator makes them (read and update
/// timed), each worker having recorded `ops` operations of one interval, half reads and half
/// updates.
pub fn filled_recorders(workers: usize, ops: usize) -> Recorders {
    let samples = latency_samples(ops);
    let r = Recorders::new(workers, [OpKind::Read, OpKind::Update]);
    for worker in 0..workers {
        for (i, lat) in samples.iter().enumerate() {
            let kind = if i % 2 == 0 {
                OpKind::Read
            } else {
                OpKind::Update
            };
            r.record(worker, kind, *lat, *lat, Outcome::Ok, None, false);
        }
    }
    r
}

/// The final reads the lost-write check compares against, by key.
pub type FinalReads = BTreeMap<String, Result<Option<String>, String>>;

/// A history of `ops` write attempts over [`KEYS`] keys, as a drill under faults produces it
/// (about 94% acknowledged, 4% unknown, 2% not applied; replies arrive slightly out of commit
/// order), and the final reads: each key's newest acknowledged value, except that about one key
/// in 500 reads back an older value, so the report has some losses to describe.
pub fn write_history(ops: u64) -> (Vec<WriteRecord>, FinalReads) {
    let mut rng = SplitMix64::new(11);
    let mut newest: HashMap<String, (u64, String, String)> = HashMap::new();
    let records: Vec<WriteRecord> = (0..ops)
        .map(|id| {
            let key = key_name(rng.below(KEYS));
            let value = format!("s-{id:x}-{}", &value(id)[..16]);
            let roll = rng.below(100);
            let (status, index) = match roll {
                0..94 => (WriteStatus::Acked, Some(id * 2 + rng.below(8))),
                94..98 => (WriteStatus::Unknown, None),
                _ => (WriteStatus::NotApplied, None),
            };
            if let Some(i) = index {
                let slot = newest
                    .entry(key.clone())
                    .or_insert((0, String::new(), String::new()));
                if i >= slot.0 {
                    let older = std::mem::take(&mut slot.1);
                    *slot = (i, value.clone(), older);
                }
            }
            WriteRecord {
                id,
                key,
                value,
                status,
                index,
            }
        })
        .collect();
    let reads = newest
        .into_iter()
        .map(|(key, (_, value, older))| {
            let found = if rng.below(500) == 0 { older } else { value };
            (key, Ok(Some(found)))
        })
        .collect();
    (records, reads)
}

/// A linearizable history of `ops` operations over `keys` keys from `workers` workers, shaped
/// like a drill's `history.jsonl` under faults: half reads, a third updates, the rest
/// read-modify-writes (about one in four of those finds its value changed and does not swap),
/// with 256-byte values.
///
/// It is made by simulating registers and clients: each worker runs operations back to back
/// (0.2–3 ms each, one in twenty up to 10 ms), and each operation takes effect at a random
/// instant inside its interval; reads return the value at their instant. One write or swap in
/// fifty has an unknown outcome: it never takes effect (a third of them) or takes effect up to
/// 20 ms after its call, often after the client gave up. So the history is linearizable by
/// construction, and a checker must find that out over all the concurrency of `workers`.
pub fn register_history(ops: u64, keys: u64, workers: usize, seed: u64) -> Vec<HistoryRecord> {
    let mut rng = SplitMix64::new(seed);
    let (mut records, effects) = simulate_calls(&mut rng, ops, keys, workers);
    play_effects(&mut rng, &mut records, effects);
    // A swap that never took effect had still read something before it was sent.
    for r in &mut records {
        if r.kind == OpKind::ReadModifyWrite && r.expect.is_none() {
            r.expect = Some(None);
        }
    }
    records
}

/// The calls of [`register_history`], without what they returned: each worker's operations
/// back to back, and the instant each one takes effect, `(instant, record)` (unknown operations
/// that never do are left out).
fn simulate_calls(
    rng: &mut SplitMix64,
    ops: u64,
    keys: u64,
    workers: usize,
) -> (Vec<HistoryRecord>, Vec<(u64, usize)>) {
    let mut clock = vec![0u64; workers];
    let mut records = Vec::with_capacity(ops as usize);
    let mut effects: Vec<(u64, usize)> = Vec::with_capacity(ops as usize);
    for id in 0..ops {
        let worker = (0..workers).min_by_key(|&w| clock[w]).unwrap_or(0);
        let t0 = clock[worker] + rng.below(100);
        let long = if rng.below(20) == 0 { 7_000 } else { 0 };
        let t1 = t0 + 200 + rng.below(2_800 + long);
        clock[worker] = t1;
        let kind = match rng.below(100) {
            0..50 => OpKind::Read,
            50..83 => OpKind::Update,
            _ => OpKind::ReadModifyWrite,
        };
        let unknown = kind != OpKind::Read && rng.below(50) == 0;
        let effect = match (unknown, rng.below(3)) {
            (true, 0) => None,
            (true, _) => Some(t0 + rng.below(20_000)),
            (false, _) => Some(t0 + rng.below(t1 - t0 + 1)),
        };
        if let Some(at) = effect {
            effects.push((at, records.len()));
        }
        records.push(HistoryRecord {
            id,
            worker,
            kind,
            key: key_name(rng.below(keys)),
            value: (kind != OpKind::Read).then(|| value(id)),
            expect: None,
            invoke_us: t0,
            complete_us: t1,
            outcome: if unknown {
                Outcome::Unknown
            } else {
                Outcome::Ok
            },
            error: None,
            returned: None,
            applied: None,
            index: None,
        });
    }
    (records, effects)
}

/// Plays the `effects` of [`simulate_calls`] in time order on registers of (current,
/// previous) value per key, and fills in what each record returned, expected and applied.
fn play_effects(
    rng: &mut SplitMix64,
    records: &mut [HistoryRecord],
    mut effects: Vec<(u64, usize)>,
) {
    effects.sort_unstable();
    let mut registers: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    for (_, i) in effects {
        let r = &mut records[i];
        let (current, previous) = registers.entry(r.key.clone()).or_default();
        let ok = r.outcome == Outcome::Ok;
        match r.kind {
            OpKind::Read => r.returned = current.clone(),
            OpKind::Update | OpKind::Insert => {
                r.applied = ok.then_some(true);
                *previous = std::mem::replace(current, r.value.clone());
            }
            OpKind::ReadModifyWrite => {
                // Three in four expect what is there; the rest read it before a change.
                let expect = if rng.below(4) == 0 && previous != current {
                    previous.clone()
                } else {
                    current.clone()
                };
                let swaps = expect == *current;
                r.applied = ok.then_some(swaps);
                if ok && !swaps {
                    r.returned = current.clone();
                }
                r.expect = Some(expect);
                if swaps {
                    *previous = std::mem::replace(current, r.value.clone());
                }
            }
        }
    }
}

/// Criterion as every bench here runs it: a second of warm-up, then `measure` of samples.
pub fn config(measure: Duration) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measure)
}

/// A multi-threaded tokio runtime with one worker per core of the bench machine (two here), so
/// a proxy's pumps and the servers behind it run beside the measuring client.
///
/// # Panics
/// If the runtime cannot be built.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}

/// A loopback TCP server on a free port, running on the runtime it was started on and stopped
/// when dropped.
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// An echo server: every byte read is written back. Call from inside a runtime.
    pub async fn echo() -> Server {
        Self::serve(|mut conn| async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .await
    }

    /// A sink: reads everything and writes one byte back per `ack_every` bytes read, so a
    /// client can time a one-way transfer. Call from inside a runtime.
    pub async fn sink(ack_every: usize) -> Server {
        Self::serve(move |mut conn| async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut pending = 0;
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => pending += n,
                }
                while pending >= ack_every {
                    pending -= ack_every;
                    if conn.write_all(&[1]).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await
    }

    async fn serve<F, Fut>(handle: F) -> Server
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("cannot bind a loopback port");
        let addr = listener.local_addr().expect("listener has an address");
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((conn, _)) = listener.accept().await {
                // Latency cases send one 4 KiB request at a time: Nagle must not hold it.
                let _ = conn.set_nodelay(true);
                conns.spawn(handle(conn));
            }
        });
        Server { addr, task }
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

/// Connects to `addr` with Nagle off.
///
/// # Panics
/// If the connection fails.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.expect("cannot connect");
    s.set_nodelay(true).expect("cannot set TCP_NODELAY");
    s
}
