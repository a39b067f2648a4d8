//! Client-side failover, written once for every adapter: an adapter offers one try of each
//! call at one endpoint ([`Attempts`]), and its [`Target`] calls run those tries through its
//! [`Balancer`] (see [`Balancer::with_failover`] for the policy and why).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use raftdrill_wire::Consistency;

use super::{CasResult, Target, TargetError};
use crate::balancer::Balancer;
use crate::outcome::OpError;

/// How long an endpoint that refused, timed out or had no leader is skipped.
const COOLDOWN: Duration = Duration::from_secs(1);

/// An adapter's endpoints, and what its failover keeps about them. Cheap to clone: the
/// clones share which endpoints to skip.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Base URLs, `http://HOST:PORT` without a trailing slash.
    pub urls: Vec<String>,
    /// Which endpoints to skip for now.
    balancer: Arc<Balancer>,
    /// The budget of one operation, retries included.
    budget: Duration,
}

impl Endpoints {
    /// `urls`, checked (not empty, each `http://HOST:PORT`), each operation on them bounded
    /// by `budget`.
    pub fn new(urls: &[String], budget: Duration) -> Result<Self, TargetError> {
        if urls.is_empty() {
            return Err(TargetError::NoEndpoints);
        }
        let urls = urls
            .iter()
            .map(|e| {
                let e = e.trim().trim_end_matches('/');
                if e.starts_with("http://") && e.len() > "http://".len() {
                    Ok(e.to_string())
                } else {
                    Err(TargetError::BadEndpoint(e.to_string()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            balancer: Arc::new(Balancer::new(urls.len(), COOLDOWN)),
            urls,
            budget,
        })
    }

    /// Runs `call` on the endpoint picked for `node`, failing a definite failure over to
    /// the others within the budget (see [`Balancer::with_failover`]).
    async fn with_failover<R, F, Fut>(&self, node: usize, call: F) -> Result<R, OpError>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<R, OpError>>,
    {
        self.balancer.with_failover(node, self.budget, call).await
    }
}

/// One try of each call at endpoint `node`: what a store's adapter writes. Every type that
/// has them is a [`Target`].
pub trait Attempts: Send + Sync + 'static {
    /// The endpoints the tries go to.
    fn endpoints(&self) -> &Endpoints;

    /// Why no endpoint could serve reads of `consistency` (refused at once, not retried).
    fn refuses(&self, _consistency: Consistency) -> Option<OpError> {
        None
    }

    /// [`Target::get`] at `node`.
    fn get_once(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> impl Future<Output = Result<Option<String>, OpError>> + Send;

    /// [`Target::get_session`] at `node`.
    fn get_session_once(
        &self,
        node: usize,
        key: &str,
        min_index: u64,
    ) -> impl Future<Output = Result<(Option<String>, Option<u64>), OpError>> + Send;

    /// [`Target::put`] at `node`.
    fn put_once(
        &self,
        node: usize,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<Option<u64>, OpError>> + Send;

    /// [`Target::cas`] at `node`.
    fn cas_once(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> impl Future<Output = Result<CasResult, OpError>> + Send;
}

impl<A: Attempts> Target for A {
    fn nodes(&self) -> usize {
        self.endpoints().urls.len()
    }

    async fn get(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<String>, OpError> {
        if let Some(refused) = self.refuses(consistency) {
            return Err(refused);
        }
        self.endpoints()
            .with_failover(node, |n| self.get_once(n, key, consistency))
            .await
    }

    async fn get_session(
        &self,
        node: usize,
        key: &str,
        min_index: u64,
    ) -> Result<(Option<String>, Option<u64>), OpError> {
        if let Some(refused) = self.refuses(Consistency::Session) {
            return Err(refused);
        }
        self.endpoints()
            .with_failover(node, |n| self.get_session_once(n, key, min_index))
            .await
    }

    async fn put(&self, node: usize, key: &str, value: &str) -> Result<Option<u64>, OpError> {
        self.endpoints()
            .with_failover(node, |n| self.put_once(n, key, value))
            .await
    }

    async fn cas(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> Result<CasResult, OpError> {
        self.endpoints()
            .with_failover(node, |n| self.cas_once(n, key, expect, value))
            .await
    }
}
