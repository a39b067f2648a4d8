//! The peer RPC endpoints: postcard in, postcard `Result<Resp, RaftError>` out.

use axum::body::Bytes;
use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};
use crate::typ::rpc::{AppendRequest, SnapshotRequest, VoteRequest};

fn decode<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    postcard::from_bytes(body).map_err(|e| ApiError::bad_request(format!("bad RPC body: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Response {
    match postcard::to_allocvec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// `POST /raft/append`.
pub(super) async fn append(State(st): State<AppState>, body: Bytes) -> Response {
    match decode::<AppendRequest>(&body) {
        Ok(req) => {
            let current = st.inner.raft.metrics().borrow().current_term;
            st.inner.gate.heard(req.vote.leader_id().term, current);
            let entries = req.entries.len();
            let started = std::time::Instant::now();
            let res = st.inner.raft.append_entries(req).await;
            if entries > 0 && res.is_ok() {
                let stage = crate::stages::Stage::FollowerAppend;
                st.inner.stages.record(stage, started.elapsed(), entries);
            }
            encode(&res)
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /raft/vote`.
pub(super) async fn vote(State(st): State<AppState>, body: Bytes) -> Response {
    match decode::<VoteRequest>(&body) {
        Ok(req) => encode(&st.inner.raft.vote(req).await),
        Err(e) => e.into_response(),
    }
}

/// `GET /raft/applied?index=N&wait_ms=M`: 200 `{"applied":true}` once this node has applied
/// the log up to N, waiting up to M ms (at most 60 s); 504 `timeout` if it has not by then.
pub(super) async fn applied(
    State(st): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return ApiError::bad_request("bad query").into_response();
    };
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
    let (Some(index), Some(wait_ms)) = (num("index"), num("wait_ms")) else {
        return ApiError::bad_request("index and wait_ms are required").into_response();
    };
    let wait = std::time::Duration::from_millis(wait_ms.min(60_000));
    match st.applied_at_least(index, wait).await {
        Ok(()) => axum::Json(serde_json::json!({ "applied": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /raft/snapshot`: one chunk of an InstallSnapshot.
pub(super) async fn snapshot(State(st): State<AppState>, body: Bytes) -> Response {
    match decode::<SnapshotRequest>(&body) {
        Ok(req) => encode(&st.inner.raft.install_snapshot(req).await),
        Err(e) => e.into_response(),
    }
}
