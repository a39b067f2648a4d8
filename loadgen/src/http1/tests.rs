//! The client against scripted raw-TCP servers: framings, keep-alive, stale connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::*;
use crate::outcome::Outcome;

/// What the scripted server does with one request.
enum Reply {
    /// Write these bytes and keep reading requests.
    Send(Vec<u8>),
    /// Write these bytes and close.
    SendAndClose(Vec<u8>),
    /// Close without answering.
    Close,
}

/// A scripted server: its URL, how many connections it accepted, and one permit for every
/// connection it has closed.
struct Server {
    url: String,
    accepted: Arc<AtomicUsize>,
    closed: Arc<Semaphore>,
}

/// A server that answers request `r` on connection `c` with `script(c, r, request)`.
async fn scripted(script: impl Fn(usize, usize, &[u8]) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(Semaphore::new(0));
    let script = Arc::new(script);
    let (count, done) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let c = count.fetch_add(1, Ordering::SeqCst);
            let (script, done) = (script.clone(), done.clone());
            tokio::spawn(async move {
                serve(stream, c, script).await;
                done.add_permits(1);
            });
        }
    });
    Server {
        url,
        accepted,
        closed,
    }
}

/// Serves one connection until the script or the client closes it.
async fn serve(
    mut stream: TcpStream,
    c: usize,
    script: Arc<impl Fn(usize, usize, &[u8]) -> Reply>,
) {
    let mut buf = Vec::new();
    for r in 0.. {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        match script(c, r, &request) {
            Reply::Send(bytes) => stream.write_all(&bytes).await.unwrap(),
            Reply::SendAndClose(bytes) => {
                stream.write_all(&bytes).await.unwrap();
                return;
            }
            Reply::Close => return,
        }
    }
}

/// One request (head and content-length body), or `None` at EOF.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + len {
                let rest = buf.split_off(end + 4 + len);
                return Some(std::mem::replace(buf, rest));
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn client(url: &str) -> HttpClient {
    HttpClient::new(&[url.to_string()], Duration::from_secs(5))
}

/// Calls `path` with `method` and returns (status, body).
async fn fetch(c: &HttpClient, method: Method, path: &str) -> Result<(u16, String), OpError> {
    let write = |out: &mut Vec<u8>| out.extend_from_slice(path.as_bytes());
    let body = (method != Method::Get).then_some(&"v");
    c.call(0, method, &write, body, |status, body| {
        (status, String::from_utf8_lossy(body).into_owned())
    })
    .await
}

#[tokio::test]
async fn requests_are_well_formed_and_a_connection_is_kept() {
    let Server { url, accepted, .. } = scripted(|_, _, request| {
        let text = String::from_utf8_lossy(request).into_owned();
        Reply::Send(ok(&text))
    })
    .await;
    let c = client(&format!("{url}/base/"));
    let (status, echoed) = fetch(&c, Method::Get, "/kv/a?x=1").await.unwrap();
    assert_eq!(status, 200);
    let host = url.trim_start_matches("http://");
    assert_eq!(
        echoed,
        format!("GET /base/kv/a?x=1 HTTP/1.1\r\nhost: {host}\r\n\r\n")
    );
    let (_, echoed) = fetch(&c, Method::Put, "/kv/b").await.unwrap();
    assert_eq!(
        echoed,
        format!(
            "PUT /base/kv/b HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
             content-length: 3\r\n\r\n\"v\""
        )
    );
    fetch(&c, Method::Post, "/kv/c").await.unwrap();
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one kept-alive connection"
    );
}

#[tokio::test]
async fn chunked_large_and_close_delimited_answers_are_read_whole() {
    let big = "x".repeat(1 << 20);
    let big2 = big.clone();
    let Server { url, accepted, .. } = scripted(move |_, _, request| {
        if request.starts_with(b"GET /chunked") {
            Reply::Send(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                  5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\ntrailer: t\r\n\r\n"
                    .to_vec(),
            )
        } else if request.starts_with(b"GET /big") {
            Reply::Send(ok(&big2))
        } else {
            Reply::SendAndClose(b"HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"not_found\"}".to_vec())
        }
    })
    .await;
    let c = client(&url);
    assert_eq!(
        fetch(&c, Method::Get, "/chunked").await.unwrap(),
        (200, "hello, world".into())
    );
    assert_eq!(fetch(&c, Method::Get, "/big").await.unwrap(), (200, big));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        fetch(&c, Method::Get, "/until-close").await.unwrap(),
        (404, "{\"error\":\"not_found\"}".into())
    );
    fetch(&c, Method::Get, "/chunked").await.unwrap();
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "a close-delimited answer ends its connection"
    );
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_not_used() {
    // Every connection answers once and closes, without saying so.
    let server = scripted(|_, _, _| Reply::SendAndClose(ok("{}"))).await;
    let c = client(&server.url);
    for i in 1..=3 {
        fetch(&c, Method::Put, "/kv/k").await.unwrap();
        server.closed.acquire().await.unwrap().forget();
        // The close is in the socket now; any turn of the reactor reports it.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(server.accepted.load(Ordering::SeqCst), i);
    }
}

#[tokio::test]
async fn a_close_as_the_request_goes_out_repeats_a_read_but_not_a_write() {
    // The second request of every connection is dropped unanswered.
    let server = scripted(|_, r, _| {
        if r == 0 {
            Reply::Send(ok("{}"))
        } else {
            Reply::Close
        }
    })
    .await;
    let c = client(&server.url);
    fetch(&c, Method::Get, "/a").await.unwrap();
    assert_eq!(
        fetch(&c, Method::Get, "/b").await.unwrap().0,
        200,
        "repeated"
    );
    let e = fetch(&c, Method::Put, "/c").await.unwrap_err();
    assert_eq!((e.class, e.outcome), (ErrorClass::Reset, Outcome::Unknown));
}

#[tokio::test]
async fn garbage_silence_and_refusal_are_classified() {
    let garbage = scripted(|_, _, _| Reply::Send(b"SMTP ready\r\n\r\n".to_vec())).await;
    let e = fetch(&client(&garbage.url), Method::Get, "/")
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Reset, Outcome::Unknown),
        "{e}"
    );

    let cut = scripted(|_, _, _| {
        Reply::SendAndClose(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}".to_vec())
    })
    .await;
    let e = fetch(&client(&cut.url), Method::Get, "/")
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Reset, Outcome::Unknown),
        "{e}"
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let quick = HttpClient::new(&[silent], Duration::from_millis(100));
    let e = fetch(&quick, Method::Get, "/").await.unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Timeout, Outcome::Unknown),
        "{e}"
    );
    drop(listener);

    let e = fetch(
        &client(&crate::testkit::refusing_url().await),
        Method::Put,
        "/",
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Connect, Outcome::Fail),
        "{e}"
    );
}

#[test]
fn decimals_and_chunk_sizes() {
    let mut out = Vec::new();
    for n in [0, 7, 10, 256, 1_048_576] {
        out.clear();
        push_decimal(&mut out, n);
        assert_eq!(out, n.to_string().as_bytes());
    }
    assert_eq!(chunk_size(b"1aF").ok(), Some(0x1af));
    assert_eq!(chunk_size(b"10 ; name=value").ok(), Some(16));
    assert!(chunk_size(b"").is_err() && chunk_size(b"xyz").is_err());
}
