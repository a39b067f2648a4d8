//! `state_machine`: applying batches of 1, 64 and 1024 puts to the reference node's state
//! machine, in puts per second.
//!
//! Why: every committed entry passes through `apply` on the node's single state-machine task,
//! so its cost per put bounds the write rate a node can serve whatever the disk and network do.
//! The `map_only` line applies the same puts with `KvState::apply_request` alone, so the
//! difference to `apply` is the trait's own overhead (lock, log-id bookkeeping, response vector).
//!
//! The map is first filled with the whole 10,000-key space, so every put overwrites a key (the
//! steady state of a long run), and the entries are built outside the timed part.

use std::time::Duration;

use bench::{KEYS, put_entries, ready};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use openraft::EntryPayload;
use openraft::storage::RaftStateMachine;
use target_cluster::store::{KvState, StoreKind, StoreOptions, open};
use target_cluster::typ::Request;

const BATCHES: [u64; 3] = [1, 64, 1024];

/// Large inputs are made a few at a time so a sample does not hold hundreds of megabytes.
fn batch_size(batch: u64) -> BatchSize {
    if batch > 64 {
        BatchSize::LargeInput
    } else {
        BatchSize::SmallInput
    }
}

fn state_machine(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_machine");
    // A batch of 1024 takes about half a millisecond, plus as long again to build untimed.
    group.sample_size(50);
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch));

        // The memory store: `apply` never touches the disk, so the engine does not matter.
        let mut sm = open(&StoreOptions {
            kind: StoreKind::Memory,
            ..Default::default()
        })
        .expect("cannot open the store")
        .state_machine;
        ready(sm.apply(put_entries(1, KEYS))).expect("apply");
        let mut next = KEYS + 1;
        group.bench_function(BenchmarkId::new("apply", batch), |b| {
            b.iter_batched(
                || {
                    next += batch;
                    put_entries(next - batch, batch)
                },
                |entries| ready(sm.apply(entries)).expect("apply"),
                batch_size(batch),
            )
        });

        let mut state = KvState::default();
        for e in put_entries(1, KEYS) {
            if let EntryPayload::Normal(req) = e.payload {
                state.apply_request(e.log_id.index, req);
            }
        }
        let mut next = KEYS + 1;
        group.bench_function(BenchmarkId::new("map_only", batch), |b| {
            b.iter_batched(
                || {
                    next += batch;
                    requests(next - batch, batch)
                },
                |reqs| {
                    for (index, req) in reqs {
                        state.apply_request(index, req);
                    }
                },
                batch_size(batch),
            )
        });
    }
    group.finish();
}

/// The requests of [`put_entries`] with their log indexes.
fn requests(first: u64, n: u64) -> Vec<(u64, Request)> {
    put_entries(first, n)
        .into_iter()
        .filter_map(|e| match e.payload {
            EntryPayload::Normal(req) => Some((e.log_id.index, req)),
            _ => None,
        })
        .collect()
}

criterion_group! {
    name = benches;
    config = bench::config(Duration::from_secs(3));
    targets = state_machine
}
criterion_main!(benches);
