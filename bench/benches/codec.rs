//! `codec`: encoding and decoding, in the peer transport's encoding (postcard), a put entry with
//! a 256-byte value and an AppendEntries request carrying 64 such entries, in bytes per second.
//!
//! Why: every entry is encoded once into the log and once per follower into an AppendEntries
//! body, and decoded again on each follower, so the codec's cost is paid several times per
//! write. The peer RPC sends exactly `postcard::to_allocvec(&AppendRequest)` (see
//! target-cluster/src/net), so that is what is timed.

use std::time::Duration;

use bench::{put_entries, put_entry};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use serde::de::DeserializeOwned;
use target_cluster::typ::rpc::AppendRequest;
use target_cluster::typ::{Entry, LogId, Vote};

/// Entries per AppendEntries request.
const APPEND_ENTRIES: u64 = 64;

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let leader = openraft::CommittedLeaderId::new(3, 1);
    let append = AppendRequest {
        vote: Vote::new_committed(3, 1),
        prev_log_id: Some(LogId::new(leader, 1000)),
        entries: put_entries(1001, APPEND_ENTRIES),
        leader_commit: Some(LogId::new(leader, 998)),
    };
    cases::<Entry>(&mut group, "put_entry", &put_entry(1001, 42));
    cases::<AppendRequest>(&mut group, "append_64", &append);
    group.finish();
}

/// An `encode` and a `decode` case for `value`, with its encoded size as the throughput.
fn cases<T: Serialize + DeserializeOwned>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    value: &T,
) {
    let bytes = postcard::to_allocvec(value).expect("encode");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(BenchmarkId::new("encode", name), |b| {
        b.iter(|| postcard::to_allocvec(std::hint::black_box(value)).expect("encode"))
    });
    group.bench_function(BenchmarkId::new("decode", name), |b| {
        b.iter(|| postcard::from_bytes::<T>(std::hint::black_box(&bytes)).expect("decode"))
    });
}

criterion_group! {
    name = benches;
    config = bench::config(Duration::from_secs(3));
    targets = codec
}
criterion_main!(benches);
