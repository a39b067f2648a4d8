//! Client-side failover, written once for every adapter: an adapter offers one try of each
//! call at one endpoint ([`Attempts`]), and its [`Target`] calls run those tries through its
//! [`Balancer`] (see [`Balancer::with_failover`] for the policy and why).

use std::future::Future;
use std::time::Duration;

use raftdrill_wire::Consistency;

use super::{CasResult, Target};
use crate::balancer::Balancer;
use crate::outcome::OpError;

/// How long an endpoint that refused, timed out or had no leader is skipped.
pub(crate) const COOLDOWN: Duration = Duration::from_secs(1);

/// One try of each call at endpoint `node`: what a store's adapter writes. Every type that
/// has them is a [`Target`].
pub trait Attempts: Send + Sync + 'static {
    /// How many endpoints there are.
    fn nodes(&self) -> usize;

    /// Which endpoints to skip for now.
    fn balancer(&self) -> &Balancer;

    /// The budget of one operation, retries included.
    fn budget(&self) -> Duration;

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
        Attempts::nodes(self)
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
        self.balancer()
            .with_failover(node, self.budget(), |n| self.get_once(n, key, consistency))
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
        self.balancer()
            .with_failover(node, self.budget(), |n| {
                self.get_session_once(n, key, min_index)
            })
            .await
    }

    async fn put(&self, node: usize, key: &str, value: &str) -> Result<Option<u64>, OpError> {
        self.balancer()
            .with_failover(node, self.budget(), |n| self.put_once(n, key, value))
            .await
    }

    async fn cas(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> Result<CasResult, OpError> {
        self.balancer()
            .with_failover(node, self.budget(), |n| {
                self.cas_once(n, key, expect, value)
            })
            .await
    }
}
