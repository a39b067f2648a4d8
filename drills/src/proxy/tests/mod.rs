//! End-to-end tests of [`LinkProxy`] against a small echo server on 127.0.0.1:0.
//!
//! Every wait has a deadline and every loop a bound; timings assert their lower bounds strictly
//! (a proxy can't be early) and their upper bounds loosely (a busy machine can be late).

mod lifecycle;
mod modes;
mod under_load;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::*;

/// Runs `fut`, failing the test if it takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `cond` every few milliseconds until it holds, failing the test after `limit`.
async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    within(limit, what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// An echo server on a free loopback port: every connection gets its bytes back, and its
/// write side closed once it closes its own.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind echo server");
    let addr = listener.local_addr().expect("echo server address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    addr
}

/// A proxy in front of a fresh echo server.
async fn echo_proxy() -> LinkProxy {
    let upstream = echo_server().await;
    LinkProxy::start(upstream).await.expect("start proxy")
}

/// Connects to the proxy.
async fn connect(proxy: &LinkProxy) -> TcpStream {
    within(
        Duration::from_secs(5),
        "connect to the proxy",
        TcpStream::connect(proxy.local_addr()),
    )
    .await
    .expect("connect to the proxy")
}

/// Message `i` of a numbered stream.
fn numbered(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

/// Reads `count` numbered messages and checks they are `0..count` in order.
async fn expect_numbered(stream: &mut TcpStream, count: u32, limit: Duration) {
    let mut buf = vec![0u8; count as usize * 4];
    within(limit, "numbered messages", stream.read_exact(&mut buf))
        .await
        .expect("read numbered messages");
    for (i, msg) in buf.chunks_exact(4).enumerate() {
        let got = u32::from_be_bytes(msg.try_into().expect("4 bytes"));
        assert_eq!(got, i as u32, "message {i} out of order");
    }
}

/// One echo round trip of `msg`.
async fn round_trip(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    within(Duration::from_secs(5), "echo", stream.read_exact(&mut back))
        .await
        .expect("read echo");
    assert_eq!(back, msg);
}

/// Asserts the next read on `stream` fails with a connection reset within `limit`.
async fn expect_reset(stream: &mut TcpStream, limit: Duration) {
    let mut buf = [0u8; 64];
    let read = within(limit, "the reset", async {
        // Bytes already in flight may come first; what matters is how the stream ends.
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(0),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match read {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(_) => panic!("clean end of stream, expected a reset"),
    }
}

/// Asserts a new connection to `proxy` is refused with a reset: either the connect already sees
/// the RST or the first read does.
async fn expect_refused(proxy: &LinkProxy) {
    match TcpStream::connect(proxy.local_addr()).await {
        Ok(mut stream) => expect_reset(&mut stream, Duration::from_secs(2)).await,
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}
