//! Sending a client request to the leader: one hop at most.
//!
//! A follower that receives a request which only the leader can serve replays it (method, path,
//! query, body) to the leader with an `x-raftdrill-via` header. A node that receives a request
//! carrying that header never forwards again; when it is not the leader it answers 503, so a
//! request never bounces between nodes that disagree about the leader.

use std::convert::Infallible;
use std::future::Future;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use raftdrill_wire::error_code;

use super::{ApiError, AppState};
use crate::typ::NodeId;

/// Header naming the node that forwarded a request.
pub(super) const VIA_HEADER: &str = "x-raftdrill-via";

/// What a handler that may forward keeps of a request before its body: the method, the URI
/// and the headers, as axum's own extractors of each give them.
pub(super) struct Head {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for Head {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Head {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

impl Head {
    /// The whole request, to serve here or replay to the leader.
    pub fn with_body(self, body: Bytes) -> Incoming {
        Incoming {
            method: self.method,
            uri: self.uri,
            headers: self.headers,
            body,
        }
    }
}

/// A request as received, kept so that it can be replayed to the leader.
pub(super) struct Incoming {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Incoming {
    /// The node that forwarded this request to us, if it was forwarded.
    pub fn via(&self) -> Option<NodeId> {
        self.headers.get(VIA_HEADER)?.to_str().ok()?.parse().ok()
    }
}

/// The local attempt found that this node is not the leader (it may name the one it knows).
pub(super) struct NotLeader(pub Option<NodeId>);

impl AppState {
    pub(super) fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The leader as this node currently sees it.
    pub(super) fn current_leader(&self) -> Option<NodeId> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// Whether this node leads but has not heard from a quorum for too long (it is cut off and
    /// will be deposed); what it would propose now could not commit.
    fn quorum_lost(&self) -> bool {
        let m = self.inner.raft.metrics().borrow().millis_since_quorum_ack;
        m.is_some_and(|ms| u128::from(ms) > self.inner.quorum_stale.as_millis())
    }

    /// Where to reach `id`: the peer map, or the address in the membership.
    pub(super) fn addr_of(&self, id: NodeId) -> Option<String> {
        if let Some(a) = self.inner.peers.get(id) {
            return Some(a);
        }
        let m = self.inner.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&id).map(|n| n.addr.clone())
    }
}

/// Runs `local` when this node leads; otherwise forwards the request to the leader once.
pub(super) async fn leader_only<F, Fut>(st: &AppState, inc: Incoming, local: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, NotLeader>>,
{
    let known = match st.current_leader() {
        None => return ApiError::no_leader(None).into_response(),
        // Not proposed at all, so definitely not applied: the client may retry elsewhere.
        Some(l) if l == st.id() && st.quorum_lost() => {
            return ApiError::no_leader(None).into_response();
        }
        Some(l) if l == st.id() => match local().await {
            Ok(resp) => return resp,
            Err(NotLeader(l)) => l,
        },
        Some(l) => Some(l),
    };
    match known {
        Some(l) if l != st.id() && inc.via().is_none() => forward(st, l, inc).await,
        other => ApiError::no_leader(other).into_response(),
    }
}

/// Replays `inc` to `leader` and passes its answer through.
async fn forward(st: &AppState, leader: NodeId, inc: Incoming) -> Response {
    let Some(addr) = st.addr_of(leader) else {
        return ApiError::no_leader(Some(leader)).into_response();
    };
    let path = inc.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = st
        .inner
        .http
        .request(inc.method.clone(), format!("http://{addr}{path}"))
        .header(VIA_HEADER, st.id().to_string())
        // The leader answers 504 itself at the request timeout; leave it room to say so.
        .timeout(st.inner.request_timeout + std::time::Duration::from_millis(500));
    if let Some(ct) = inc.headers.get(header::CONTENT_TYPE) {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let sent = req.body(inc.body).send().await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return forward_error(&e).into_response(),
    };
    let status = resp.status();
    match resp.bytes().await {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => forward_error(&e).into_response(),
    }
}

/// Classifies a failed forward by whether the leader may have acted on it.
fn forward_error(e: &reqwest::Error) -> ApiError {
    if e.is_connect() {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            error_code::FORWARD_FAILED,
            Some(e.to_string()),
        )
    } else if e.is_timeout() {
        ApiError::timeout()
    } else {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            error_code::FORWARD_UNKNOWN,
            Some(e.to_string()),
        )
    }
}
