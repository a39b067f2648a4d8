use reqwest::Method;

use crate::harness::*;

/// Every kind of bad input gets a 4xx answer with a JSON error body, and the node stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_json_4xx_and_the_node_stays_healthy() {
    let _serial = serial().await;
    let (c, leader) = start(3, &[]).await;
    // No pooled connections: after a 413 the server closes the connection without reading the
    // rest of the body, and a pooled reuse of it would fail on the client side.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = c.url(leader);
    let long_key = "k".repeat(1025);
    let big_value = serde_json::json!({ "value": "v".repeat(1024 * 1024 + 1) }).to_string();
    let huge_body = "x".repeat(3 * 1024 * 1024);
    let cases: Vec<(Method, String, Option<String>, u16)> = vec![
        (Method::PUT, "/kv/a".into(), Some("{not json".into()), 400),
        (
            Method::PUT,
            "/kv/a".into(),
            Some(r#"{"val": "x"}"#.into()),
            400,
        ),
        (
            Method::PUT,
            "/kv/a".into(),
            Some(r#"{"value": 5}"#.into()),
            400,
        ),
        (Method::PUT, "/kv/a".into(), None, 400),
        (
            Method::PUT,
            format!("/kv/{long_key}"),
            Some(r#"{"value": "x"}"#.into()),
            400,
        ),
        (Method::GET, format!("/kv/{long_key}"), None, 400),
        (Method::PUT, "/kv/a".into(), Some(big_value), 413),
        (Method::PUT, "/kv/a".into(), Some(huge_body), 413),
        (Method::GET, "/kv/a?consistency=eventual".into(), None, 400),
        (Method::GET, "/kv/a%zz".into(), None, 400),
        (
            Method::PUT,
            "/kv/a%2".into(),
            Some(r#"{"value": "x"}"#.into()),
            400,
        ),
        (
            Method::POST,
            "/kv/a/cas".into(),
            Some(r#"{"value": "x"}"#.into()),
            400,
        ),
        (Method::PATCH, "/kv/a".into(), None, 405),
        (Method::GET, "/kv/a/cas".into(), None, 405),
        (Method::GET, "/nothing/here".into(), None, 404),
        (
            Method::POST,
            "/admin/members".into(),
            Some("[]".into()),
            400,
        ),
        (
            Method::DELETE,
            "/admin/members/notanumber".into(),
            None,
            400,
        ),
        (
            Method::POST,
            "/raft/append".into(),
            Some("garbage".into()),
            400,
        ),
        // The append stream without its Upgrade header.
        (Method::GET, "/raft/stream".into(), None, 400),
    ];
    for (method, path, body, want) in cases {
        let mut req = client.request(method.clone(), format!("{url}{path}"));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let shown = &path[..path.len().min(40)];
        assert_eq!(status, want, "{method} {shown}: {text}");
        let body: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {shown}: not JSON ({e}): {text}"));
        assert!(
            body["error"].is_string(),
            "{method} {shown}: no error code in {text}"
        );
    }
    garbage_on_an_append_stream_closes_it(&url).await;
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        put(&client, &url, "after", "ok").await.unwrap().status(),
        200
    );
    // Node logs are plain text: no terminal colour escapes in a file.
    for (id, info) in c.nodes() {
        let log = std::fs::read_to_string(&info.log).unwrap();
        assert!(!log.is_empty(), "node {id} logged nothing");
        assert!(!log.contains('\x1b'), "node {id}'s log has ANSI escapes");
    }
}

/// An append stream that carries a frame which is not an AppendEntries is closed by the node.
async fn garbage_on_an_append_stream_closes_it(url: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /raft/stream HTTP/1.1\r\nHost: {addr}\r\nConnection: upgrade\r\nUpgrade: raftdrill-append\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut byte))
            .await
            .expect("the upgrade is answered")
            .unwrap();
        assert_eq!(n, 1, "closed before the end of the answer: {answer:?}");
        answer.push(byte[0]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    // A 4-byte frame that no AppendEntries decodes from.
    tcp.write_all(&[4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut rest),
    )
    .await
    .expect("the node closes the stream")
    .unwrap_or(0);
    assert_eq!(n, 0, "no answer to garbage: {rest:?}");
}
