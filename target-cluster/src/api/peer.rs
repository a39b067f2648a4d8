//! The peer RPC endpoints: postcard in, postcard `Result<Resp, RaftError>` out; and the append
//! stream (see `net`), the same AppendEntries as length-framed postcard on an upgraded
//! connection.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{ApiError, AppState};
use crate::net::{frame, path};
use crate::typ::err::RaftError;
use crate::typ::rpc::{AppendRequest, AppendResponse, SnapshotRequest, VoteRequest};

fn decode<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    postcard::from_bytes(body).map_err(|e| ApiError::bad_request(format!("bad RPC body: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Response {
    match postcard::to_allocvec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Hands one AppendEntries to Raft, noting the leader for the election gate.
async fn append_one(st: &AppState, req: AppendRequest) -> Result<AppendResponse, RaftError> {
    let current = st.inner.raft.metrics().borrow().current_term;
    st.inner.gate.heard(req.vote.leader_id().term, current);
    let entries = req.entries.len();
    let started = std::time::Instant::now();
    let res = st.inner.raft.append_entries(req).await;
    if entries > 0 && res.is_ok() {
        let stage = crate::stages::Stage::FollowerAppend;
        st.inner.stages.record(stage, started.elapsed(), entries);
    }
    res
}

/// `POST /raft/append`.
pub(super) async fn append(State(st): State<AppState>, body: Bytes) -> Response {
    match decode::<AppendRequest>(&body) {
        Ok(req) => encode(&append_one(&st, req).await),
        Err(e) => e.into_response(),
    }
}

/// `GET /raft/stream` with `Upgrade: raftdrill-append`: 101, then the connection serves
/// AppendEntries frames until the leader closes it, a frame is bad, or this node shuts down.
pub(super) async fn stream(State(st): State<AppState>, mut req: Request) -> Response {
    let asked = req.headers().get(header::UPGRADE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(path::STREAM_PROTOCOL.as_bytes())
    });
    if !asked {
        let msg = format!("the append stream needs Upgrade: {}", path::STREAM_PROTOCOL);
        return ApiError::bad_request(msg).into_response();
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => serve_stream(st, hyper_util::rt::TokioIo::new(io)).await,
            Err(e) => tracing::debug!(error = %e, "an append stream was not upgraded"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, path::STREAM_PROTOCOL)
        .body(Body::empty())
        .unwrap_or_else(|e| ApiError::internal(e).into_response())
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(st: AppState, mut io: S) {
    let mut closing = st.inner.closing.clone();
    let mut buf = Vec::new();
    loop {
        let req = tokio::select! {
            req = frame::read::<_, AppendRequest>(&mut io, &mut buf) => match req {
                Ok(req) => req,
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::UnexpectedEof {
                        tracing::warn!(error = %e, "closing an append stream");
                    }
                    return;
                }
            },
            _ = closing.wait_for(|c| *c) => return,
        };
        let res = append_one(&st, req).await;
        if let Err(e) = frame::write(&mut io, &res).await {
            tracing::debug!(error = %e, "an append stream broke");
            return;
        }
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
