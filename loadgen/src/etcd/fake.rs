//! A small stand-in for etcd's v3 JSON gateway, for the adapter's unit tests: an honest
//! in-memory `put`/`range`/`txn` (compare on value or create revision), or a member that
//! answers every request with one gateway error. It decodes what it is sent with its own
//! serde types, so an encoding mistake of the adapter shows up as a wrong value or a 400.
//! Binds 127.0.0.1 port 0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How the fake member answers.
#[derive(Debug, Clone)]
pub(super) enum Behaviour {
    /// Serve the key-value calls.
    Healthy,
    /// Answer every call with this HTTP status and gRPC code and message.
    Failing(u16, i32, &'static str),
}

/// What the fake has seen and stored.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// `(call, body)` of every request, in order.
    pub requests: Vec<(String, Value)>,
    /// Key → (value, create revision, mod revision), decoded.
    pub data: HashMap<String, (String, u64, u64)>,
    /// The store revision.
    pub revision: u64,
}

type Shared = Arc<Mutex<(Behaviour, Seen)>>;

/// A running fake member: its client URL and what it saw.
pub(super) struct FakeMember {
    pub url: String,
    state: Shared,
}

impl FakeMember {
    /// What the member has seen so far.
    pub fn seen<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        f(&self.state.lock().unwrap().1)
    }
}

fn decode(v: &Value) -> String {
    let text = v.as_str().unwrap_or_default();
    String::from_utf8(STANDARD.decode(text).expect("base64 from the adapter")).unwrap()
}

fn kv_json(key: &str, entry: &(String, u64, u64)) -> Value {
    json!({
        "key": STANDARD.encode(key),
        "value": STANDARD.encode(&entry.0),
        "create_revision": entry.1.to_string(),
        "mod_revision": entry.2.to_string(),
    })
}

fn header(revision: u64) -> Value {
    json!({"cluster_id": "1", "member_id": "2", "revision": revision.to_string(), "raft_term": "2"})
}

fn range(seen: &Seen, body: &Value) -> Value {
    let key = decode(&body["key"]);
    let mut out = json!({"header": header(seen.revision)});
    if let Some(entry) = seen.data.get(&key) {
        out["kvs"] = json!([kv_json(&key, entry)]);
        out["count"] = json!("1");
    }
    out
}

fn put(seen: &mut Seen, body: &Value) -> Value {
    let key = decode(&body["key"]);
    let value = decode(&body["value"]);
    seen.revision += 1;
    let rev = seen.revision;
    let created = seen.data.get(&key).map_or(rev, |e| e.1);
    seen.data.insert(key, (value, created, rev));
    json!({"header": header(rev)})
}

fn holds(seen: &Seen, cmp: &Value) -> bool {
    let entry = seen.data.get(&decode(&cmp["key"]));
    assert_eq!(
        cmp["result"], "EQUAL",
        "the adapter only compares for equality"
    );
    match cmp["target"].as_str() {
        Some("VALUE") => entry.is_some_and(|e| e.0 == decode(&cmp["value"])),
        Some("CREATE") => {
            let want: u64 = cmp["create_revision"].as_str().unwrap().parse().unwrap();
            entry.map_or(0, |e| e.1) == want
        }
        other => panic!("unexpected compare target {other:?}"),
    }
}

fn txn(seen: &mut Seen, body: &Value) -> Value {
    let ok = body["compare"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| holds(seen, c));
    let branch = if ok {
        &body["success"]
    } else {
        &body["failure"]
    };
    let mut responses = Vec::new();
    for op in branch.as_array().unwrap() {
        if let Some(p) = op.get("request_put") {
            responses.push(json!({"response_put": put(seen, p)}));
        } else if let Some(r) = op.get("request_range") {
            responses.push(json!({"response_range": range(seen, r)}));
        }
    }
    let mut out = json!({"header": header(seen.revision), "responses": responses});
    if ok {
        // The gateway leaves `succeeded` out when it is false.
        out["succeeded"] = json!(true);
    }
    out
}

fn handle(state: &Shared, call: &str, body: Value) -> Response {
    let mut guard = state.lock().unwrap();
    let (behaviour, seen) = &mut *guard;
    seen.requests.push((call.to_string(), body.clone()));
    if let Behaviour::Failing(status, code, msg) = behaviour {
        let status = StatusCode::from_u16(*status).unwrap();
        return (
            status,
            Json(json!({"error": msg, "message": msg, "code": code})),
        )
            .into_response();
    }
    let answer = match call {
        "put" => put(seen, &body),
        "range" => range(seen, &body),
        "txn" => txn(seen, &body),
        _ => unreachable!(),
    };
    Json(answer).into_response()
}

/// Starts a fake member that behaves as told.
pub(super) async fn member(behaviour: Behaviour) -> FakeMember {
    let state: Shared = Arc::new(Mutex::new((behaviour, Seen::default())));
    let app =
        axum::Router::new()
            .route(
                "/v3/kv/put",
                post(|State(s): State<Shared>, Json(b): Json<Value>| async move {
                    handle(&s, "put", b)
                }),
            )
            .route(
                "/v3/kv/range",
                post(|State(s): State<Shared>, Json(b): Json<Value>| async move {
                    handle(&s, "range", b)
                }),
            )
            .route(
                "/v3/kv/txn",
                post(|State(s): State<Shared>, Json(b): Json<Value>| async move {
                    handle(&s, "txn", b)
                }),
            )
            .with_state(Arc::clone(&state));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeMember {
        url: format!("http://{addr}"),
        state,
    }
}
