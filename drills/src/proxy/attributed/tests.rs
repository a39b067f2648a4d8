//! [`AttributedProxy`] against a small HTTP/1.1 server that records the request heads it
//! gets. Clients name themselves in an `X-Who` header, as etcd members do in `X-Server-From`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::*;

/// A server answering every request `200 ok`, closing when asked to; it records each head.
async fn http_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let close = head.to_ascii_lowercase().contains("connection: close");
                    seen.lock().unwrap().push(head);
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if stream.get_mut().write_all(answer.as_bytes()).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// Links are named by the `X-Who` header.
fn by_who() -> Arc<Classifier<String>> {
    Arc::new(|head: &RequestHead| head.header("x-who").map(str::to_string))
}

/// Sends one request on `stream` (as `who`, if given) and reads the 2-byte answer.
async fn request(stream: &mut TcpStream, who: Option<&str>) -> std::io::Result<String> {
    let who = who.map_or(String::new(), |w| format!("X-Who: {w}\r\n"));
    let req = format!("GET /x HTTP/1.1\r\nHost: t\r\n{who}\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = vec![0; 256];
    let mut got = Vec::new();
    while !got.ends_with(b"ok") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn heads_parse_and_headers_are_case_insensitive() {
    let raw = b"POST /raft HTTP/1.1\r\nHost: a\r\nX-Server-From: 8e9e05c52164694d\r\n\r\n";
    let head = RequestHead::parse(raw).unwrap();
    assert_eq!(
        (head.method.as_str(), head.path.as_str()),
        ("POST", "/raft")
    );
    assert_eq!(head.header("x-server-from"), Some("8e9e05c52164694d"));
    assert_eq!(head.header("x-raft-to"), None);
    assert!(RequestHead::parse(b"\x16\x03\x01 tls\r\n\r\n").is_none());
    let closing = String::from_utf8(
        RequestHead::parse(b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nA: b\r\n\r\n")
            .unwrap()
            .closing(),
    )
    .unwrap();
    assert_eq!(
        closing,
        "GET / HTTP/1.1\r\nA: b\r\nConnection: close\r\n\r\n"
    );
}

#[tokio::test]
async fn each_connection_gets_the_mode_of_the_link_its_first_request_names() {
    let (upstream, heads) = http_server().await;
    let proxy = AttributedProxy::start(upstream, by_who()).await.unwrap();
    proxy.set_mode("a".to_string(), LinkMode::Blackhole);
    let mut a = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut b = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let limit = Duration::from_secs(5);
    let answer_b = timeout(limit, request(&mut b, Some("b"))).await.unwrap();
    assert!(answer_b.unwrap().ends_with("ok"), "link b passes");
    // Link a holds its connection; its request must not reach the server while it does.
    let pending_a = tokio::spawn(async move { request(&mut a, Some("a")).await });
    // b's second request on its kept-alive connection still passes, and is seen after a's
    // would have been, so a's absence below is not a matter of timing.
    let again_b = timeout(limit, request(&mut b, Some("b"))).await.unwrap();
    assert!(again_b.unwrap().ends_with("ok"));
    assert!(!pending_a.is_finished());
    assert!(
        heads
            .lock()
            .unwrap()
            .iter()
            .all(|h| !h.contains("X-Who: a"))
    );
    proxy.set_mode("a".to_string(), LinkMode::Pass);
    let answer_a = timeout(limit, pending_a).await.unwrap().unwrap().unwrap();
    assert!(answer_a.ends_with("ok"), "healing releases a's request");
    let stats = proxy.stats();
    assert_eq!(stats["a"].connections_total, 1);
    assert_eq!(stats["b"].connections_total, 1);
    proxy.shutdown().await;
}

#[tokio::test]
async fn unattributed_connections_are_closed_after_one_request_and_follow_their_own_mode() {
    let (upstream, heads) = http_server().await;
    let proxy = AttributedProxy::start(upstream, by_who()).await.unwrap();
    let limit = Duration::from_secs(5);
    let mut anon = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let answer = timeout(limit, request(&mut anon, None)).await.unwrap();
    assert!(answer.unwrap().ends_with("ok"));
    assert!(
        heads.lock().unwrap()[0].contains("Connection: close"),
        "the proxy asked the server to close: {:?}",
        heads.lock().unwrap()
    );
    // The server closed the connection after its answer, so the client cannot reuse it.
    let mut rest = Vec::new();
    let n = timeout(limit, anon.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(n.unwrap(), 0);

    proxy.set_unattributed_mode(LinkMode::Reset);
    assert_eq!(proxy.unattributed_mode(), LinkMode::Reset);
    let mut cut = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let refused = timeout(limit, request(&mut cut, None)).await.unwrap();
    assert!(
        !matches!(&refused, Ok(s) if !s.is_empty()),
        "a reset link answers nothing: {refused:?}"
    );
    // Attributed links are untouched by the unattributed mode.
    let mut named = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let ok = timeout(limit, request(&mut named, Some("c")))
        .await
        .unwrap();
    assert!(ok.unwrap().ends_with("ok"));
    proxy.heal_all();
    assert_eq!(proxy.unattributed_mode(), LinkMode::Pass);
    // The refused connection, and the first one too if it was still half-open (the client
    // had not closed its side) when the mode changed.
    assert!(proxy.unattributed_stats().connections_reset >= 1);
    proxy.shutdown().await;
}
