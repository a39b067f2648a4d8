//! `proxy`: the `LinkProxy` in pass mode on loopback: its one-way throughput (bytes per second)
//! and the latency it adds to a 4 KiB request/response round trip, each beside the same
//! traffic sent directly, without the proxy.
//!
//! Why: in a drill every peer RPC of the cluster goes through a proxy, also while the link is
//! healthy, so in pass mode it must neither cap the replication stream nor add enough latency
//! to move Raft's heartbeats and the suite's latency figures. The added latency per round trip
//! is `round_trip_4KiB/proxy` minus `round_trip_4KiB/direct`.
//!
//! `pass_through_4MiB` writes 4 MiB to a sink that answers one byte per 4 MiB received, so each
//! iteration is one full one-way transfer. Each timed run opens its connection before the clock
//! starts. Client, proxy and servers share one two-worker tokio runtime, as in a drill where the
//! proxies live in raftdrill's process.

use std::time::{Duration, Instant};

use bench::{Server, connect, runtime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use drills::proxy::LinkProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TRANSFER: usize = 4 << 20;
const REQUEST: usize = 4 << 10;

fn proxy(c: &mut Criterion) {
    let rt = runtime();
    let (sink, echo, sink_proxy, echo_proxy) = rt.block_on(async {
        let sink = Server::sink(TRANSFER).await;
        let echo = Server::echo().await;
        let sink_proxy = LinkProxy::start(sink.addr()).await.expect("start proxy");
        let echo_proxy = LinkProxy::start(echo.addr()).await.expect("start proxy");
        (sink, echo, sink_proxy, echo_proxy)
    });
    let mut group = c.benchmark_group("proxy");
    // A 4 MiB transfer takes a few milliseconds: 50 samples fit the measurement time.
    group.sample_size(50);

    group.throughput(Throughput::Bytes(TRANSFER as u64));
    for (name, addr) in [("direct", sink.addr()), ("proxy", sink_proxy.local_addr())] {
        group.bench_function(BenchmarkId::new("pass_through_4MiB", name), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut conn = connect(addr).await;
                let data = vec![0x5a; TRANSFER];
                let mut ack = [0u8; 1];
                let start = Instant::now();
                for _ in 0..iters {
                    conn.write_all(&data).await.expect("write");
                    conn.read_exact(&mut ack).await.expect("read the ack");
                }
                start.elapsed()
            })
        });
    }

    group.throughput(Throughput::Elements(1));
    for (name, addr) in [("direct", echo.addr()), ("proxy", echo_proxy.local_addr())] {
        group.bench_function(BenchmarkId::new("round_trip_4KiB", name), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut conn = connect(addr).await;
                let request = vec![0x5a; REQUEST];
                let mut response = vec![0u8; REQUEST];
                let start = Instant::now();
                for _ in 0..iters {
                    conn.write_all(&request).await.expect("write");
                    conn.read_exact(&mut response).await.expect("read");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
    // Proxies before servers, all before the runtime (`rt` was declared first).
    drop((sink_proxy, echo_proxy, sink, echo));
}

criterion_group! {
    name = benches;
    config = bench::config(Duration::from_secs(4));
    targets = proxy
}
criterion_main!(benches);
