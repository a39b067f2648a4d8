//! Test servers: an honest in-memory implementation of the cluster's client API, and a few
//! misbehaving ones. All bind 127.0.0.1 port 0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use raftdrill_wire::{CasBody, CasResponse, ErrorBody, GetResponse, PutBody, WriteResponse};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[derive(Default)]
struct Kv {
    data: HashMap<String, (String, u64)>,
    index: u64,
}

type Shared = Arc<Mutex<Kv>>;

fn error(status: StatusCode, code: &str) -> Response {
    let body = ErrorBody {
        error: code.into(),
        detail: None,
        leader: None,
    };
    (status, Json(body)).into_response()
}

async fn misbehave(key: &str) -> Option<Response> {
    match key {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            None
        }
        "noleader" => Some(error(StatusCode::SERVICE_UNAVAILABLE, "no_leader")),
        "commit-timeout" => Some(error(StatusCode::GATEWAY_TIMEOUT, "timeout")),
        _ => None,
    }
}

async fn read(State(kv): State<Shared>, Path(key): Path<String>) -> Response {
    if let Some(r) = misbehave(&key).await {
        return r;
    }
    let kv = kv.lock().unwrap();
    match kv.data.get(&key) {
        Some((value, index)) => Json(GetResponse {
            value: value.clone(),
            index: *index,
        })
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

fn written(index: u64) -> WriteResponse {
    WriteResponse {
        index,
        term: 1,
        leader: 1,
        served_by: 1,
    }
}

async fn write(
    State(kv): State<Shared>,
    Path(key): Path<String>,
    Json(body): Json<PutBody>,
) -> Response {
    if let Some(r) = misbehave(&key).await {
        return r;
    }
    let mut kv = kv.lock().unwrap();
    kv.index += 1;
    let index = kv.index;
    kv.data.insert(key, (body.value, index));
    Json(written(index)).into_response()
}

async fn cas(
    State(kv): State<Shared>,
    Path(key): Path<String>,
    Json(body): Json<CasBody>,
) -> Response {
    if let Some(r) = misbehave(&key).await {
        return r;
    }
    let mut kv = kv.lock().unwrap();
    kv.index += 1;
    let index = kv.index;
    let current = kv.data.get(&key).map(|(v, _)| v.clone());
    let ok = current == body.expect;
    if ok {
        kv.data.insert(key, (body.value.clone(), index));
    }
    Json(CasResponse {
        ok,
        current: if ok { Some(body.value) } else { current },
        index,
        term: 1,
        leader: 1,
        served_by: 1,
    })
    .into_response()
}

/// Start the in-memory KV server; returns its base URL. It runs until the runtime ends.
pub async fn kv_server() -> String {
    let app = axum::Router::new()
        .route("/kv/{key}", get(read).put(write))
        .route("/kv/{key}/cas", post(cas))
        .with_state(Shared::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A server that answers every request with 200 `{}` after `delay`.
pub async fn slow_server(delay: Duration) -> String {
    let app = axum::Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        Json(serde_json::json!({"index": 1, "term": 1, "leader": 1, "served_by": 1}))
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A server that reads each request and then resets the connection.
pub async fn resetting_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                // Linger 0 turns the close into a reset; it cannot block with a zero timeout.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                drop(stream);
            });
        }
    });
    format!("http://{addr}")
}

/// A URL where nothing listens.
pub async fn refusing_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
