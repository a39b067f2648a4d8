//! Starting, shutting down and dropping a proxy; an unreachable upstream.

use std::sync::Arc;

use super::*;

/// Reads until `stream` ends, one way or another, within `limit`.
async fn expect_closed(stream: &mut TcpStream, limit: Duration) {
    let mut buf = [0u8; 1024];
    within(limit, "the connection to close", async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_on_a_taken_address_is_a_bind_error() {
    let upstream = echo_server().await;
    let first = LinkProxy::start(upstream).await.expect("start");
    assert_eq!(first.upstream(), upstream);
    let err = LinkProxy::start_on(first.local_addr(), upstream)
        .await
        .expect_err("address in use");
    assert!(matches!(err, ProxyError::Bind { listen, .. } if listen == first.local_addr()));
    assert!(
        err.to_string().contains(&first.local_addr().to_string()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_connection_and_joins_every_task() {
    let proxy = echo_proxy().await;
    let shared = Arc::clone(&proxy.shared);
    let mut live = connect(&proxy).await;
    round_trip(&mut live, b"x").await;
    proxy.set_mode(LinkMode::Blackhole);
    let mut held = connect(&proxy).await;
    held.write_all(b"held").await.expect("write");
    wait_until(Duration::from_secs(2), "both connections open", || {
        proxy.stats().connections_open == 2
    })
    .await;
    let addr = proxy.local_addr();

    within(Duration::from_secs(5), "shutdown", proxy.shutdown()).await;

    // Every task has ended and let go of the link's state; nothing is left open.
    assert_eq!(Arc::strong_count(&shared), 1, "a task outlived shutdown");
    assert_eq!(shared.counters.snapshot().connections_open, 0);
    expect_closed(&mut live, Duration::from_secs(2)).await;
    expect_closed(&mut held, Duration::from_secs(2)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_aborts_every_task() {
    let proxy = echo_proxy().await;
    let shared = Arc::clone(&proxy.shared);
    let mut a = connect(&proxy).await;
    let mut b = connect(&proxy).await;
    round_trip(&mut a, b"a").await;
    round_trip(&mut b, b"b").await;
    proxy.set_mode(LinkMode::Delay {
        latency: Duration::from_secs(60),
        jitter: Duration::ZERO,
    });
    a.write_all(b"waiting in a delay").await.expect("write");
    drop(proxy);
    expect_closed(&mut a, Duration::from_secs(2)).await;
    expect_closed(&mut b, Duration::from_secs(2)).await;
    wait_until(
        Duration::from_secs(2),
        "tasks to let go of the link",
        || Arc::strong_count(&shared) == 1,
    )
    .await;
    assert_eq!(shared.counters.snapshot().connections_open, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_resets_the_client() {
    // A port that was free a moment ago and has nobody listening now.
    let gone = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address")
    };
    let proxy = LinkProxy::start(gone).await.expect("start");
    within(Duration::from_secs(5), "a refusal", expect_refused(&proxy)).await;
    wait_until(Duration::from_secs(2), "the failure to be counted", || {
        let s = proxy.stats();
        s.upstream_failures == 1 && s.connections_open == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_ends_both_directions() {
    let proxy = echo_proxy().await;
    let mut client = connect(&proxy).await;
    round_trip(&mut client, b"bye").await;
    // Half-close: the echo server sees the FIN, finishes, and closes its side in turn.
    client.shutdown().await.expect("shutdown write");
    let mut rest = Vec::new();
    within(
        Duration::from_secs(2),
        "end of stream",
        client.read_to_end(&mut rest),
    )
    .await
    .expect("clean end of stream");
    assert!(rest.is_empty());
    wait_until(Duration::from_secs(2), "the connection to close", || {
        proxy.stats().connections_open == 0
    })
    .await;
}

/// While the node behind a link is down the proxy refuses connections as the node's own port
/// would (so a sender knows nothing was sent), and takes them again once the node is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_refuses_while_its_upstream_refuses_and_listens_again_after() {
    let node = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
    let upstream = node.local_addr().unwrap();
    drop(node);
    let proxy = LinkProxy::start(upstream).await.expect("start");
    // The first connection is accepted, then cut when the dial is refused (on loopback the
    // RST may even beat the end of the client's connect); from then on the proxy's own port
    // refuses.
    if let Ok(mut first) = TcpStream::connect(proxy.local_addr()).await {
        expect_closed(&mut first, Duration::from_secs(2)).await;
    }
    wait_until(
        Duration::from_secs(2),
        "the proxy to stop listening",
        || !proxy.listening(),
    )
    .await;
    let refused = TcpStream::connect(proxy.local_addr())
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // Nobody else can take the port meanwhile.
    assert!(std::net::TcpListener::bind(proxy.local_addr()).is_err());

    // The node comes back on its port: the proxy listens and forwards again.
    let node = TcpListener::bind(upstream).await.expect("rebind node");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = node.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    wait_until(Duration::from_secs(5), "the proxy to listen again", || {
        proxy.listening()
    })
    .await;
    let mut again = connect(&proxy).await;
    round_trip(&mut again, b"back").await;
}

/// Told that its node is down, the proxy refuses at once, without a first connection cut; a
/// blackholed link keeps taking connections (a partition drops SYNs, it does not refuse them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_down_hint_refuses_at_once_unless_the_link_holds() {
    let node = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
    let upstream = node.local_addr().unwrap();
    let proxy = LinkProxy::start(upstream).await.expect("start");
    drop(node);
    proxy.upstream_down();
    within(Duration::from_secs(2), "the port to refuse", async {
        loop {
            match TcpStream::connect(proxy.local_addr()).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await;
    assert_eq!(
        proxy.stats().upstream_failures,
        0,
        "no connection was cut to find out"
    );
    proxy.set_mode(LinkMode::Blackhole);
    let held = within(
        Duration::from_secs(2),
        "a blackholed link to accept",
        async {
            loop {
                if let Ok(c) = TcpStream::connect(proxy.local_addr()).await {
                    break c;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        },
    )
    .await;
    drop(held);
}
