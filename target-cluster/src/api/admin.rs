//! The admin API: `/status`, `/healthz`, `/admin/init`, `/admin/members`, `/admin/peers`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, ServerState};
use raftdrill_wire::{AddMember, AdminResponse, InitBody, Role, SetPeer, Status, error_code};

use super::forward::{Head, NotLeader, leader_only};
use super::{ApiError, AppState, parse_json as parse};
use crate::typ::{Node, NodeId, RaftMetrics};

/// How long a membership change may take (a learner may need a snapshot first).
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET /status`: answered from the metrics channel, never waiting on Raft.
pub(super) async fn status(State(st): State<AppState>) -> Json<Status> {
    let m = st.inner.raft.metrics().borrow().clone();
    let (voters, learners) = members(&m);
    Json(Status {
        id: m.id,
        role: match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        },
        term: m.current_term,
        leader: m.current_leader,
        last_log_index: m.last_log_index.unwrap_or(0),
        committed: st
            .inner
            .committed
            .load(std::sync::atomic::Ordering::Relaxed),
        applied: m.last_applied.map_or(0, |l| l.index),
        snapshot_index: m.snapshot.map_or(0, |l| l.index),
        voters,
        learners,
        log_commits: Some(st.inner.commit_stats.times()),
    })
}

fn members(m: &RaftMetrics) -> (Vec<NodeId>, Vec<NodeId>) {
    let mem = m.membership_config.membership();
    (mem.voter_ids().collect(), mem.learner_ids().collect())
}

/// `GET /admin/stages[?reset=true]`: where this node's writes spent their time, stage by
/// stage, since it started or since the last reset (see [`crate::stages`]).
pub(super) async fn stages(
    State(st): State<AppState>,
    query: Result<
        axum::extract::Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let reset = match query.as_ref().map(|q| q.get("reset").map(String::as_str)) {
        Ok(None | Some("false")) => false,
        Ok(Some("true")) => true,
        Ok(Some(other)) => {
            let msg = format!("reset={other:?}: use true or false");
            return ApiError::bad_request(msg).into_response();
        }
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    Json(st.inner.stages.report(reset)).into_response()
}

/// `GET /healthz`: the process is up and serving.
pub(super) async fn healthz(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "id": st.id() }))
}

/// `POST /admin/init`: initialize a new cluster (of this node alone without a body).
pub(super) async fn init(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let init: InitBody = match &body {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => InitBody::default(),
        _ => match parse(&body) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        },
    };
    let mut initial: BTreeMap<NodeId, Node> = init
        .members
        .into_iter()
        .map(|(id, addr)| (id, Node::new(addr)))
        .collect();
    if initial.is_empty() {
        initial.insert(st.id(), Node::new(st.inner.advertise.clone()));
    }
    match st.inner.raft.initialize(initial).await {
        Ok(()) => st.members_response(),
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => ApiError::new(
            StatusCode::CONFLICT,
            error_code::ALREADY_INITIALIZED,
            Some(e.to_string()),
        )
        .into_response(),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

/// `POST /admin/members`: add a learner, and promote it when `voter` is set. Runs on the leader.
pub(super) async fn add_member(
    State(st): State<AppState>,
    head: Head,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let add: AddMember = match parse(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let inc = head.with_body(body.unwrap_or_default());
    leader_only(&st, inc, || async {
        let raft = &st.inner.raft;
        let added = tokio::time::timeout(
            MEMBERSHIP_TIMEOUT,
            raft.add_learner(add.id, Node::new(add.addr.clone()), true),
        )
        .await;
        if let Err(resp) = membership_result(added)? {
            return Ok(resp);
        }
        if add.voter {
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([add.id]));
            let promoted =
                tokio::time::timeout(MEMBERSHIP_TIMEOUT, raft.change_membership(change, false))
                    .await;
            if let Err(resp) = membership_result(promoted)? {
                return Ok(resp);
            }
        }
        Ok(st.members_response())
    })
    .await
}

/// `DELETE /admin/members/{id}`: remove a voter or a learner. Runs on the leader.
pub(super) async fn remove_member(
    State(st): State<AppState>,
    head: Head,
    id: Result<Path<NodeId>, PathRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let inc = head.with_body(Bytes::new());
    leader_only(&st, inc, || async {
        let m = st.inner.raft.metrics().borrow().clone();
        let (voters, learners) = members(&m);
        let change = if voters.contains(&id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if learners.contains(&id) {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            let detail = format!("node {id} is not a member");
            return Ok(
                ApiError::new(StatusCode::NOT_FOUND, error_code::MEMBERSHIP, Some(detail))
                    .into_response(),
            );
        };
        let res = tokio::time::timeout(
            MEMBERSHIP_TIMEOUT,
            st.inner.raft.change_membership(change, false),
        )
        .await;
        if let Err(resp) = membership_result(res)? {
            return Ok(resp);
        }
        Ok(st.members_response())
    })
    .await
}

/// `PUT /admin/peers/{id}`: send this node's traffic for peer `id` to a new address.
pub(super) async fn set_peer(
    State(st): State<AppState>,
    id: Result<Path<NodeId>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let set: SetPeer = match parse(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    st.inner.peers.set(id, set.addr.clone());
    Json(serde_json::json!({ "id": id, "addr": set.addr })).into_response()
}

impl AppState {
    fn members_response(&self) -> Response {
        let m = self.inner.raft.metrics().borrow().clone();
        let (voters, learners) = members(&m);
        Json(AdminResponse { voters, learners }).into_response()
    }
}

type ChangeResult<T> = Result<
    Result<T, RaftError<NodeId, ClientWriteError<NodeId, Node>>>,
    tokio::time::error::Elapsed,
>;

/// Turns a membership call's result into: not leader, an error answer, or success.
fn membership_result<T>(res: ChangeResult<T>) -> Result<Result<(), Response>, NotLeader> {
    match res {
        Ok(Ok(_)) => Ok(Ok(())),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(NotLeader(f.leader_id))
        }
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
            Ok(Err(ApiError::new(
                StatusCode::CONFLICT,
                error_code::MEMBERSHIP,
                Some(e.to_string()),
            )
            .into_response()))
        }
        Ok(Err(RaftError::Fatal(f))) => Ok(Err(ApiError::internal(f).into_response())),
        Err(_) => Ok(Err(ApiError::timeout().into_response())),
    }
}
