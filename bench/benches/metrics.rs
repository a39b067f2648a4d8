//! `metrics`: the load generator's latency bookkeeping: one record on a worker's request path,
//! the once-a-second merge of eight workers' histograms, and building the snapshot the view
//! and the timeline read, and the live metrics' latency buckets (`run_latency_buckets`).
//!
//! Why: `record` runs once per operation on every worker, so its cost is a tax on the load the
//! generator can offer; the merge and the snapshot run once a second on the merger task and
//! must stay far below a second. `record/worker` is `Recorders::record` (a shard's lock, counts,
//! a latency and a service-time histogram); `record/hdrhistogram` is one bare
//! `Histogram::<u64>::saturating_record` of the same values, the floor it is built on.

use std::time::Duration;

use bench::{filled_recorders, latency_samples};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use loadgen::metrics::{Accumulator, LatencyBuckets, LatencySummary, new_histogram};
use loadgen::outcome::Outcome;
use loadgen::workload::OpKind;

/// Workers whose histograms are merged each second (issue 6).
const WORKERS: usize = 8;
/// Operations per worker in one interval (2,500 ops/s each, 20,000 ops/s in all).
const OPS_PER_WORKER: usize = 2_500;

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    // Cycling through varied latencies, so the bucket index changes as in a real run.
    let samples = latency_samples(4096);

    let recorder = filled_recorders(1, 0);
    let mut i = 0;
    group.bench_function("record/worker", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let lat = samples[i];
            recorder.record(i, OpKind::Read, lat, lat, Outcome::Ok, None, false);
        })
    });

    let micros: Vec<u64> = samples.iter().map(|d| d.as_micros() as u64).collect();
    let mut h = new_histogram::<u64>();
    let mut i = 0;
    group.bench_function("record/hdrhistogram", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            h.saturating_record(std::hint::black_box(micros[i]));
        })
    });

    // The merger's turn: drain every worker into the interval, fold the interval into the run's
    // totals, reset it. The workers are refilled outside the timed part.
    group.throughput(Throughput::Elements(WORKERS as u64));
    let mut interval = Accumulator::default();
    let mut run = Accumulator::default();
    group.bench_function("merge_8_workers", |b| {
        b.iter_batched(
            || filled_recorders(WORKERS, OPS_PER_WORKER),
            |workers| {
                workers.drain_into(&mut interval);
                run.merge(&interval);
                interval.reset();
                // Handed back so their histograms are freed outside the timed part.
                workers
            },
            BatchSize::LargeInput,
        )
    });

    // The snapshot's latency figures from one merged interval: overall and per kind.
    group.throughput(Throughput::Elements(1));
    let mut merged = Accumulator::default();
    filled_recorders(WORKERS, OPS_PER_WORKER).drain_into(&mut merged);
    group.bench_function("snapshot", |b| {
        b.iter(|| {
            (
                LatencySummary::from_histogram(&merged.latency),
                merged.per_kind_summary(),
            )
        })
    });
    // The live metrics' histogram: the run's latency in fixed buckets, built once a second too.
    group.bench_function("run_latency_buckets", |b| {
        b.iter(|| LatencyBuckets::of(&merged.latency))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = bench::config(Duration::from_secs(3));
    targets = record
}
criterion_main!(benches);
