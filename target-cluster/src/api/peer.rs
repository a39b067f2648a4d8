//! The peer RPC endpoints: postcard in, postcard `Result<Resp, RaftError>` out.

use axum::body::Bytes;
use axum::extract::State;
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
            encode(&st.inner.raft.append_entries(req).await)
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

/// `POST /raft/snapshot`: one chunk of an InstallSnapshot.
pub(super) async fn snapshot(State(st): State<AppState>, body: Bytes) -> Response {
    match decode::<SnapshotRequest>(&body) {
        Ok(req) => encode(&st.inner.raft.install_snapshot(req).await),
        Err(e) => e.into_response(),
    }
}
