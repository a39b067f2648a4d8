//! The client API: `PUT/GET/DELETE /kv/{key}` and `POST /kv/{key}/cas`.
//!
//! Writes answer only once their entry is committed and applied. A write that does not commit
//! within the request timeout answers 504 (outcome unknown); one refused because no leader is
//! known answers 503 at once (not applied).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use openraft::error::{CheckIsLeaderError, RaftError};
use raftdrill_wire::{
    CasBody, CasResponse, Consistency, GetResponse, MAX_KEY_BYTES, MAX_VALUE_BYTES, PutBody,
    WriteResponse, error_code,
};

use super::forward::{Head, Incoming, NotLeader, leader_only};
use super::proposer::Refused;
use super::{ApiError, AppState, parse_json};
use crate::typ::{Request, Response as SmResponse};

/// The key of the path, as axum gives it (checked by [`check_key`]).
type KeyPath = Result<Path<String>, PathRejection>;
/// The query string's parameters.
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;
/// The body, as axum gives it.
type Body = Result<Bytes, BytesRejection>;

/// A write with a JSON body, checked: its key, its body, `ack=all`, and the request kept for
/// forwarding.
struct BodyWrite<B> {
    key: String,
    body: B,
    all: bool,
    inc: Incoming,
    via: Option<u64>,
}

/// Checks the key, the JSON body, `ack=all` and then the body's values (`values`), in that
/// order; the first that fails is the answer.
fn body_write<B: serde::de::DeserializeOwned>(
    head: Head,
    key: KeyPath,
    query: Params,
    body: Body,
    values: impl FnOnce(&B) -> Result<(), ApiError>,
) -> Result<BodyWrite<B>, ApiError> {
    let (key, parsed, all) = check_key(&head.uri, key)
        .and_then(|k| Ok((k, parse_json::<B>(&body)?, ack_all(query)?)))?;
    values(&parsed)?;
    let inc = head.with_body(body.unwrap_or_default());
    let via = inc.via();
    Ok(BodyWrite {
        key,
        body: parsed,
        all,
        inc,
        via,
    })
}

/// `PUT /kv/{key}[?ack=all]`.
pub(super) async fn put_key(
    State(st): State<AppState>,
    head: Head,
    key: KeyPath,
    query: Params,
    body: Body,
) -> Response {
    let deadline = Instant::now() + st.inner.request_timeout;
    let checked = body_write(head, key, query, body, |put: &PutBody| {
        check_value(&put.value)
    });
    let w = match checked {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let req = Request::Put {
        key: w.key,
        value: w.body.value,
    };
    leader_only(&st, w.inc, || st.answer_write(req, w.all, deadline, w.via)).await
}

/// `DELETE /kv/{key}[?ack=all]`.
pub(super) async fn delete_key(
    State(st): State<AppState>,
    head: Head,
    key: KeyPath,
    query: Params,
) -> Response {
    let deadline = Instant::now() + st.inner.request_timeout;
    let parsed = check_key(&head.uri, key).and_then(|k| Ok((k, ack_all(query)?)));
    let (key, all) = match parsed {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let inc = head.with_body(Bytes::new());
    let via = inc.via();
    let req = Request::Delete { key };
    leader_only(&st, inc, || st.answer_write(req, all, deadline, via)).await
}

/// `POST /kv/{key}/cas[?ack=all]`.
pub(super) async fn cas_key(
    State(st): State<AppState>,
    head: Head,
    key: KeyPath,
    query: Params,
    body: Body,
) -> Response {
    let deadline = Instant::now() + st.inner.request_timeout;
    let checked = body_write(head, key, query, body, |cas: &CasBody| {
        check_value(&cas.value).and(cas.expect.as_deref().map_or(Ok(()), check_value))
    });
    let BodyWrite {
        key,
        body: cas,
        all,
        inc,
        via,
    } = match checked {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    leader_only(&st, inc, || async {
        let req = Request::Cas {
            key,
            expect: cas.expect,
            value: cas.value,
        };
        let w = match st.write(req).await? {
            Ok(w) => w,
            Err(e) => return Ok(e.into_response()),
        };
        if let Err(e) = st.acked_by_all(all, w.index, deadline).await {
            return Ok(e.into_response());
        }
        let meta = w.response(&st, via);
        let (ok, current) = match w.data {
            SmResponse::Cas { ok, current } => (ok, current),
            SmResponse::Done | SmResponse::Batch(_) => {
                return Ok(ApiError::internal("CAS applied as a plain write").into_response());
            }
        };
        let resp = CasResponse {
            ok,
            current,
            index: meta.index,
            term: meta.term,
            leader: meta.leader,
            served_by: meta.served_by,
        };
        Ok(Json(resp).into_response())
    })
    .await
}

/// `GET /kv/{key}?consistency=linearizable|lease|stale`.
pub(super) async fn get_key(
    State(st): State<AppState>,
    head: Head,
    key: KeyPath,
    query: Params,
) -> Response {
    let parsed = check_key(&head.uri, key).and_then(|k| Ok((k, consistency(query)?)));
    let (key, (consistency, min_index)) = match parsed {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if consistency == Consistency::Stale || st.inner.unsafe_reads {
        return st.read_local(&key);
    }
    if consistency == Consistency::Session {
        return match st
            .applied_at_least(min_index, st.inner.request_timeout)
            .await
        {
            Ok(()) => st.read_local(&key),
            Err(e) => e.into_response(),
        };
    }
    let inc = head.with_body(Bytes::new());
    leader_only(&st, inc, || async {
        if consistency == Consistency::Lease && st.lease_holds() {
            return Ok(st.read_local(&key));
        }
        let res = tokio::time::timeout(
            st.inner.request_timeout,
            st.inner.raft.ensure_linearizable(),
        )
        .await;
        match res {
            Ok(Ok(_)) => Ok(st.read_local(&key)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(NotLeader(f.leader_id))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                Ok(ApiError::no_leader(None).into_response())
            }
            Ok(Err(RaftError::Fatal(f))) => Ok(shutting_down(f).into_response()),
            Err(_) => Ok(ApiError::timeout().into_response()),
        }
    })
    .await
}

/// A committed and applied write.
pub(super) struct Written {
    index: u64,
    term: u64,
    leader: u64,
    data: SmResponse,
}

impl Written {
    fn response(&self, st: &AppState, via: Option<u64>) -> WriteResponse {
        WriteResponse {
            index: self.index,
            term: self.term,
            leader: self.leader,
            served_by: via.unwrap_or(st.id()),
        }
    }
}

impl AppState {
    /// Proposes `req` and waits (up to the request timeout) until it is applied.
    /// Proposes `req` (batched with other writes: see [`super::proposer`]) and waits (up to
    /// the request timeout) until it is applied.
    async fn write(&self, req: Request) -> Result<Result<Written, ApiError>, NotLeader> {
        let started = std::time::Instant::now();
        let answer = match self.inner.proposer.propose(req) {
            Ok(answer) => answer,
            Err(refused) => return refused_to(refused),
        };
        match tokio::time::timeout(self.inner.request_timeout, answer).await {
            Err(_) => Ok(Err(ApiError::timeout())),
            Ok(Err(_)) => Ok(Err(shutting_down("the proposal was dropped"))),
            Ok(Ok(Err(refused))) => refused_to(refused),
            Ok(Ok(Ok(a))) => {
                let took = started.elapsed();
                self.inner.stages.write_done(started, a.index, took);
                Ok(Ok(Written {
                    index: a.index,
                    term: a.term,
                    leader: a.leader,
                    data: a.data,
                }))
            }
        }
    }

    /// Proposes `req`, waits for every voter's copy with `all`, and answers with where the
    /// write landed.
    async fn answer_write(
        &self,
        req: Request,
        all: bool,
        deadline: Instant,
        via: Option<u64>,
    ) -> Result<Response, NotLeader> {
        let w = self.write(req).await?;
        Ok(match w {
            Ok(w) => self
                .acked_by_all(all, w.index, deadline)
                .await
                .map(|()| Json(w.response(self, via)).into_response())
                .unwrap_or_else(|e| e.into_response()),
            Err(e) => e.into_response(),
        })
    }

    fn read_local(&self, key: &str) -> Response {
        let kv = self.inner.kv.read().expect("state lock");
        match kv.map.get(key) {
            Some(s) => Json(GetResponse {
                value: s.value.clone(),
                index: s.index,
            })
            .into_response(),
            None => {
                ApiError::new(StatusCode::NOT_FOUND, error_code::NOT_FOUND, None).into_response()
            }
        }
    }

    /// Waits until this node has applied the log up to `index`, for at most `wait`: a session
    /// read, and a voter's answer to a leader's `ack=all`. 504 `timeout` after that.
    pub(super) async fn applied_at_least(
        &self,
        index: u64,
        wait: Duration,
    ) -> Result<(), ApiError> {
        if index == 0 {
            return Ok(());
        }
        self.inner
            .raft
            .wait(Some(wait))
            .applied_index_at_least(Some(index), "read at min_index")
            .await
            .map(|_| ())
            .map_err(|_| ApiError::timeout())
    }

    /// With `all`, waits until every voter has applied the entry at `index` (each is asked at
    /// its peer address, through the same links as Raft's own traffic), or answers 504
    /// `timeout` at `deadline`: the write is committed, but not everywhere in time.
    async fn acked_by_all(&self, all: bool, index: u64, deadline: Instant) -> Result<(), ApiError> {
        if !all {
            return Ok(());
        }
        let voters: Vec<u64> = self
            .inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != self.inner.id)
            .collect();
        let mut asks = tokio::task::JoinSet::new();
        for id in voters {
            let st = self.clone();
            asks.spawn(async move { st.ask_applied(id, index, deadline).await });
        }
        while let Some(answer) = asks.join_next().await {
            if !matches!(answer, Ok(true)) {
                return Err(ApiError::timeout());
            }
        }
        Ok(())
    }

    /// Asks voter `id` until it says it has applied `index`, or `deadline` passes.
    async fn ask_applied(&self, id: u64, index: u64, deadline: Instant) -> bool {
        let Some(addr) = self.addr_of(id) else {
            return false;
        };
        let url = format!("http://{addr}{}?index={index}", crate::net::path::APPLIED);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let asked = self
                .inner
                .http
                .get(format!("{url}&wait_ms={}", left.as_millis()))
                .timeout(left)
                .send()
                .await;
            match asked {
                Ok(r) if r.status().is_success() => return true,
                // The voter could not be reached or did not catch up in time: ask again while
                // time is left (a refused connection answers at once, so pause).
                _ => tokio::time::sleep(Duration::from_millis(20).min(left)).await,
            }
        }
    }

    /// Whether a quorum acknowledged this leader recently enough to serve a lease read.
    fn lease_holds(&self) -> bool {
        let m = self.inner.raft.metrics().borrow().millis_since_quorum_ack;
        m.is_some_and(|ms| u128::from(ms) < self.inner.lease.as_millis())
    }
}

/// A refused proposal as the API answers it.
fn refused_to(refused: Refused) -> Result<Result<Written, ApiError>, NotLeader> {
    match refused {
        Refused::NotLeader(leader) => Err(NotLeader(leader)),
        Refused::Other(e) => Ok(Err(ApiError::internal(e))),
        Refused::Stopped(e) => Ok(Err(shutting_down(e))),
    }
}

fn shutting_down(f: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        error_code::SHUTTING_DOWN,
        Some(f.to_string()),
    )
}

/// The key of the path, percent-decoded strictly: a `%` not followed by two hex digits is a
/// 400 (axum's decoder would keep it as a literal `%`, so `%zz` and `%25zz` named the same key).
fn check_key(uri: &Uri, key: KeyPath) -> Result<String, ApiError> {
    if let Some(at) = malformed_escape(uri.path()) {
        return Err(ApiError::bad_request(format!(
            "malformed percent-encoding at byte {at} of the path"
        )));
    }
    let Path(key) = key.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if key.is_empty() {
        return Err(ApiError::bad_request("empty key"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key)
}

/// The offset of the first `%` that does not start a `%XX` escape, if any.
fn malformed_escape(path: &str) -> Option<usize> {
    let b = path.as_bytes();
    (0..b.len()).find(|&i| {
        b[i] == b'%'
            && !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
    })
}

fn check_value(value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::too_large(format!(
            "value is {} bytes; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// The read's consistency and, for a session read, its `min_index` (default 0).
fn consistency(query: Params) -> Result<(Consistency, u64), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let c = match q.get("consistency").map(String::as_str) {
        None | Some("linearizable") => Consistency::Linearizable,
        Some("lease") => Consistency::Lease,
        Some("stale") => Consistency::Stale,
        Some("session") => Consistency::Session,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown consistency {other:?}; use linearizable, lease, stale or session"
            )));
        }
    };
    let min_index = match q.get("min_index") {
        None => 0,
        Some(_) if c != Consistency::Session => {
            return Err(ApiError::bad_request(
                "min_index goes with consistency=session",
            ));
        }
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("min_index {v:?} is not a log index")))?,
    };
    Ok((c, min_index))
}

/// How many replicas must have applied a write before it is answered: `quorum` (the default:
/// committed, and applied on the leader) or `all` (applied on every voter).
fn ack_all(query: Params) -> Result<bool, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    match q.get("ack").map(String::as_str) {
        None | Some("quorum") => Ok(false),
        Some("all") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown ack {other:?}; use quorum or all"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::malformed_escape;

    #[test]
    fn only_complete_escapes_pass() {
        assert_eq!(malformed_escape("/kv/a%20b"), None);
        assert_eq!(malformed_escape("/kv/%2F%2f/cas"), None);
        assert_eq!(malformed_escape("/kv/%zz"), Some(4));
        assert_eq!(malformed_escape("/kv/a%2"), Some(5));
        assert_eq!(malformed_escape("/kv/a%"), Some(5));
    }
}
