//! The [`Target`](crate::target::Target) adapter for etcd, over its v3 JSON gateway (`POST /v3/kv/...` on each
//! member's client URL; etcd 3.4 serves it at `/v3`, 3.3 only at `/v3beta`).
//!
//! - get: `range` of one key; linearizable by default (ReadIndex through the leader),
//!   [`Consistency::Stale`] as `serializable: true` (the member's local state).
//!   [`Consistency::Lease`] has no etcd equivalent: see [`EtcdCluster::supports`].
//! - put: `put`; its commit position is the response's `header.revision` (the store revision
//!   the write created, which grows with every write in commit order).
//! - cas: a `txn` comparing the value (or `create_revision == 0` for "absent") whose success
//!   branch puts and whose failure branch reads the key, so a failed swap reports the value.
//!
//! Failover is the reference adapter's (`Balancer`): a definite failure is retried on
//! another member until the operation's timeout is spent; an unknown outcome never is. How
//! etcd's errors end an operation, and why, is in `errors` (the table in its module docs).
//!
//! # Layout
//! - this file: [`EtcdCluster`] and its calls
//! - [`wire`]: the gateway's JSON shapes and base64
//! - [`gateway`]: one call over HTTP (shared with the drill's member calls)
//! - `errors`: gateway errors to ok / fail / unknown, with the sources

mod errors;
#[cfg(test)]
mod fake;
pub mod gateway;
#[cfg(test)]
mod tests;
pub mod wire;

use std::time::Duration;

use raftdrill_wire::Consistency;

use crate::outcome::{ErrorClass, OpError};
use crate::target::{Attempts, CasResult, Endpoints, TargetError};

use errors::{OpKind, classify};
use gateway::CallError;
use wire::{PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse};

/// An etcd cluster: the client URLs of its members, such as `http://127.0.0.1:2379`.
#[derive(Debug, Clone)]
pub struct EtcdCluster {
    client: reqwest::Client,
    /// The members' client URLs.
    endpoints: Endpoints,
}

impl EtcdCluster {
    /// An adapter for the members at `endpoints`, each operation bounded by `timeout`.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Self, TargetError> {
        Ok(Self {
            client: gateway::client(Some(timeout))?,
            endpoints: Endpoints::new(endpoints, timeout)?,
        })
    }

    /// Whether etcd can serve reads of `consistency`: linearizable and stale (serializable)
    /// yes; lease reads no (etcd has no leader-lease read; its linearizable read always does a
    /// ReadIndex round); session reads no (a serializable range cannot wait for a revision),
    /// so a scenario asking for them should be refused before it starts.
    pub fn supports(consistency: Consistency) -> bool {
        match consistency {
            Consistency::Linearizable | Consistency::Stale => true,
            Consistency::Lease | Consistency::Session => false,
        }
    }

    /// Posts `body` to `/v3/kv/{call}` on member `node` and decodes the answer.
    async fn post<B, T>(
        &self,
        node: usize,
        call: &str,
        body: &B,
        kind: OpKind,
    ) -> Result<T, OpError>
    where
        B: serde::Serialize + ?Sized,
        T: serde::de::DeserializeOwned,
    {
        let urls = &self.endpoints.urls;
        let url = format!("{}/v3/kv/{call}", urls[node % urls.len()]);
        gateway::post(&self.client, &url, body, None)
            .await
            .map_err(|e| match e {
                CallError::Transport(e) => OpError::from_reqwest(&e),
                CallError::Undecodable(e) => {
                    OpError::unknown(ErrorClass::Reset, format!("undecodable answer: {e}"))
                }
                CallError::Refused { status, body } => classify(status, &body, kind),
            })
    }
}

impl Attempts for EtcdCluster {
    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Refused here, not retried: no member could serve it (see [`EtcdCluster::supports`]).
    fn refuses(&self, consistency: Consistency) -> Option<OpError> {
        (!Self::supports(consistency)).then(|| {
            OpError::fail(
                ErrorClass::Http4xx,
                format!("etcd has no {} reads", consistency.as_str()),
            )
        })
    }

    async fn get_once(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<String>, OpError> {
        let body = RangeRequest {
            key: wire::b64(key),
            serializable: consistency == Consistency::Stale,
        };
        let r: RangeResponse = self.post(node, "range", &body, OpKind::Read).await?;
        first_value(&r)
    }

    /// Never tried: `refuses` turns session reads away first (a serializable range cannot
    /// wait for a revision).
    async fn get_session_once(
        &self,
        _node: usize,
        _key: &str,
        _min_index: u64,
    ) -> Result<(Option<String>, Option<u64>), OpError> {
        Err(OpError::fail(
            ErrorClass::Http4xx,
            "etcd has no session reads",
        ))
    }

    async fn put_once(&self, node: usize, key: &str, value: &str) -> Result<Option<u64>, OpError> {
        let body = PutRequest {
            key: wire::b64(key),
            value: wire::b64(value),
        };
        let r: PutResponse = self.post(node, "put", &body, OpKind::Write).await?;
        Ok(Some(r.header.revision))
    }

    async fn cas_once(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> Result<CasResult, OpError> {
        let body = TxnRequest::cas(key, expect, value);
        let r: TxnResponse = self.post(node, "txn", &body, OpKind::Write).await?;
        let current = if r.succeeded {
            Some(value.to_string())
        } else {
            // The failure branch is one range of the key.
            let range = r
                .responses
                .first()
                .and_then(|op| op.response_range.as_ref());
            match range {
                Some(range) => first_value(range)?,
                None => {
                    // The txn ran (so it committed) but its answer is not the one asked for.
                    return Err(OpError::unknown(
                        ErrorClass::Reset,
                        "txn answer without the failure branch's range",
                    ));
                }
            }
        };
        Ok(CasResult {
            swapped: r.succeeded,
            current,
            index: Some(r.header.revision),
        })
    }
}

/// The value of the first pair of a range, `None` when the key does not exist.
fn first_value(r: &RangeResponse) -> Result<Option<String>, OpError> {
    match r.kvs.first() {
        None => Ok(None),
        Some(kv) => wire::unb64(&kv.value).map(Some).ok_or_else(|| {
            OpError::unknown(ErrorClass::Reset, "value in the answer is not base64")
        }),
    }
}
