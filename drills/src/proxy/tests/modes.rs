//! What each [`LinkMode`] does to traffic.

use std::time::Instant;

use super::*;

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_echoes_a_mebibyte_both_ways_and_counts_it() {
    let proxy = echo_proxy().await;
    let stream = connect(&proxy).await;
    let payload: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = stream.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.expect("write payload");
        w.shutdown().await.expect("close write side");
    });
    let mut back = Vec::with_capacity(MIB);
    within(
        Duration::from_secs(10),
        "echo of 1 MiB",
        r.read_to_end(&mut back),
    )
    .await
    .expect("read echo");
    writer.await.expect("writer");
    assert!(back == payload, "echo differs from what was sent");
    let stats = proxy.stats();
    assert_eq!(stats.bytes_up, MIB as u64);
    assert_eq!(stats.bytes_down, MIB as u64);
    assert_eq!(stats.connections_total, 1);
    drop((r, back));
    wait_until(Duration::from_secs(5), "connection closed", || {
        proxy.stats().connections_open == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_adds_about_twice_the_latency_to_a_round_trip() {
    let proxy = echo_proxy().await;
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"warm-up").await;
    let latency = Duration::from_millis(50);
    proxy.set_mode(LinkMode::Delay {
        latency,
        jitter: Duration::ZERO,
    });
    assert_eq!(
        proxy.mode(),
        LinkMode::Delay {
            latency,
            jitter: Duration::ZERO
        }
    );
    // A proxy cannot be early, so the lower bound is exact; how close it stays to the asked
    // latency is a figure for the `proxy` benchmark, not a test on a busy machine.
    for _ in 0..3 {
        let started = Instant::now();
        round_trip(&mut stream, b"ping").await;
        let rtt = started.elapsed();
        assert!(
            rtt >= 2 * latency,
            "round trip {rtt:?} shorter than 2 x {latency:?}"
        );
    }
}

/// Leaving delay mode releases what is held at once: a chunk delayed by a minute arrives as
/// soon as the link passes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_delay_releases_held_bytes_at_once() {
    let proxy = echo_proxy().await;
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"warm-up").await;
    proxy.set_mode(LinkMode::Delay {
        latency: Duration::from_secs(60),
        jitter: Duration::ZERO,
    });
    let before = proxy.stats();
    stream.write_all(&numbered(0)).await.expect("write");
    wait_until(
        Duration::from_secs(5),
        "the proxy to read the chunk",
        || proxy.stats().bytes_read_up == before.bytes_read_up + 4,
    )
    .await;
    assert_eq!(proxy.stats().bytes_up, before.bytes_up, "the chunk is held");
    proxy.set_mode(LinkMode::Pass);
    expect_numbered(&mut stream, 1, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_keeps_order() {
    let proxy = echo_proxy().await;
    let mut stream = connect(&proxy).await;
    let (latency, jitter) = (Duration::from_millis(10), Duration::from_millis(8));
    proxy.set_mode(LinkMode::Delay { latency, jitter });
    const COUNT: u32 = 100;
    let started = Instant::now();
    for i in 0..COUNT {
        stream.write_all(&numbered(i)).await.expect("write");
        // Space the messages so the proxy reads each as its own chunk and draws its own delay;
        // ±8 ms of jitter would then reorder them if order were not enforced.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    expect_numbered(&mut stream, COUNT, Duration::from_secs(10)).await;
    assert!(started.elapsed() >= 2 * (latency - jitter));
}

/// Streams `total` bytes through `stream` (echoed) and returns the seconds it took.
async fn timed_echo(stream: TcpStream, total: usize) -> f64 {
    let (mut r, mut w) = stream.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = [0x5au8; 8192];
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            w.write_all(&chunk[..n]).await.expect("write");
            sent += n;
        }
        w
    });
    let mut buf = vec![0u8; total];
    within(
        Duration::from_secs(15),
        "capped echo",
        r.read_exact(&mut buf),
    )
    .await
    .expect("read echo");
    let secs = started.elapsed().as_secs_f64();
    drop(writer.await.expect("writer"));
    secs
}

/// Asserts `bytes` in `secs` did not exceed `cap` bytes per second (plus the first burst).
/// A busy machine can only make a link slower, so this bound cannot flake; how close the
/// rate gets to the cap is a figure of the `proxy` benchmark.
fn assert_capped(bytes: usize, secs: f64, cap: u64) {
    let burst = (cap as f64 / 20.0).max(1024.0);
    let allowed = cap as f64 * secs + burst;
    assert!(
        (bytes as f64) <= allowed * 1.02,
        "{bytes} B in {secs:.2} s is over the cap of {cap} B/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_is_never_exceeded() {
    let proxy = echo_proxy().await;
    let cap = 256 * 1024;
    proxy.set_mode(LinkMode::Bandwidth { bytes_per_sec: cap });
    let stream = connect(&proxy).await;
    // 512 KiB each way at 256 KiB/s each way: about 2 s.
    let total = 512 * 1024;
    let secs = timed_echo(stream, total).await;
    assert_capped(total, secs, cap);
    assert_eq!(proxy.stats().bytes_down, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_is_shared_by_the_links_connections() {
    let proxy = echo_proxy().await;
    let cap = 256 * 1024;
    proxy.set_mode(LinkMode::Bandwidth { bytes_per_sec: cap });
    let each = 256 * 1024;
    let (a, b) = (connect(&proxy).await, connect(&proxy).await);
    let started = Instant::now();
    let (ta, tb) = tokio::join!(timed_echo(a, each), timed_echo(b, each));
    let secs = started.elapsed().as_secs_f64();
    assert!(ta.max(tb) <= secs);
    assert_capped(2 * each, secs, cap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_holds_bytes_and_heal_releases_them_in_order() {
    let proxy = echo_proxy().await;
    let mut live = connect(&proxy).await;
    let started = Instant::now();
    round_trip(&mut live, b"before").await;
    // How long nothing must arrive: many round trips of this machine right now, so a slow
    // machine looks longer, not shorter.
    let held = (started.elapsed() * 50).max(Duration::from_millis(300));
    // The pump counts bytes after its write returns, which can be after the client read them.
    wait_until(Duration::from_secs(5), "the echo is counted", || {
        proxy.stats().bytes_down == 6
    })
    .await;
    let before = proxy.stats();
    proxy.set_mode(LinkMode::Blackhole);
    // A connection opened during the blackhole is accepted but not passed on yet.
    let mut fresh = connect(&proxy).await;
    const COUNT: u32 = 50;
    for i in 0..COUNT {
        live.write_all(&numbered(i)).await.expect("write live");
        fresh.write_all(&numbered(i)).await.expect("write fresh");
    }
    let mut byte = [0u8; 1];
    assert!(
        timeout(held, live.read(&mut byte)).await.is_err(),
        "live got bytes through a blackhole"
    );
    assert!(
        timeout(held, fresh.read(&mut byte)).await.is_err(),
        "fresh got bytes through a blackhole"
    );
    let during = proxy.stats();
    assert_eq!(
        (during.bytes_up, during.bytes_down),
        (before.bytes_up, before.bytes_down)
    );
    assert_eq!(during.connections_open, 2);

    proxy.set_mode(LinkMode::Pass);
    expect_numbered(&mut live, COUNT, Duration::from_secs(5)).await;
    expect_numbered(&mut fresh, COUNT, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_cuts_live_connections_and_refuses_new_ones() {
    let proxy = echo_proxy().await;
    let mut live = connect(&proxy).await;
    round_trip(&mut live, b"hello").await;

    proxy.set_mode(LinkMode::Reset);
    expect_reset(&mut live, Duration::from_secs(2)).await;
    wait_until(Duration::from_secs(2), "the cut to be counted", || {
        proxy.stats().connections_reset == 1
    })
    .await;
    for _ in 0..3 {
        within(Duration::from_secs(5), "a refusal", expect_refused(&proxy)).await;
    }
    let stats = proxy.stats();
    assert_eq!(stats.connections_refused, 3);
    assert_eq!(stats.connections_total, 4);

    proxy.set_mode(LinkMode::Pass);
    let mut healed = connect(&proxy).await;
    round_trip(&mut healed, b"again").await;
    assert_eq!(proxy.stats().connections_open, 1);
}
