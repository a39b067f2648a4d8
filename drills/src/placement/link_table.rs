//! Every directed link of a reference cluster as a [`LinkProxy`] of its own: the nodes are told,
//! per peer, to dial the proxy of that link.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use target_cluster::typ::NodeId;

use crate::links::{Link, crossing, mode_name, touching};
use crate::proxy::{LinkMode, LinkProxy, ProxyError, ProxyStats};
use crate::scenario::Direction;

/// The proxies of every ordered pair of nodes.
#[derive(Default)]
pub struct LinkTable {
    proxies: BTreeMap<Link, LinkProxy>,
}

impl LinkTable {
    /// Proxies for every ordered pair of `nodes` (id → listen address).
    pub async fn build(nodes: &BTreeMap<NodeId, SocketAddr>) -> Result<Self, ProxyError> {
        let mut t = Self::default();
        for (from, _) in nodes.iter() {
            for (to, addr) in nodes.iter() {
                if from != to {
                    t.proxies
                        .insert((*from, *to), LinkProxy::start(*addr).await?);
                }
            }
        }
        Ok(t)
    }

    /// Starts the proxies of the links between a new node `id` at `addr` and `others`, without
    /// touching any table: the caller adds them with [`LinkTable::insert`], so no lock on the
    /// table is held while proxies start.
    pub async fn start_for_new_node(
        id: NodeId,
        addr: SocketAddr,
        others: &BTreeMap<NodeId, SocketAddr>,
    ) -> Result<Vec<(Link, LinkProxy)>, ProxyError> {
        let mut started = Vec::new();
        for (other, other_addr) in others.iter().filter(|(o, _)| **o != id) {
            for (link, upstream) in [((id, *other), *other_addr), ((*other, id), addr)] {
                started.push((link, LinkProxy::start(upstream).await?));
            }
        }
        Ok(started)
    }

    /// Adds started proxies; returns each new link's proxy address.
    pub fn insert(&mut self, started: Vec<(Link, LinkProxy)>) -> Vec<(Link, SocketAddr)> {
        started
            .into_iter()
            .map(|(link, p)| {
                let addr = p.local_addr();
                self.proxies.insert(link, p);
                (link, addr)
            })
            .collect()
    }

    /// The address `from` should use to reach `to`.
    pub fn addr(&self, link: Link) -> Option<SocketAddr> {
        self.proxies.get(&link).map(LinkProxy::local_addr)
    }

    /// Every link.
    pub fn links(&self) -> impl Iterator<Item = Link> + '_ {
        self.proxies.keys().copied()
    }

    /// Sets the mode of each of `links`.
    pub fn set(&self, links: &[Link], mode: LinkMode) {
        for l in links {
            if let Some(p) = self.proxies.get(l) {
                p.set_mode(mode);
            }
        }
    }

    /// Tells every proxy in front of node `id` that the node is down, so they refuse new
    /// connections at once (see [`LinkProxy::upstream_down`]).
    pub fn node_down(&self, id: NodeId) {
        for ((_, to), p) in &self.proxies {
            if *to == id {
                p.upstream_down();
            }
        }
    }

    /// Every link back to pass.
    pub fn heal_all(&self) {
        for p in self.proxies.values() {
            p.set_mode(LinkMode::Pass);
        }
    }

    /// The links of `nodes` in `direction`: `Out` are theirs to others, `In` the others' to
    /// them, `Both` either.
    pub fn touching(&self, nodes: &BTreeSet<NodeId>, direction: Direction) -> Vec<Link> {
        touching(self.links(), nodes, direction)
    }

    /// The links that cross between different `groups` (nodes in no group are left alone).
    pub fn crossing(&self, groups: &[BTreeSet<NodeId>]) -> Vec<Link> {
        crossing(self.links(), groups)
    }

    /// The link faults that touch node `id`, for the cluster panel: `→2 blackhole`, `3→ delay`.
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        let mut out = Vec::new();
        for ((from, to), p) in &self.proxies {
            let mode = p.mode();
            if mode == LinkMode::Pass {
                continue;
            }
            let name = mode_name(mode);
            if *from == id {
                out.push(format!("→{to} {name}"));
            } else if *to == id {
                out.push(format!("{from}→ {name}"));
            }
        }
        out
    }

    /// Whether every link to and from `id` holds all traffic.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        let mut links = self
            .proxies
            .iter()
            .filter(|((a, b), _)| *a == id || *b == id)
            .peekable();
        links.peek().is_some() && links.all(|(_, p)| p.mode() == LinkMode::Blackhole)
    }

    /// Counters of every link.
    pub fn stats(&self) -> BTreeMap<Link, ProxyStats> {
        self.proxies.iter().map(|(l, p)| (*l, p.stats())).collect()
    }

    /// Stops every proxy and waits for its tasks.
    pub async fn shutdown(self) {
        for (_, p) in self.proxies {
            p.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn table(n: u64) -> LinkTable {
        // The upstreams are never dialled in these tests; any address will do.
        let nodes = (1..=n)
            .map(|i| (i, SocketAddr::from(([127, 0, 0, 1], 9))))
            .collect();
        LinkTable::build(&nodes).await.unwrap()
    }

    #[tokio::test]
    async fn directions_pick_the_right_links() {
        let t = table(3).await;
        let one = BTreeSet::from([1]);
        assert_eq!(t.touching(&one, Direction::Out), vec![(1, 2), (1, 3)]);
        assert_eq!(t.touching(&one, Direction::In), vec![(2, 1), (3, 1)]);
        assert_eq!(t.touching(&one, Direction::Both).len(), 4);
        let groups = [BTreeSet::from([1, 2]), BTreeSet::from([3])];
        assert_eq!(t.crossing(&groups), vec![(1, 3), (2, 3), (3, 1), (3, 2)]);
        t.shutdown().await;
    }

    #[tokio::test]
    async fn isolation_and_fault_labels_follow_the_modes() {
        let t = table(3).await;
        let links = t.touching(&BTreeSet::from([2]), Direction::Both);
        t.set(&links, LinkMode::Blackhole);
        assert!(t.is_isolated(2));
        assert!(!t.is_isolated(1));
        assert!(t.faults_of(1).contains(&"→2 blackhole".to_string()));
        t.heal_all();
        assert!(!t.is_isolated(2));
        assert!(t.faults_of(2).is_empty());
        t.shutdown().await;
    }
}
