//! A typed client of a reference node's admin API (`/status`, `/admin/members`,
//! `/admin/peers/{id}`), built on the wire types, for the poller, the fault executor and the
//! local cluster. Every call has its own timeout, so a paused node cannot stall its caller.

use std::time::Duration;

use raftdrill_wire::{AddMember, AdminResponse, ErrorBody, SetPeer, Status};
use target_cluster::typ::NodeId;

/// An admin call that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// The node could not be reached or did not answer in time.
    #[error("{call}: {detail}")]
    Unreachable {
        /// What was asked.
        call: String,
        /// Why it failed.
        detail: String,
    },
    /// The node answered with an error.
    #[error("{call}: HTTP {status} {}", body.as_ref().map_or("-".to_string(), |b| b.error.clone()))]
    Refused {
        /// What was asked.
        call: String,
        /// The HTTP status.
        status: u16,
        /// The JSON error body, when there was one.
        body: Option<ErrorBody>,
    },
}

impl AdminError {
    /// Whether the node answered that it is not (or no longer) able to serve the call now
    /// (503), so another node or a later try may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AdminError::Refused { status: 503, .. })
    }
}

/// The admin client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
}

impl Default for AdminClient {
    fn default() -> Self {
        Self::new()
    }
}

impl AdminClient {
    /// A client with its own connection pool.
    pub fn new() -> Self {
        Self::build(reqwest::header::HeaderMap::new())
    }

    /// A client that sends the run's token with every call (nodes on hosts require it).
    pub fn with_token(token: &str) -> Result<Self, target_cluster::api::BadToken> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            target_cluster::api::bearer(token)?,
        );
        Ok(Self::build(headers))
    }

    fn build(headers: reqwest::header::HeaderMap) -> Self {
        Self {
            http: reqwest::Client::builder()
                .default_headers(headers)
                .tcp_nodelay(true)
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// `GET {base}/status`, within `timeout`.
    pub async fn status(&self, base: &str, timeout: Duration) -> Result<Status, AdminError> {
        let call = format!("GET {base}/status");
        let req = self.http.get(format!("{base}/status")).timeout(timeout);
        self.send(call, req).await
    }

    /// `POST {base}/admin/members`: add `id` at `addr`, promoted to voter when `voter`.
    pub async fn add_member(
        &self,
        base: &str,
        member: &AddMember,
        timeout: Duration,
    ) -> Result<AdminResponse, AdminError> {
        let call = format!("POST {base}/admin/members (node {})", member.id);
        let req = self
            .http
            .post(format!("{base}/admin/members"))
            .json(member)
            .timeout(timeout);
        self.send(call, req).await
    }

    /// `DELETE {base}/admin/members/{id}`.
    pub async fn remove_member(
        &self,
        base: &str,
        id: NodeId,
        timeout: Duration,
    ) -> Result<AdminResponse, AdminError> {
        let call = format!("DELETE {base}/admin/members/{id}");
        let req = self
            .http
            .delete(format!("{base}/admin/members/{id}"))
            .timeout(timeout);
        self.send(call, req).await
    }

    /// `PUT {base}/admin/peers/{id}`: where the node sends its traffic for peer `id`.
    pub async fn set_peer(
        &self,
        base: &str,
        id: NodeId,
        addr: &str,
        timeout: Duration,
    ) -> Result<(), AdminError> {
        let call = format!("PUT {base}/admin/peers/{id}");
        let body = SetPeer {
            addr: addr.to_string(),
        };
        let req = self
            .http
            .put(format!("{base}/admin/peers/{id}"))
            .json(&body)
            .timeout(timeout);
        self.send::<serde_json::Value>(call, req).await.map(|_| ())
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        call: String,
        req: reqwest::RequestBuilder,
    ) -> Result<T, AdminError> {
        let unreachable = |call: &str, e: reqwest::Error| AdminError::Unreachable {
            call: call.to_string(),
            detail: e.to_string(),
        };
        let resp = req.send().await.map_err(|e| unreachable(&call, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| unreachable(&call, e))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| AdminError::Unreachable {
                call,
                detail: format!("undecodable answer: {e}"),
            })
        } else {
            Err(AdminError::Refused {
                call,
                status: status.as_u16(),
                body: serde_json::from_slice(&bytes).ok(),
            })
        }
    }
}
