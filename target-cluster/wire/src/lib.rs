//! The JSON shapes of the reference cluster's HTTP API.
//!
//! These types are shared by the node (`target-cluster`), the load generator (`loadgen`) and the
//! drill controller (`drills`). They deliberately depend on nothing but serde, so that the load
//! generator never compiles openraft.
//!
//! # Layout
//! - client API: [`PutBody`], [`WriteResponse`], [`GetResponse`], [`CasBody`], [`CasResponse`],
//!   [`Consistency`]
//! - errors: [`ErrorBody`] and the [`error_code`] strings
//! - admin API: [`Status`], [`AddMember`], [`Role`]
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

/// Longest key accepted by `PUT/GET/DELETE /kv/{key}`, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value accepted by a write, in bytes. Larger bodies get 413.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Body of `PUT /kv/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// The value to store.
    pub value: String,
}

/// Answer to a committed and applied write (`PUT` or `DELETE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResponse {
    /// Raft log index of the write.
    pub index: u64,
    /// Term of the leader that committed it.
    pub term: u64,
    /// Node id of that leader.
    pub leader: u64,
    /// Node id of the node that answered the client (differs from `leader` when forwarded).
    pub served_by: u64,
}

/// Answer to `GET /kv/{key}` when the key exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetResponse {
    /// The stored value.
    pub value: String,
    /// Log index of the write that produced this value.
    pub index: u64,
}

/// Body of `POST /kv/{key}/cas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasBody {
    /// The value the key must hold for the swap to happen; `null` means "the key must not exist".
    /// Required: a missing `expect` is an error, not "absent".
    #[serde(deserialize_with = "Option::deserialize")]
    pub expect: Option<String>,
    /// The new value.
    pub value: String,
}

/// Answer to a committed compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasResponse {
    /// Whether the swap happened.
    pub ok: bool,
    /// The value after the operation (the new value when `ok`, the unchanged one otherwise).
    pub current: Option<String>,
    /// Raft log index of the CAS entry.
    pub index: u64,
    /// Term of the leader that committed it.
    pub term: u64,
    /// Node id of that leader.
    pub leader: u64,
    /// Node id of the node that answered the client.
    pub served_by: u64,
}

/// Read consistency of `GET /kv/{key}?consistency=...`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// ReadIndex through the leader: a quorum confirms leadership before the read.
    #[default]
    Linearizable,
    /// Served by the leader while its lease (recent quorum contact) holds, without a new round.
    Lease,
    /// Served from the local state machine of whichever node receives it; may be stale.
    Stale,
    /// Served by any node once it has applied the log up to the request's `min_index`, with no
    /// leader round: a client that sends the highest index it has seen reads its own writes
    /// and never goes back in time.
    Session,
}

impl Consistency {
    /// The query-string spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Lease => "lease",
            Consistency::Stale => "stale",
            Consistency::Session => "session",
        }
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linearizable" => Ok(Consistency::Linearizable),
            "lease" => Ok(Consistency::Lease),
            "stale" => Ok(Consistency::Stale),
            "session" => Ok(Consistency::Session),
            other => Err(format!(
                "unknown consistency {other:?} (expected linearizable, lease, stale or session)"
            )),
        }
    }
}

/// Every non-2xx answer of the API carries this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, one of [`error_code`].
    pub error: String,
    /// A human-readable detail, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The leader this node knows of, when that helps the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
}

/// The stable error codes in [`ErrorBody::error`].
pub mod error_code {
    /// 404: the key does not exist.
    pub const NOT_FOUND: &str = "not_found";
    /// 503: no leader is known; the request was not applied.
    pub const NO_LEADER: &str = "no_leader";
    /// 504: the write did not commit in time; it may or may not be applied.
    pub const TIMEOUT: &str = "timeout";
    /// 400: malformed request.
    pub const BAD_REQUEST: &str = "bad_request";
    /// 413: value or body too large.
    pub const TOO_LARGE: &str = "too_large";
    /// 404 for unknown routes.
    pub const NO_ROUTE: &str = "no_route";
    /// 405 for a known route with the wrong method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 502: the leader could not be reached when forwarding; the request was not sent.
    pub const FORWARD_FAILED: &str = "forward_failed";
    /// 502: the connection to the leader broke after the request was sent; outcome unknown.
    pub const FORWARD_UNKNOWN: &str = "forward_unknown";
    /// 500: the node failed internally.
    pub const INTERNAL: &str = "internal";
    /// 503: the node is shutting down.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// 409: `POST /admin/init` on a node that already has a log or a vote.
    pub const ALREADY_INITIALIZED: &str = "already_initialized";
    /// 409: a membership change that cannot be made now (another in progress, unknown node).
    pub const MEMBERSHIP: &str = "membership";
    /// 401: a node started with a token was called without it (admin and peer APIs, and the
    /// client API with `--client-auth`).
    pub const UNAUTHORIZED: &str = "unauthorized";
}

/// The Raft role of a node as `/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Leader of its term.
    Leader,
    /// Follower (a voter).
    Follower,
    /// Candidate in an election.
    Candidate,
    /// Non-voting member.
    Learner,
    /// Stopped or failed.
    Shutdown,
}

/// Answer of `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub id: u64,
    /// Current role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// Index of the last log entry (0 when empty).
    pub last_log_index: u64,
    /// Highest index this node knows to be committed.
    pub committed: u64,
    /// Highest index applied to the state machine.
    pub applied: u64,
    /// Last index covered by the current snapshot (0 when none).
    pub snapshot_index: u64,
    /// Voting members of the current membership.
    pub voters: Vec<u64>,
    /// Non-voting members of the current membership.
    pub learners: Vec<u64>,
    /// How long the node's durable log commits have taken since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_commits: Option<CommitTimes>,
}

/// Durable log commit times of a node (`/status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommitTimes {
    /// Durable commits (each one fsync, for a batch of queued writes).
    pub commits: u64,
    /// Writes those commits carried (appends, votes, truncations).
    pub jobs: u64,
    /// Median commit time, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Longest, ms.
    pub max_ms: f64,
    /// Commits that failed (a full or failing disk); each is tried again until it succeeds.
    #[serde(default)]
    pub errors: u64,
    /// The last failure, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One stage of a node's write path (`GET /admin/stages`), since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Passes through the stage.
    pub count: u64,
    /// Items (entries) per pass, on average.
    pub items_per_pass: f64,
    /// Mean time, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Longest, ms.
    pub max_ms: f64,
}

/// Body of `POST /admin/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// Id of the new member.
    pub id: u64,
    /// Its address, `HOST:PORT`.
    pub addr: String,
    /// Promote to voter once it has caught up.
    #[serde(default)]
    pub voter: bool,
}

/// Body of `PUT /admin/peers/{id}`: where this node should send traffic for peer `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPeer {
    /// `HOST:PORT`, typically the proxy of the directed link to that peer.
    pub addr: String,
}

/// Body of `POST /admin/init`; without a body the node initializes a cluster of itself alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitBody {
    /// Member id to `HOST:PORT`.
    pub members: std::collections::BTreeMap<u64, String>,
}

/// Answer of the admin calls that change membership or initialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResponse {
    /// Voting members after the change.
    pub voters: Vec<u64>,
    /// Non-voting members after the change.
    pub learners: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_spellings_match_the_query_string() {
        for c in [
            Consistency::Linearizable,
            Consistency::Lease,
            Consistency::Stale,
        ] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            let back: Consistency = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn cas_body_requires_expect_but_allows_null() {
        assert!(serde_json::from_str::<CasBody>(r#"{"value":"x"}"#).is_err());
        let b: CasBody = serde_json::from_str(r#"{"expect":null,"value":"x"}"#).unwrap();
        assert_eq!(b.expect, None);
    }

    #[test]
    fn put_body_rejects_unknown_fields() {
        assert!(serde_json::from_str::<PutBody>(r#"{"value":"x","extra":1}"#).is_err());
        assert!(serde_json::from_str::<PutBody>(r#"{"value":"x"}"#).is_ok());
    }
}
