//! `keys`: drawing keys from the zipfian and latest distributions of loadgen's `KeyChooser`
//! over the default 10,000-key space, in keys per second (1,000 draws per iteration).
//!
//! Why: every operation a worker sends first draws a key, so a slow generator caps the offered
//! load (and skews an open-loop schedule). `uniform` is the cheapest possible draw (one random
//! number and a multiply); `zipfian_rank` is the unscrambled Gray et al. rank alone, so that
//! `zipfian` minus `zipfian_rank` is the cost of spreading hot ranks over the key space.

use std::hint::black_box;
use std::time::Duration;

use bench::KEYS;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loadgen::keys::{Distribution, KeyChooser, ZIPFIAN_THETA, Zipfian};
use loadgen::rng::SplitMix64;

const DRAWS: u64 = 1_000;

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys");
    group.throughput(Throughput::Elements(DRAWS));
    for (name, dist) in [
        ("zipfian", Distribution::Zipfian),
        ("latest", Distribution::Latest),
        ("uniform", Distribution::Uniform),
    ] {
        let chooser = KeyChooser::new(KEYS, dist);
        let mut rng = SplitMix64::new(1);
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..DRAWS {
                    // `latest` follows inserts: the newest id is near the top of the space.
                    black_box(chooser.choose(&mut rng, black_box(KEYS - 1)));
                }
            })
        });
    }
    let zipf = Zipfian::new(KEYS, ZIPFIAN_THETA);
    let mut rng = SplitMix64::new(1);
    group.bench_function("zipfian_rank", |b| {
        b.iter(|| {
            for _ in 0..DRAWS {
                black_box(zipf.rank(&mut rng));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = bench::config(Duration::from_secs(3));
    targets = keys
}
criterion_main!(benches);
