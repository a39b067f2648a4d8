//! The node's HTTP surface: one axum router for the client, admin and peer APIs.
//!
//! Every error is a JSON [`ErrorBody`] with a 4xx or 5xx status, including malformed bodies,
//! unknown routes and wrong methods, so that a client (or a fuzzer) always gets an answer it can
//! classify and the node stays healthy.

mod admin;
mod auth;
mod client;
mod forward;
mod peer;
mod proposer;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use raftdrill_wire::{ErrorBody, MAX_VALUE_BYTES, error_code};

pub use auth::{Auth, BadToken, bearer};

use crate::election_gate::ElectionGate;
use crate::net::PeerMap;
use crate::net::path;
use crate::store::KvHandle;
use crate::store::commit_stats::CommitStats;
use crate::typ::{NodeId, Raft};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    raft: Raft,
    kv: KvHandle,
    committed: Arc<AtomicU64>,
    peers: PeerMap,
    http: reqwest::Client,
    request_timeout: Duration,
    /// How recent a quorum acknowledgement must be for a lease read to skip ReadIndex.
    lease: Duration,
    /// The address recorded in the membership for this node.
    advertise: String,
    /// A leader that has heard from no quorum for this long refuses requests (503) rather
    /// than let them wait for a commit that cannot come.
    quorum_stale: Duration,
    /// The log writer's commit times, for `/status`.
    commit_stats: Arc<CommitStats>,
    /// Where a write's time goes, for `/admin/stages`.
    stages: Arc<crate::stages::Stages>,
    /// Batches client writes into Raft entries.
    proposer: proposer::Proposer,
    /// Notes AppendEntries from the leader, to keep this node from campaigning meanwhile.
    gate: Arc<ElectionGate>,
    /// Planted bug: linearizable reads served locally.
    unsafe_reads: bool,
    /// Turns true when the node shuts down: the append streams close.
    closing: tokio::sync::watch::Receiver<bool>,
}

/// Parts of an [`AppState`].
pub struct AppStateParts {
    /// This node's id.
    pub id: NodeId,
    /// The Raft handle.
    pub raft: Raft,
    /// Read access to the applied state.
    pub kv: KvHandle,
    /// The committed index the log store last saved.
    pub committed: Arc<AtomicU64>,
    /// Where peers are reached.
    pub peers: PeerMap,
    /// Client for forwarding to the leader.
    pub http: reqwest::Client,
    /// Deadline of a client write or read.
    pub request_timeout: Duration,
    /// Lease for `consistency=lease` reads.
    pub lease: Duration,
    /// This node's own address as peers know it.
    pub advertise: String,
    /// See [`AppState`]: when a leader counts its quorum as lost.
    pub quorum_stale: Duration,
    /// The log writer's commit times.
    pub commit_stats: Arc<CommitStats>,
    /// Stage timings of the write path.
    pub stages: Arc<crate::stages::Stages>,
    /// The election gate.
    pub gate: Arc<ElectionGate>,
    /// Planted bug: serve linearizable reads from local state (see `NodeConfig`).
    pub unsafe_reads: bool,
    /// Turns true when the node shuts down (closes the append streams).
    pub closing: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(p: AppStateParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                id: p.id,
                proposer: proposer::Proposer::start(p.raft.clone()),
                raft: p.raft,
                kv: p.kv,
                committed: p.committed,
                peers: p.peers,
                http: p.http,
                request_timeout: p.request_timeout,
                lease: p.lease,
                advertise: p.advertise,
                quorum_stale: p.quorum_stale,
                commit_stats: p.commit_stats,
                stages: p.stages,
                gate: p.gate,
                unsafe_reads: p.unsafe_reads,
                closing: p.closing,
            }),
        }
    }
}

/// Builds the router of all three APIs; with `auth`, calls without the token are refused.
pub fn router(state: AppState, auth: Option<Auth>) -> Router {
    let router = Router::new()
        .route(
            "/kv/{key}",
            get(client::get_key)
                .put(client::put_key)
                .delete(client::delete_key),
        )
        .route("/kv/{key}/cas", post(client::cas_key))
        .route("/status", get(admin::status))
        .route("/healthz", get(admin::healthz))
        .route("/admin/stages", get(admin::stages))
        .route("/admin/init", post(admin::init))
        .route("/admin/members", post(admin::add_member))
        .route(
            "/admin/members/{id}",
            axum::routing::delete(admin::remove_member),
        )
        .route("/admin/peers/{id}", put(admin::set_peer))
        .route(path::APPEND, post(peer::append))
        .route(path::STREAM, get(peer::stream))
        .route(path::VOTE, post(peer::vote))
        .route(path::SNAPSHOT, post(peer::snapshot))
        .route(path::APPLIED, get(peer::applied))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        // Room for a 1 MiB value plus JSON escaping; larger bodies are answered 413 as JSON.
        .layer(DefaultBodyLimit::max(MAX_VALUE_BYTES * 2 + 4096))
        .with_state(state);
    match auth {
        Some(auth) => router.layer(axum::middleware::from_fn_with_state(
            auth,
            auth::require_token,
        )),
        None => router,
    }
}

/// An error answer: a status and a JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// An error with a code and a detail.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<Option<String>>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.to_string(),
                detail: detail.into(),
                leader: None,
            },
        }
    }

    /// 400 with a detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            error_code::BAD_REQUEST,
            Some(detail.into()),
        )
    }

    /// 503 no_leader, naming the leader when one is known but unusable.
    pub fn no_leader(leader: Option<NodeId>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, error_code::NO_LEADER, None);
        e.body.leader = leader;
        e
    }

    /// 504 timeout: the outcome of the request is unknown.
    pub fn timeout() -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, error_code::TIMEOUT, None)
    }

    /// 413 too_large.
    pub fn too_large(detail: String) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            error_code::TOO_LARGE,
            Some(detail),
        )
    }

    /// 500 internal.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code::INTERNAL,
            Some(detail.to_string()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, error_code::NO_ROUTE, None)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        error_code::METHOD_NOT_ALLOWED,
        None,
    )
}

/// Parses a JSON body; an over-long body is 413, anything else malformed is 400.
fn parse_json<T: serde::de::DeserializeOwned>(
    body: &Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::too_large(e.body_text()));
        }
        Err(e) => return Err(ApiError::bad_request(e.body_text())),
    };
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}
