//! The JSON shapes of etcd's v3 gateway (grpc-gateway over etcd's gRPC services) that raftdrill
//! uses, as etcd 3.4 writes and accepts them: the KV calls of the load's adapter, and the
//! maintenance status and member calls of the drill (`drills::etcd::api`).
//!
//! Three habits of the gateway shape these types: keys and values are base64 (protobuf
//! `bytes`), 64-bit integers are JSON strings (`"revision":"5"`), and fields at their zero
//! value are left out (`succeeded` of a failed txn, `kvs` of an empty range, `value` of an
//! empty value), so every field of an answer has a default.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};

/// Base64 of a key or value, as the gateway wants `bytes` fields.
pub(crate) fn b64(bytes: &str) -> String {
    STANDARD.encode(bytes.as_bytes())
}

/// The text of a base64 `bytes` field; `None` when it is not base64. Values that are not UTF-8
/// (never written by raftdrill) are decoded lossily, so they still compare unequal.
pub(crate) fn unb64(text: &str) -> Option<String> {
    let bytes = STANDARD.decode(text).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// A `uint64`/`int64` field: a JSON string as the gateway writes it, or a number.
fn u64_field<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
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

/// `POST /v3/kv/put`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PutRequest {
    /// Base64 key.
    pub key: String,
    /// Base64 value.
    pub value: String,
}

/// `POST /v3/kv/range` for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RangeRequest {
    /// Base64 key.
    pub key: String,
    /// Served from the member's local state without a ReadIndex round (etcd's stale read).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serializable: bool,
}

/// One comparison of a txn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Compare {
    /// Always `EQUAL` here.
    pub result: String,
    /// `VALUE` (compare the value) or `CREATE` (compare the create revision).
    pub target: String,
    /// Base64 key.
    pub key: String,
    /// Base64 value, for `VALUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For `CREATE`: `"0"` means the key does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_revision: Option<String>,
}

/// One operation of a txn branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RequestOp {
    /// A put.
    #[serde(rename = "request_put")]
    Put(PutRequest),
    /// A read.
    #[serde(rename = "request_range")]
    Range(RangeRequest),
}

/// `POST /v3/kv/txn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxnRequest {
    /// All must hold for `success` to run; otherwise `failure` runs.
    pub compare: Vec<Compare>,
    /// Run when every comparison holds.
    pub success: Vec<RequestOp>,
    /// Run otherwise.
    pub failure: Vec<RequestOp>,
}

impl TxnRequest {
    /// Compare-and-swap of `key` from `expect` (`None`: absent) to `value`, reading the key in
    /// the failure branch so a failed swap reports what the key holds.
    pub(crate) fn cas(key: &str, expect: Option<&str>, value: &str) -> Self {
        let key = b64(key);
        let compare = match expect {
            Some(v) => Compare {
                result: "EQUAL".into(),
                target: "VALUE".into(),
                key: key.clone(),
                value: Some(b64(v)),
                create_revision: None,
            },
            // A key that does not exist has create revision 0 (etcd's clientv3 idiom
            // `Compare(CreateRevision(k), "=", 0)`).
            None => Compare {
                result: "EQUAL".into(),
                target: "CREATE".into(),
                key: key.clone(),
                value: None,
                create_revision: Some("0".into()),
            },
        };
        Self {
            compare: vec![compare],
            success: vec![RequestOp::Put(PutRequest {
                key: key.clone(),
                value: b64(value),
            })],
            failure: vec![RequestOp::Range(RangeRequest {
                key,
                serializable: false,
            })],
        }
    }
}

/// The response header; `revision` is the store revision after the request (for a write, the
/// revision it created: its commit position).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    /// Store revision.
    #[serde(default, deserialize_with = "u64_field")]
    pub revision: u64,
}

/// One key-value pair of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyValue {
    /// Base64 key.
    #[serde(default)]
    pub key: String,
    /// Base64 value (left out when empty).
    #[serde(default)]
    pub value: String,
}

/// Answer of a put.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PutResponse {
    /// Its header.
    #[serde(default)]
    pub header: Header,
}

/// Answer of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RangeResponse {
    /// Its header.
    #[serde(default)]
    pub header: Header,
    /// The pairs found (left out when none).
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

/// One answer in a txn's `responses`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResponseOp {
    /// Present for a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_range: Option<RangeResponse>,
    /// Present for a put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_put: Option<PutResponse>,
}

/// Answer of a txn.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxnResponse {
    /// Its header.
    #[serde(default)]
    pub header: Header,
    /// Whether the comparisons held (left out when false).
    #[serde(default)]
    pub succeeded: bool,
    /// One answer per operation of the branch that ran.
    #[serde(default)]
    pub responses: Vec<ResponseOp>,
}

/// The body of a gateway error: the gRPC status as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayError {
    /// The gRPC message, e.g. `etcdserver: request timed out`.
    #[serde(default)]
    pub error: String,
    /// The gRPC status code (14 = Unavailable).
    #[serde(default)]
    pub code: i32,
}

/// The header of every answer, as the member calls read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResponseHeader {
    /// The answering member's id.
    #[serde(default, deserialize_with = "u64_field")]
    pub member_id: u64,
    /// Its current Raft term.
    #[serde(default, deserialize_with = "u64_field")]
    pub raft_term: u64,
}

/// Answer of `/v3/maintenance/status` (etcd 3.4's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MemberStatus {
    /// Header, with the member's own id.
    #[serde(default)]
    pub header: ResponseHeader,
    /// The leader's member id as this member knows it; 0 for none.
    #[serde(default, deserialize_with = "u64_field")]
    pub leader: u64,
    /// Raft term.
    #[serde(default, rename = "raftTerm", deserialize_with = "u64_field")]
    pub raft_term: u64,
    /// The member's committed index (3.4 reports `CommittedIndex()` here).
    #[serde(default, rename = "raftIndex", deserialize_with = "u64_field")]
    pub raft_index: u64,
    /// The member's applied index.
    #[serde(default, rename = "raftAppliedIndex", deserialize_with = "u64_field")]
    pub raft_applied_index: u64,
    /// Whether the member is a learner.
    #[serde(default, rename = "isLearner")]
    pub is_learner: bool,
}

/// One entry of the member list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// Member id.
    #[serde(default, rename = "ID", deserialize_with = "u64_field")]
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

/// Answer of `/v3/cluster/member/list`.
#[derive(Debug, Deserialize)]
pub struct MemberList {
    /// Every member, learners included.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// Answer of `/v3/cluster/member/add`.
#[derive(Debug, Deserialize)]
pub struct MemberAdded {
    /// The new member, with its id.
    pub member: Member,
}

/// `POST /v3/cluster/member/add`: a voter advertised at `peer_urls`.
#[derive(Debug, Serialize)]
pub struct MemberAddRequest<'a> {
    /// Its peer URLs.
    #[serde(rename = "peerURLs")]
    pub peer_urls: &'a [String],
}

/// `POST /v3/cluster/member/remove`.
#[derive(Debug, Serialize)]
pub struct MemberRemoveRequest {
    /// The member's id, as a string (a `uint64`).
    #[serde(rename = "ID")]
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        assert_eq!(b64("foo"), "Zm9v");
        assert_eq!(unb64("Zm9v").as_deref(), Some("foo"));
        assert_eq!(unb64("").as_deref(), Some(""));
        assert_eq!(unb64("%%%"), None);
    }

    #[test]
    fn a_cas_on_absent_compares_the_create_revision_and_reads_on_failure() {
        let json = serde_json::to_value(TxnRequest::cas("k", None, "v")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "compare": [{"result": "EQUAL", "target": "CREATE", "key": "aw==", "create_revision": "0"}],
                "success": [{"request_put": {"key": "aw==", "value": "dg=="}}],
                "failure": [{"request_range": {"key": "aw=="}}],
            })
        );
        let json = serde_json::to_value(TxnRequest::cas("k", Some("old"), "v")).unwrap();
        assert_eq!(
            json["compare"][0],
            serde_json::json!({"result": "EQUAL", "target": "VALUE", "key": "aw==", "value": "b2xk"})
        );
    }

    #[test]
    fn answers_decode_with_string_integers_and_missing_zero_fields() {
        // Copied from etcd 3.4.23's answers to a failed txn and an empty range.
        let txn: TxnResponse = serde_json::from_str(
            r#"{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"2"},
                "responses":[{"response_range":{"header":{"revision":"3"},
                "kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}],"count":"1"}}]}"#,
        )
        .unwrap();
        assert!(!txn.succeeded);
        assert_eq!(txn.header.revision, 3);
        let kv = &txn.responses[0].response_range.as_ref().unwrap().kvs[0];
        assert_eq!(unb64(&kv.value).as_deref(), Some("baz"));
        let empty: RangeResponse =
            serde_json::from_str(r#"{"header":{"revision":"2","raft_term":"2"}}"#).unwrap();
        assert!(empty.kvs.is_empty());
        let stale = RangeRequest {
            key: b64("k"),
            serializable: true,
        };
        assert_eq!(
            serde_json::to_value(stale).unwrap(),
            serde_json::json!({"key": "aw==", "serializable": true})
        );
    }

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
        let body = serde_json::to_value(MemberRemoveRequest { id: 42.to_string() }).unwrap();
        assert_eq!(body, serde_json::json!({"ID": "42"}));
        let urls = vec!["http://127.0.0.1:1".to_string()];
        let body = serde_json::to_value(MemberAddRequest { peer_urls: &urls }).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"peerURLs": ["http://127.0.0.1:1"]})
        );
    }
}
