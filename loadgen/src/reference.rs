//! The [`Target`] adapter for the reference cluster's HTTP API, on a pooled keep-alive
//! reqwest client.

use std::time::Duration;

use raftdrill_wire::{CasBody, CasResponse, Consistency, ErrorBody, GetResponse, PutBody};

use crate::balancer::Balancer;
use crate::outcome::{ErrorClass, OpError};
use crate::target::{CasResult, Target};

/// The reference cluster: a list of node base URLs such as `http://127.0.0.1:7001`.
#[derive(Debug, Clone)]
pub struct ReferenceCluster {
    client: reqwest::Client,
    /// Base URLs without a trailing slash.
    endpoints: Vec<String>,
    /// Which endpoints to skip for now.
    balancer: std::sync::Arc<Balancer>,
    /// The budget of one operation, retries included.
    timeout: Duration,
}

/// How long an endpoint that refused, timed out or had no leader is skipped.
pub(crate) const COOLDOWN: Duration = Duration::from_secs(1);

/// The adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// No endpoint was given.
    #[error("no endpoints given")]
    NoEndpoints,
    /// An endpoint is not an http URL.
    #[error("bad endpoint {0:?}: expected http://HOST:PORT")]
    BadEndpoint(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl ReferenceCluster {
    /// An adapter for `endpoints`, each request bounded by `timeout`. Idle connections are kept
    /// per node, so a pool of workers reuses them.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Self, TargetError> {
        let endpoints = parse_endpoints(endpoints)?;
        let client = http_client(timeout)?;
        let balancer = std::sync::Arc::new(Balancer::new(endpoints.len(), COOLDOWN));
        Ok(Self {
            client,
            endpoints,
            balancer,
            timeout,
        })
    }

    /// Runs `call` with failover (see [`Balancer::with_failover`]) within the timeout.
    async fn with_failover<R, F, Fut>(&self, node: usize, call: F) -> Result<R, OpError>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<R, OpError>>,
    {
        self.balancer.with_failover(node, self.timeout, call).await
    }

    fn url(&self, node: usize, key: &str) -> String {
        format!(
            "{}/kv/{}",
            self.endpoints[node % self.endpoints.len()],
            encode_key(key)
        )
    }
}

/// Checks that `endpoints` is not empty and holds `http://HOST:PORT` URLs; returns them
/// without trailing slashes.
pub(crate) fn parse_endpoints(endpoints: &[String]) -> Result<Vec<String>, TargetError> {
    if endpoints.is_empty() {
        return Err(TargetError::NoEndpoints);
    }
    endpoints
        .iter()
        .map(|e| {
            let e = e.trim().trim_end_matches('/');
            if e.starts_with("http://") && e.len() > "http://".len() {
                Ok(e.to_string())
            } else {
                Err(TargetError::BadEndpoint(e.to_string()))
            }
        })
        .collect()
}

/// The pooled keep-alive client of an adapter, every request bounded by `timeout`. Idle
/// connections are kept per node, so a pool of workers reuses them.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, TargetError> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()?)
}

/// Percent-encode the characters of a key that cannot appear in a path segment.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turn a response into its JSON body or the classified error.
async fn answer<T: serde::de::DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Result<T, (u16, Option<String>)>, OpError> {
    let response = sent.map_err(|e| OpError::from_reqwest(&e))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| OpError::from_reqwest(&e))?;
    if (200..300).contains(&status) {
        serde_json::from_slice(&body)
            .map(Ok)
            .map_err(|e| OpError::unknown(ErrorClass::Reset, format!("undecodable answer: {e}")))
    } else {
        let code = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.error);
        Ok(Err((status, code)))
    }
}

impl Target for ReferenceCluster {
    fn nodes(&self) -> usize {
        self.endpoints.len()
    }

    async fn get(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<String>, OpError> {
        self.with_failover(node, |n| self.get_once(n, key, consistency))
            .await
    }

    async fn put(&self, node: usize, key: &str, value: &str) -> Result<Option<u64>, OpError> {
        self.with_failover(node, |n| self.put_once(n, key, value))
            .await
    }

    async fn cas(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> Result<CasResult, OpError> {
        self.with_failover(node, |n| self.cas_once(n, key, expect, value))
            .await
    }
}

impl ReferenceCluster {
    async fn get_once(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<String>, OpError> {
        let sent = self
            .client
            .get(format!(
                "{}?consistency={}",
                self.url(node, key),
                consistency.as_str()
            ))
            .send()
            .await;
        match answer::<GetResponse>(sent).await? {
            Ok(found) => Ok(Some(found.value)),
            Err((404, Some(code))) if code == raftdrill_wire::error_code::NOT_FOUND => Ok(None),
            Err((status, code)) => Err(OpError::from_status(status, code.as_deref())),
        }
    }

    async fn put_once(&self, node: usize, key: &str, value: &str) -> Result<Option<u64>, OpError> {
        let body = PutBody {
            value: value.to_string(),
        };
        let sent = self
            .client
            .put(self.url(node, key))
            .json(&body)
            .send()
            .await;
        match answer::<raftdrill_wire::WriteResponse>(sent).await? {
            Ok(w) => Ok(Some(w.index)),
            Err((status, code)) => Err(OpError::from_status(status, code.as_deref())),
        }
    }

    async fn cas_once(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> Result<CasResult, OpError> {
        let body = CasBody {
            expect: expect.map(str::to_string),
            value: value.to_string(),
        };
        let url = format!("{}/cas", self.url(node, key));
        let sent = self.client.post(url).json(&body).send().await;
        match answer::<CasResponse>(sent).await? {
            Ok(r) => Ok(CasResult {
                swapped: r.ok,
                current: r.current,
                index: Some(r.index),
            }),
            Err((status, code)) => Err(OpError::from_status(status, code.as_deref())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        let t = Duration::from_secs(1);
        assert!(matches!(
            ReferenceCluster::new(&[], t),
            Err(TargetError::NoEndpoints)
        ));
        assert!(matches!(
            ReferenceCluster::new(&["localhost:1".into()], t),
            Err(TargetError::BadEndpoint(_))
        ));
        let c = ReferenceCluster::new(&["http://127.0.0.1:1/".into()], t).unwrap();
        assert_eq!(c.url(3, "a b"), "http://127.0.0.1:1/kv/a%20b");
    }
}
