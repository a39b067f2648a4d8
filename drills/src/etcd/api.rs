//! A typed client of the few etcd v3 gateway calls the drill needs on a member's client URL:
//! `/v3/maintenance/status` and `/v3/cluster/member/{list,add,remove}`. Every call has its own
//! timeout, so a paused member cannot stall its caller.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// A gateway call that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdApiError {
    /// The member could not be reached or did not answer in time.
    #[error("{call}: {detail}")]
    Unreachable {
        /// What was asked.
        call: String,
        /// Why it failed.
        detail: String,
    },
    /// The member answered with an error.
    #[error("{call}: HTTP {status}: {message}")]
    Refused {
        /// What was asked.
        call: String,
        /// The HTTP status.
        status: u16,
        /// etcd's error message.
        message: String,
    },
}

/// A `uint64` the gateway writes as a JSON string (or leaves out when 0).
fn u64_text<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    match Either::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// The header of every answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResponseHeader {
    /// The answering member's id.
    #[serde(default, deserialize_with = "u64_text")]
    pub member_id: u64,
    /// Its current Raft term.
    #[serde(default, deserialize_with = "u64_text")]
    pub raft_term: u64,
}

/// Answer of `/v3/maintenance/status` (etcd 3.4's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MemberStatus {
    /// Header, with the member's own id.
    #[serde(default)]
    pub header: ResponseHeader,
    /// The leader's member id as this member knows it; 0 for none.
    #[serde(default, deserialize_with = "u64_text")]
    pub leader: u64,
    /// Raft term.
    #[serde(default, rename = "raftTerm", deserialize_with = "u64_text")]
    pub raft_term: u64,
    /// The member's committed index (3.4 reports `CommittedIndex()` here).
    #[serde(default, rename = "raftIndex", deserialize_with = "u64_text")]
    pub raft_index: u64,
    /// The member's applied index.
    #[serde(default, rename = "raftAppliedIndex", deserialize_with = "u64_text")]
    pub raft_applied_index: u64,
    /// Whether the member is a learner.
    #[serde(default, rename = "isLearner")]
    pub is_learner: bool,
}

/// One entry of the member list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// Member id.
    #[serde(default, rename = "ID", deserialize_with = "u64_text")]
    pub id: u64,
    /// Its `--name`; empty until an added member has started.
    #[serde(default)]
    pub name: String,
    /// Advertised peer URLs.
    #[serde(default, rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    /// Advertised client URLs; empty until it has started.
    #[serde(default, rename = "clientURLs")]
    pub client_urls: Vec<String>,
    /// A non-voting member.
    #[serde(default, rename = "isLearner")]
    pub is_learner: bool,
}

#[derive(Debug, Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
struct MemberAdded {
    member: Member,
}

#[derive(Serialize)]
struct AddBody<'a> {
    #[serde(rename = "peerURLs")]
    peer_urls: &'a [String],
}

#[derive(Serialize)]
struct RemoveBody {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EtcdApi {
    http: reqwest::Client,
}

impl Default for EtcdApi {
    fn default() -> Self {
        Self::new()
    }
}

impl EtcdApi {
    /// A client with its own connection pool.
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// `POST {base}/v3/maintenance/status`.
    pub async fn status(
        &self,
        base: &str,
        timeout: Duration,
    ) -> Result<MemberStatus, EtcdApiError> {
        self.call(base, "maintenance/status", &serde_json::json!({}), timeout)
            .await
    }

    /// `POST {base}/v3/cluster/member/list`.
    pub async fn members(
        &self,
        base: &str,
        timeout: Duration,
    ) -> Result<Vec<Member>, EtcdApiError> {
        let list: MemberList = self
            .call(base, "cluster/member/list", &serde_json::json!({}), timeout)
            .await?;
        Ok(list.members)
    }

    /// `POST {base}/v3/cluster/member/add`: a voter advertised at `peer_urls`; its new id.
    pub async fn add_member(
        &self,
        base: &str,
        peer_urls: &[String],
        timeout: Duration,
    ) -> Result<Member, EtcdApiError> {
        let added: MemberAdded = self
            .call(base, "cluster/member/add", &AddBody { peer_urls }, timeout)
            .await?;
        Ok(added.member)
    }

    /// `POST {base}/v3/cluster/member/remove`.
    pub async fn remove_member(
        &self,
        base: &str,
        id: u64,
        timeout: Duration,
    ) -> Result<(), EtcdApiError> {
        let body = RemoveBody { id: id.to_string() };
        self.call::<serde_json::Value, _>(base, "cluster/member/remove", &body, timeout)
            .await
            .map(|_| ())
    }

    async fn call<T: serde::de::DeserializeOwned, B: Serialize>(
        &self,
        base: &str,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, EtcdApiError> {
        let call = format!("POST {base}/v3/{path}");
        let unreachable = |e: reqwest::Error| EtcdApiError::Unreachable {
            call: call.clone(),
            detail: e.to_string(),
        };
        let resp = self
            .http
            .post(format!("{base}/v3/{path}"))
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| EtcdApiError::Unreachable {
                call: call.clone(),
                detail: format!("undecodable answer: {e}"),
            })
        } else {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            Err(EtcdApiError::Refused {
                call: call.clone(),
                status: status.as_u16(),
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_members_decode_as_etcd_3_4_writes_them() {
        // Answers of etcd 3.4.23, copied from a running member.
        let s: MemberStatus = serde_json::from_str(
            r#"{"header":{"cluster_id":"6479596401675643663","member_id":"11993771972629825455",
            "revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"28672",
            "leader":"4730542548402062390","raftIndex":"8","raftTerm":"2",
            "raftAppliedIndex":"8","dbSizeInUse":"16384"}"#,
        )
        .unwrap();
        assert_eq!(s.header.member_id, 11993771972629825455);
        assert_eq!(
            (s.leader, s.raft_term, s.raft_index),
            (4730542548402062390, 2, 8)
        );
        assert!(!s.is_learner);
        let l: MemberList = serde_json::from_str(
            r#"{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},"members":[
            {"ID":"4730542548402062390","name":"n2","peerURLs":["http://127.0.0.1:24912"],
            "clientURLs":["http://127.0.0.1:24712"]},
            {"ID":"16976841152084444440","peerURLs":["http://127.0.0.1:24913"],"isLearner":true}]}"#,
        )
        .unwrap();
        assert_eq!(l.members[0].name, "n2");
        assert_eq!(l.members[1].id, 16976841152084444440);
        assert!(l.members[1].is_learner && l.members[1].name.is_empty());
    }

    #[test]
    fn member_calls_are_encoded_with_string_ids() {
        let body = serde_json::to_value(RemoveBody { id: 42.to_string() }).unwrap();
        assert_eq!(body, serde_json::json!({"ID": "42"}));
        let urls = vec!["http://127.0.0.1:1".to_string()];
        let body = serde_json::to_value(AddBody { peer_urls: &urls }).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"peerURLs": ["http://127.0.0.1:1"]})
        );
    }
}
