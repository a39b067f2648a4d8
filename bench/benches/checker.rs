//! `checker`: the lost-write check over a drill's history of 100,000 write attempts to the
//! default 10,000-key space: feeding every write to `WriteTracker::observe`, then judging the
//! final reads with `WriteTracker::report`, in operations (or keys) per second. And the
//! linearizability check (`check_records`, on every core) over two valid histories from
//! `bench::register_history`: 100,000 operations over 1,000 keys from 32 workers (the common
//! case: many keys, little contention per key), and 10,000 operations on one hot key from 16
//! workers (the hard case: every operation contends with fifteen others).
//!
//! Why: the tracker takes the write stream live during a run, so `observe` must keep up with the
//! load, and `raftdrill check` re-runs the whole check on recorded runs, so its cost over a long
//! history should stay well under the time of the run it judges. The history (acknowledged,
//! unknown and failed writes, replies slightly out of commit order, a few stale keys) and the
//! reads are built once, outside the timed part. The linearizability check runs after every
//! drill and by hand on recorded runs; porcupine (etcd's robustness tests) is the yardstick,
//! and the goals are 2 s for the first history and 5 s for the second on this machine.

use std::time::Duration;

use bench::{register_history, write_history};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use drills::check::WriteTracker;
use drills::check::linear::{CheckOptions, Status, check_records};

const OPS: u64 = 100_000;

fn checker(c: &mut Criterion) {
    let (history, reads) = write_history(OPS);
    let mut group = c.benchmark_group("checker");
    group.sample_size(30);

    group.throughput(Throughput::Elements(OPS));
    group.bench_function("observe_and_report_100k", |b| {
        b.iter_with_large_drop(|| {
            let mut tracker = WriteTracker::new();
            history.iter().for_each(|rec| tracker.observe(rec));
            (tracker.report(&reads), tracker)
        })
    });

    // `report` only reads the tracker, so one tracker serves every iteration.
    let mut tracker = WriteTracker::new();
    history.iter().for_each(|rec| tracker.observe(rec));
    group.throughput(Throughput::Elements(reads.len() as u64));
    group.bench_function("report_only", |b| b.iter(|| tracker.report(&reads)));

    // Each iteration takes long enough that ten samples make a steady median.
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    let opts = CheckOptions::default();
    for (name, ops, keys, workers) in [
        (
            "linearizable_100k_ops_1000_keys_32_workers",
            100_000,
            1_000,
            32,
        ),
        ("linearizable_10k_ops_1_hot_key_16_workers", 10_000, 1, 16),
    ] {
        let history = register_history(ops, keys, workers, 7);
        // A figure for a wrong verdict would be worthless.
        let report = check_records(&history, &opts).expect("valid records");
        assert_eq!(report.status, Status::Ok, "{name}: {:?}", report.anomalies);
        group.throughput(Throughput::Elements(ops));
        group.bench_function(name, |b| b.iter(|| check_records(&history, &opts)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = bench::config(Duration::from_secs(4));
    targets = checker
}
criterion_main!(benches);
