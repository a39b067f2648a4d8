//! Mode changes while traffic flows. Toxiproxy users report a proxy that hangs when a toxic is
//! removed under load (Shopify/toxiproxy #210, #412, #558); this proxy must neither hang nor
//! leave a task behind, and must not corrupt or lose the bytes of a connection it keeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::*;

/// Connections one streaming client may open before it gives up (a bound, never reached).
const MAX_CONNECTIONS: usize = 5_000;

/// The byte at `offset` of every stream: a pattern that shows loss, duplication and reordering.
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// Streams the pattern through one connection and checks the echo, until `stop` or an error.
/// Returns whether the connection ended because the proxy ended it (rather than `stop`), and
/// fails with a description of the first corrupt byte (loss, duplication or reordering).
async fn stream_once(
    stream: TcpStream,
    progress: &AtomicU64,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool, String> {
    let (mut r, mut w) = stream.into_split();
    let write = async {
        let mut chunk = [0u8; 4096];
        let mut offset = 0u64;
        loop {
            for b in chunk.iter_mut() {
                *b = pattern(offset);
                offset += 1;
            }
            if w.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    let read = async {
        let mut buf = [0u8; 8192];
        let mut offset = 0u64;
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return Ok(true),
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                if b != pattern(offset) {
                    return Err(format!(
                        "byte {offset} is {b}, expected {}",
                        pattern(offset)
                    ));
                }
                offset += 1;
            }
            progress.fetch_add(n as u64, Ordering::Relaxed);
        }
    };
    tokio::select! {
        verdict = read => verdict,
        () = write => Ok(true),
        _ = stop.wait_for(|s| *s) => Ok(false),
    }
}

/// Keeps a stream going through `addr`, reconnecting after resets, until `stop`. Returns how
/// many established connections the proxy ended.
async fn streaming_client(
    addr: SocketAddr,
    progress: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Result<u64, String> {
    let mut ended = 0;
    for _ in 0..MAX_CONNECTIONS {
        if *stop.borrow() {
            return Ok(ended);
        }
        // While the link is in reset, the connect itself may already see the RST.
        if let Ok(stream) = TcpStream::connect(addr).await {
            ended += u64::from(stream_once(stream, &progress, &mut stop).await?);
        }
        // Paces reconnects while the link refuses them.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(format!("gave up after {MAX_CONNECTIONS} connections"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_switches_under_traffic_never_hang() {
    within(Duration::from_secs(30), "the whole drill", async {
        let proxy = echo_proxy().await;
        let shared = Arc::clone(&proxy.shared);
        let (stop_tx, stop_rx) = watch::channel(false);
        let progress = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..3)
            .map(|_| {
                tokio::spawn(streaming_client(
                    proxy.local_addr(),
                    Arc::clone(&progress),
                    stop_rx.clone(),
                ))
            })
            .collect();
        wait_until(Duration::from_secs(5), "traffic to start", || {
            progress.load(Ordering::Relaxed) > 1024 * 1024
        })
        .await;
        // An idle connection, its pumps parked on a pending read through every change: it must
        // still see the reset.
        let mut idle = connect(&proxy).await;
        round_trip(&mut idle, b"idle").await;

        let cycle = [
            LinkMode::Delay {
                latency: Duration::from_millis(5),
                jitter: Duration::from_millis(4),
            },
            LinkMode::Blackhole,
            LinkMode::Bandwidth {
                bytes_per_sec: 128 * 1024,
            },
            LinkMode::Pass,
            LinkMode::Reset,
            LinkMode::Bandwidth { bytes_per_sec: 0 },
            LinkMode::Delay {
                latency: Duration::from_millis(1),
                jitter: Duration::ZERO,
            },
            LinkMode::Pass,
        ];
        for (i, mode) in cycle.iter().cycle().take(64).enumerate() {
            proxy.set_mode(*mode);
            tokio::time::sleep(Duration::from_millis(5 + (i as u64 * 7) % 20)).await;
        }
        proxy.set_mode(LinkMode::Pass);
        let stats = proxy.stats();
        assert!(
            stats.connections_reset > 0,
            "no live connection was cut: {stats:?}"
        );
        expect_reset(&mut idle, Duration::from_secs(2)).await;

        // Healed: traffic flows again.
        let resumed = progress.load(Ordering::Relaxed);
        wait_until(
            Duration::from_secs(10),
            "traffic to resume after the heal",
            || progress.load(Ordering::Relaxed) > resumed + 4 * 1024 * 1024,
        )
        .await;

        stop_tx.send_replace(true);
        let mut ended = 0;
        for client in clients {
            let verdict = within(Duration::from_secs(5), "a client to stop", client)
                .await
                .expect("client task");
            ended += verdict.expect("stream intact across mode changes");
        }
        // Only reset mode may end a connection: a pump that died any other way (a panic, a
        // stuck state given up on) would show up here as an extra end.
        let stats = proxy.stats();
        assert!(
            ended <= stats.connections_reset + stats.connections_refused,
            "{ended} connections ended, but only resets were asked for: {stats:?}"
        );
        assert_eq!(stats.upstream_failures, 0);
        wait_until(Duration::from_secs(5), "every connection to close", || {
            proxy.stats().connections_open == 0
        })
        .await;
        within(Duration::from_secs(5), "shutdown", proxy.shutdown()).await;
        assert_eq!(Arc::strong_count(&shared), 1, "a task outlived shutdown");
    })
    .await;
}
