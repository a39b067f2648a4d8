//! How an etcd gateway error ends an operation: fail (definitely not applied, safe to retry
//! elsewhere) or unknown (may have been applied; never retried).
//!
//! The gateway answers a failed RPC with an HTTP status derived from the gRPC code and the
//! body `{"error": MESSAGE, "code": GRPC_CODE}`. The message is one of etcd's `rpctypes`
//! errors (etcdserver/api/v3rpc/rpctypes/error.go), so the code and the message together say
//! where in the server the request stopped. Transport errors (refused, timed out, reset) are
//! classified as for the reference cluster ([`OpError::from_reqwest`]).
//!
//! | answer | write (put, txn) | read (range) | class |
//! |---|---|---|---|
//! | code 14 `etcdserver: no leader` | fail | fail | `no_leader` |
//! | code 2 `raft proposal dropped` | fail | fail | `no_leader` |
//! | code 14 `not capable`, `rpc not supported for learner`, `unhealthy cluster` | fail | fail | `5xx` |
//! | code 14 `request timed out*`, `leader changed`, `server stopped`, any other 14 | unknown | fail | `5xx` |
//! | code 8 `too many requests`, `database space exceeded` | fail | fail | `4xx` (HTTP 429) |
//! | codes 3, 5, 6, 7, 9, 11, 12, 16 (invalid argument, not leader, auth, ...) | fail | fail | `4xx` |
//! | any other 4xx without a gRPC body (unknown route) | fail | fail | `4xx` |
//! | codes 1, 4 (canceled, deadline exceeded), 2 otherwise, 13, 15, other 5xx | unknown | unknown | `5xx` |
//!
//! Why, case by case (file names are etcd 3.4's):
//! - `no leader` is returned only before a request reaches Raft: by the gRPC interceptor when
//!   the client requires a leader (`api/v3rpc/interceptor.go`), and by `waitLeader`
//!   (`v3_server.go`) for lease calls. Nothing was proposed, so a retry elsewhere is safe.
//! - `raft proposal dropped` (`raft.ErrProposalDropped`, unmapped, hence code 2 Unknown) comes
//!   back synchronously from `Propose` when Raft refuses the entry (no leader known, leadership
//!   transfer in progress); `processInternalRaftRequestOnce` returns it before waiting, and the
//!   entry is in no log.
//! - `request timed out` (and its two "possibly due to" variants) is how
//!   `parseProposeCtxErr` reports a proposal whose wait expired: it may have been forwarded,
//!   appended and committed after the server gave up. `server stopped` can come after the
//!   proposal too. etcd's own client treats every Unavailable on a mutation as unsafe to retry
//!   once the request was sent (`clientv3/retry.go`, `isSafeRetryMutableRPC`), and so do we:
//!   unknown.
//! - `leader changed` is returned by the ReadIndex wait of a linearizable read
//!   (`requestCurrentIndex`), so for a write it is not expected; if it came, unknown.
//! - Reads apply nothing, so any Unavailable ends a read as a definite failure that may be
//!   retried on another member, as `clientv3/retry.go`'s `isSafeRetryImmutableRPC` does.
//! - `too many requests` is checked before the proposal (`processInternalRaftRequestOnce`);
//!   `database space exceeded` is the NOSPACE alarm's refusal, where the applier leaves the
//!   key-value store unchanged. Both: not applied.
//! - InvalidArgument, OutOfRange, NotFound, FailedPrecondition (`not leader`, auth),
//!   PermissionDenied, Unauthenticated, Unimplemented: the request was refused as asked.
//! - `context deadline exceeded` with code 2 is what a put gets from a member that knows no
//!   leader (seen on 3.4.23 with quorum lost, after 5 s + 2 × the election timeout): `Propose`
//!   waited for Raft to take the entry and gave up. Almost always nothing was proposed, but
//!   `stepWithWaitOption` selects between the step's result and the deadline, so an entry
//!   taken at the last moment is reported the same way: unknown.
//! - Anything else (Unknown, Internal, DataLoss, a deadline or cancellation inside the server)
//!   may have happened after the proposal: unknown, failing closed.

use crate::outcome::{ErrorClass, OpError};

use super::wire::GatewayError;

/// What kind of operation failed: reads may be retried after any Unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// A range.
    Read,
    /// A put or a txn with a put.
    Write,
}

/// gRPC status codes (google.golang.org/grpc/codes), as the gateway puts them in `code`.
mod code {
    pub const CANCELED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// `rpctypes` messages that decide an outcome.
mod message {
    pub const NO_LEADER: &str = "etcdserver: no leader";
    pub const PROPOSAL_DROPPED: &str = "raft proposal dropped";
    pub const NOT_CAPABLE: &str = "etcdserver: not capable";
    pub const LEARNER: &str = "etcdserver: rpc not supported for learner";
    pub const UNHEALTHY: &str = "etcdserver: unhealthy cluster";
}

/// Classifies a non-2xx answer of the gateway from its HTTP status and body.
pub(crate) fn classify(status: u16, body: &[u8], kind: OpKind) -> OpError {
    let class_of_status = if (400..500).contains(&status) {
        ErrorClass::Http4xx
    } else {
        ErrorClass::Http5xx
    };
    let Ok(err) = serde_json::from_slice::<GatewayError>(body) else {
        // Not the gateway's gRPC error body: an unknown route (404) or method is a refusal;
        // a 5xx from something in between may have come after the request was handled.
        let detail = format!("HTTP {status} {}", String::from_utf8_lossy(body).trim());
        return if class_of_status == ErrorClass::Http4xx {
            OpError::fail(ErrorClass::Http4xx, detail)
        } else {
            OpError::unknown(ErrorClass::Http5xx, detail)
        };
    };
    let detail = format!("HTTP {status} code {}: {}", err.code, err.error);
    let msg = err.error.as_str();
    match err.code {
        code::UNAVAILABLE if msg == message::NO_LEADER => {
            OpError::fail(ErrorClass::NoLeader, detail)
        }
        code::UNKNOWN if msg == message::PROPOSAL_DROPPED => {
            OpError::fail(ErrorClass::NoLeader, detail)
        }
        code::UNAVAILABLE
            if [message::NOT_CAPABLE, message::LEARNER, message::UNHEALTHY].contains(&msg) =>
        {
            OpError::fail(ErrorClass::Http5xx, detail)
        }
        code::UNAVAILABLE => match kind {
            OpKind::Read => OpError::fail(ErrorClass::Http5xx, detail),
            OpKind::Write => OpError::unknown(ErrorClass::Http5xx, detail),
        },
        code::RESOURCE_EXHAUSTED
        | code::INVALID_ARGUMENT
        | code::NOT_FOUND
        | code::ALREADY_EXISTS
        | code::PERMISSION_DENIED
        | code::FAILED_PRECONDITION
        | code::OUT_OF_RANGE
        | code::UNIMPLEMENTED
        | code::UNAUTHENTICATED => OpError::fail(class_of_status, detail),
        code::CANCELED | code::DEADLINE_EXCEEDED | code::UNKNOWN => {
            OpError::unknown(ErrorClass::Http5xx, detail)
        }
        _ => OpError::unknown(ErrorClass::Http5xx, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    fn body(code: i32, msg: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"error": msg, "message": msg, "code": code}))
            .unwrap()
    }

    fn outcome(status: u16, code: i32, msg: &str, kind: OpKind) -> (ErrorClass, Outcome) {
        let e = classify(status, &body(code, msg), kind);
        (e.class, e.outcome)
    }

    use ErrorClass::*;
    use OpKind::*;
    use Outcome::{Fail, Unknown};

    #[test]
    fn errors_before_the_proposal_are_failures() {
        let before = [
            (503, 14, "etcdserver: no leader", NoLeader),
            (500, 2, "raft proposal dropped", NoLeader),
            (503, 14, "etcdserver: not capable", Http5xx),
            (400, 3, "etcdserver: key is not provided", Http4xx),
            (412, 9, "etcdserver: not leader", Http4xx),
            (429, 8, "etcdserver: too many requests", Http4xx),
        ];
        for kind in [Read, Write] {
            for (status, code, msg, class) in before {
                assert_eq!(outcome(status, code, msg, kind), (class, Fail), "{msg}");
            }
        }
    }

    #[test]
    fn a_write_that_may_have_been_proposed_is_unknown_but_a_read_fails() {
        for msg in [
            "etcdserver: request timed out",
            "etcdserver: request timed out, possibly due to previous leader failure",
            "etcdserver: request timed out, possibly due to connection lost",
            "etcdserver: leader changed",
            "etcdserver: server stopped",
            "transport is closing",
        ] {
            assert_eq!(outcome(503, 14, msg, Write), (Http5xx, Unknown), "{msg}");
            assert_eq!(outcome(503, 14, msg, Read), (Http5xx, Fail), "{msg}");
        }
    }

    #[test]
    fn server_side_deadlines_and_unknown_errors_are_unknown() {
        let after = [
            (504, 4, "context deadline exceeded"),
            (500, 2, "something else"),
            (500, 2, "context deadline exceeded"),
            (500, 13, "internal"),
        ];
        for kind in [Read, Write] {
            for (status, code, msg) in after {
                assert_eq!(
                    outcome(status, code, msg, kind),
                    (Http5xx, Unknown),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn bodies_that_are_not_grpc_errors_go_by_status() {
        let e = classify(404, b"404 page not found\n", Write);
        assert_eq!((e.class, e.outcome), (Http4xx, Fail));
        let e = classify(502, b"bad gateway", Write);
        assert_eq!((e.class, e.outcome), (Http5xx, Unknown));
    }
}
