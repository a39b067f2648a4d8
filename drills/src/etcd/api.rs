//! A typed client of the few etcd v3 gateway calls the drill needs on a member's client URL:
//! `/v3/maintenance/status` and `/v3/cluster/member/{list,add,remove}`. Every call has its own
//! timeout, so a paused member cannot stall its caller. The JSON shapes and the HTTP call are
//! the load adapter's (`loadgen::etcd::wire`, `loadgen::etcd::gateway`): one etcd client.

use std::time::Duration;

use loadgen::etcd::gateway::{self, CallError};
pub use loadgen::etcd::wire::{Member, MemberStatus, ResponseHeader};
use loadgen::etcd::wire::{MemberAddRequest, MemberAdded, MemberList, MemberRemoveRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
            http: gateway::client(None).expect("a plain HTTP client builds"),
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
        let body = MemberAddRequest { peer_urls };
        let added: MemberAdded = self
            .call(base, "cluster/member/add", &body, timeout)
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
        let body = MemberRemoveRequest { id: id.to_string() };
        self.call::<serde_json::Value, _>(base, "cluster/member/remove", &body, timeout)
            .await
            .map(|_| ())
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        base: &str,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, EtcdApiError> {
        let url = gateway::url(base, path);
        let call = format!("POST {url}");
        gateway::post(&self.http, &url, body, Some(timeout))
            .await
            .map_err(|e| match e {
                CallError::Transport(e) => EtcdApiError::Unreachable {
                    call,
                    detail: e.to_string(),
                },
                CallError::Undecodable(e) => EtcdApiError::Unreachable {
                    call,
                    detail: format!("undecodable answer: {e}"),
                },
                CallError::Refused { status, .. } => EtcdApiError::Refused {
                    message: e.message().unwrap_or_default(),
                    call,
                    status,
                },
            })
    }
}
