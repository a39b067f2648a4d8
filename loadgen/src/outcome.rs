//! How an operation ended: ok, fail (definitely not applied) or unknown (may have been
//! applied), and the class of error behind a fail or unknown.
//!
//! | cause | outcome | class |
//! |---|---|---|
//! | 2xx, and 404 `not_found` on a read | ok | |
//! | other 4xx | fail | `4xx` |
//! | connection refused / connect error | fail | `connect` |
//! | 503 `no_leader` | fail | `no_leader` |
//! | 502 `forward_failed` | fail | `5xx` |
//! | client timeout (default 2 s) | unknown | `timeout` |
//! | connection reset or broken after the request was sent | unknown | `reset` |
//! | 503 `shutting_down` (and any other 503), 504 `timeout`, 502 `forward_unknown`, 500 and other 5xx | unknown | `5xx` |
//!
//! A 504 is counted as `5xx`, not `timeout`: the `timeout` class means the client gave up.
//! Only `no_leader` and `forward_failed` are answered before the request reaches Raft; a node
//! that answers `shutting_down` may have proposed the write (a proposal dropped while the
//! node stops, a Raft core that stopped after it took the entry), so its outcome is unknown,
//! as Jepsen's `info`: calling it failed would let the checker report anomalies that did not
//! happen and miss ones that did.

use serde::{Deserialize, Serialize};

use raftdrill_wire::error_code;

/// The end of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Completed as asked.
    Ok,
    /// Definitely not applied.
    Fail,
    /// May or may not have been applied.
    Unknown,
}

/// The class of an error, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ErrorClass {
    /// The client's per-request timeout fired.
    #[serde(rename = "timeout")]
    Timeout,
    /// The connection could not be made.
    #[serde(rename = "connect")]
    Connect,
    /// The connection broke after the request was sent.
    #[serde(rename = "reset")]
    Reset,
    /// 503 `no_leader`.
    #[serde(rename = "no_leader")]
    NoLeader,
    /// Any other 5xx.
    #[serde(rename = "5xx")]
    Http5xx,
    /// A 4xx other than a read's 404.
    #[serde(rename = "4xx")]
    Http4xx,
}

impl ErrorClass {
    /// Every class, in index order.
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::Reset,
        ErrorClass::NoLeader,
        ErrorClass::Http5xx,
        ErrorClass::Http4xx,
    ];

    /// A dense index, for per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in files and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Reset => "reset",
            ErrorClass::NoLeader => "no_leader",
            ErrorClass::Http5xx => "5xx",
            ErrorClass::Http4xx => "4xx",
        }
    }
}

/// An operation that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {detail}", class.as_str(), if *outcome == Outcome::Fail { "not applied" } else { "outcome unknown" })]
pub struct OpError {
    /// What kind of error.
    pub class: ErrorClass,
    /// [`Outcome::Fail`] or [`Outcome::Unknown`].
    pub outcome: Outcome,
    /// What happened, for logs.
    pub detail: String,
}

impl OpError {
    /// An error that definitely did not apply the operation.
    pub fn fail(class: ErrorClass, detail: impl Into<String>) -> Self {
        Self {
            class,
            outcome: Outcome::Fail,
            detail: detail.into(),
        }
    }

    /// An error after which the operation may have been applied.
    pub fn unknown(class: ErrorClass, detail: impl Into<String>) -> Self {
        Self {
            class,
            outcome: Outcome::Unknown,
            detail: detail.into(),
        }
    }

    /// Classify a non-2xx HTTP answer from its status and the `error` code of its body (if it
    /// had one).
    pub fn from_status(status: u16, code: Option<&str>) -> Self {
        let detail = format!("HTTP {status} {}", code.unwrap_or("-"));
        match (status, code) {
            (503, Some(c)) if c == error_code::NO_LEADER => {
                Self::fail(ErrorClass::NoLeader, detail)
            }
            (502, Some(c)) if c == error_code::FORWARD_FAILED => {
                Self::fail(ErrorClass::Http5xx, detail)
            }
            (400..=499, _) => Self::fail(ErrorClass::Http4xx, detail),
            _ => Self::unknown(ErrorClass::Http5xx, detail),
        }
    }

    /// Classify a transport error of the HTTP client.
    pub(crate) fn from_reqwest(err: &reqwest::Error) -> Self {
        let detail = error_chain(err);
        if err.is_timeout() {
            Self::unknown(ErrorClass::Timeout, detail)
        } else if err.is_connect() {
            Self::fail(ErrorClass::Connect, detail)
        } else {
            // The request may have reached the server: reset, broken body, bad answer.
            Self::unknown(ErrorClass::Reset, detail)
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        let e = OpError::from_status(503, Some("no_leader"));
        assert_eq!((e.class, e.outcome), (ErrorClass::NoLeader, Outcome::Fail));
        let e = OpError::from_status(504, Some("timeout"));
        assert_eq!(
            (e.class, e.outcome),
            (ErrorClass::Http5xx, Outcome::Unknown)
        );
        let e = OpError::from_status(502, Some("forward_failed"));
        assert_eq!(e.outcome, Outcome::Fail);
        let e = OpError::from_status(502, Some("forward_unknown"));
        assert_eq!(e.outcome, Outcome::Unknown);
        let e = OpError::from_status(413, Some("too_large"));
        assert_eq!((e.class, e.outcome), (ErrorClass::Http4xx, Outcome::Fail));
        let e = OpError::from_status(500, None);
        assert_eq!(e.outcome, Outcome::Unknown);
        // A node shutting down may have proposed the write before it answered.
        let e = OpError::from_status(503, Some("shutting_down"));
        assert_eq!(
            (e.class, e.outcome),
            (ErrorClass::Http5xx, Outcome::Unknown)
        );
    }
}
