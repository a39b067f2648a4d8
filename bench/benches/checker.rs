//! `checker`: the lost-write check over a drill's history of 100,000 write attempts to the
//! default 10,000-key space: feeding every write to `WriteTracker::observe`, then judging the
//! final reads with `WriteTracker::report`, in operations (or keys) per second.
//!
//! Why: the tracker takes the write stream live during a run, so `observe` must keep up with the
//! load, and `raftdrill check` re-runs the whole check on recorded runs, so its cost over a long
//! history should stay well under the time of the run it judges. The history (acknowledged,
//! unknown and failed writes, replies slightly out of commit order, a few stale keys) and the
//! reads are built once, outside the timed part.

use std::time::Duration;

use bench::write_history;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use drills::check::WriteTracker;

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
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = checker
}
criterion_main!(benches);
