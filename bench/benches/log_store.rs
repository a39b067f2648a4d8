//! `log_store`: appending batches of 1, 16 and 256 put entries to the reference node's log (WAL),
//! with fsync on (`FsyncPolicy::Always`, what a node runs with) and off (`Never`), in entries
//! per second.
//!
//! Why: a leader acknowledges a write only after its log append is durable, so the append of
//! one batch, fsync included, is on every write's path; batch size is how openraft amortizes
//! the fsync under load. The `file_fsync` line appends the same encoded bytes to a plain file
//! and fsyncs it: the floor any durable log pays on this disk, to tell the log's own cost from the
//! disk's.
//!
//! Each append goes through `RaftLogStorageExt::blocking_append`, as openraft's tests do: the
//! entry encoding, the `spawn_blocking` hop and the log's write and sync are all timed. The store lives
//! in a temporary folder under `$TMPDIR`; every 50,000 entries the log is purged (untimed), as
//! snapshots would, so the folder does not grow for the whole run.

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bench::{TempStore, put_entries, runtime};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use target_cluster::store::FsyncPolicy;
use target_cluster::typ::LogId;

const BATCHES: [u64; 3] = [1, 16, 256];
const PURGE_EVERY: u64 = 50_000;

fn log_store(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("log_store");
    // An fsync'd append takes milliseconds: flat sampling keeps the run short.
    group.sampling_mode(SamplingMode::Flat).sample_size(30);
    for (name, fsync) in [
        ("fsync_on", FsyncPolicy::Always),
        ("fsync_off", FsyncPolicy::Never),
    ] {
        for batch in BATCHES {
            group.throughput(Throughput::Elements(batch));
            let store = TempStore::open(fsync);
            let next = Rc::new(Cell::new(1u64));
            group.bench_function(BenchmarkId::new(name, batch), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let mut log = store.store.log.clone();
                    let next = Rc::clone(&next);
                    async move {
                        let mut timed = Duration::ZERO;
                        for _ in 0..iters {
                            let first = next.get();
                            next.set(first + batch);
                            let entries = put_entries(first, batch);
                            let start = Instant::now();
                            log.blocking_append(entries).await.expect("append");
                            timed += start.elapsed();
                            let last = first + batch - 1;
                            if last / PURGE_EVERY != (first - 1) / PURGE_EVERY {
                                let upto = openraft::CommittedLeaderId::new(1, 1);
                                let upto = LogId::new(upto, last - 1);
                                log.purge(upto).await.expect("purge");
                            }
                        }
                        timed
                    }
                })
            });
        }
    }

    // The same bytes, appended to a plain file and fsync'd (`fdatasync`).
    let dir = tempfile::tempdir().expect("cannot make a temporary folder");
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch));
        let bytes: Vec<u8> = put_entries(1, batch)
            .iter()
            .flat_map(|e| postcard::to_allocvec(e).expect("encode"))
            .collect();
        // Append mode, so that after a truncation the next write lands at the start again.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join(format!("plain-{batch}.log")))
            .expect("create");
        let mut written = 0usize;
        group.bench_function(BenchmarkId::new("file_fsync", batch), |b| {
            b.iter(|| {
                if written > 256 << 20 {
                    file.set_len(0).expect("truncate");
                    written = 0;
                }
                file.write_all(&bytes).expect("write");
                file.sync_data().expect("fsync");
                written += bytes.len();
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = bench::config(Duration::from_secs(4));
    targets = log_store
}
criterion_main!(benches);
