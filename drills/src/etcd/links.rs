//! Link faults between etcd members: one [`AttributedProxy`] in front of each member's peer
//! listener, its address advertised as that member's peer URL, and each peer connection placed
//! on the directed link whose Raft messages it carries.
//!
//! # Which connection carries which messages
//!
//! etcd's peer transport (`rafthttp`) moves messages from A to B on two kinds of connection:
//! - **streams** (`GET /raft/stream/{message,msgapp}/<B>`): *B* opens them to A, and A writes
//!   its messages to B into the long-lived response. They carry almost all traffic.
//! - **pipelines and snapshots** (`POST /raft`, `POST /raft/snapshot`): *A* opens them to B,
//!   for snapshots and while no stream works.
//!
//! Every one of these requests names the member that opened the connection in `X-Server-From`
//! (hex member id; checked on etcd 3.4.23). So at member T's proxy a connection opened by S
//! carries the messages of link T→S if its first request is a stream, and of S→T otherwise;
//! [`PeerFlow`] is that key, and a link's mode is set on both proxies that carry it. A link
//! A→B here therefore means **the Raft messages A sends to B**, which is what a one-way
//! partition of a Raft cluster is about. The mode applies to both byte directions of the
//! connections that carry them (for a stream, the request and the message flow; for a
//! pipeline, the POST and its short answer).
//!
//! Requests without `X-Server-From` (`/raft/probing`, `/version`, `/members`) carry no Raft
//! messages. Their connections are closed after one answer (so they are never reused for
//! Raft traffic, see [`AttributedProxy`]) and follow the member's *unattributed* mode: the
//! common mode of every link into the member when they all agree (an isolated member's
//! probes are held too), pass otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use target_cluster::typ::NodeId;

pub use crate::links::Link;
use crate::links::{crossing, mode_name, touching};
use crate::proxy::{AttributedProxy, Classifier, LinkMode, ProxyError, RequestHead};
use crate::scenario::Direction;

/// What a connection at a member's proxy carries, from the first request that opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerFlow {
    /// etcd member id of the member that opened the connection.
    pub opener: u64,
    /// A stream (the proxied member's messages *to* the opener) or a pipeline/snapshot (the
    /// opener's messages to the proxied member).
    pub stream: bool,
}

/// Classifies a peer connection from its first request; `None` without `X-Server-From`.
pub fn classify(head: &RequestHead) -> Option<PeerFlow> {
    let opener = u64::from_str_radix(head.header("X-Server-From")?, 16).ok()?;
    Some(PeerFlow {
        opener,
        stream: head.path.starts_with("/raft/stream/"),
    })
}

/// The proxy in front of one member's peer listener.
pub type MemberProxy = AttributedProxy<PeerFlow>;

/// The proxies in front of every member's peer listener, and the modes asked of each link.
#[derive(Default)]
pub struct EtcdLinks {
    proxies: BTreeMap<NodeId, MemberProxy>,
    /// The mode asked of each link that is not in pass mode.
    modes: BTreeMap<Link, LinkMode>,
}

impl EtcdLinks {
    /// Starts a proxy in front of a peer listener at `peer_listen`, to be added with
    /// [`EtcdLinks::insert`] (no table is held while it starts).
    pub async fn start_proxy(peer_listen: SocketAddr) -> Result<MemberProxy, ProxyError> {
        let classifier: Arc<Classifier<PeerFlow>> = Arc::new(classify);
        AttributedProxy::start(peer_listen, classifier).await
    }

    /// Puts `proxy` in front of node `id`; returns the address to advertise as its peer URL
    /// and the proxy it replaced, if any (for the caller to shut down).
    pub fn insert(&mut self, id: NodeId, proxy: MemberProxy) -> (SocketAddr, Option<MemberProxy>) {
        let addr = proxy.local_addr();
        let old = self.proxies.insert(id, proxy);
        (addr, old)
    }

    /// Forgets node `id`'s links (it left the cluster); returns its proxy to shut down.
    pub fn remove_member(&mut self, id: NodeId) -> Option<MemberProxy> {
        self.modes.retain(|(a, b), _| *a != id && *b != id);
        let p = self.proxies.remove(&id);
        self.refresh_unattributed();
        p
    }

    /// The advertised peer address of node `id`.
    pub fn addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.proxies.get(&id).map(AttributedProxy::local_addr)
    }

    /// Sets `mode` on each of `links`, given the etcd member id of every node (`ids`). Links
    /// whose ends have no member id yet take the mode when [`EtcdLinks::reapply`] is called
    /// with one.
    pub fn set(&mut self, links: &[Link], mode: LinkMode, ids: &BTreeMap<NodeId, u64>) {
        for link in links {
            if mode == LinkMode::Pass {
                self.modes.remove(link);
            } else {
                self.modes.insert(*link, mode);
            }
            self.apply(*link, mode, ids);
        }
        self.refresh_unattributed();
    }

    /// Every link back to pass.
    pub fn heal_all(&mut self) {
        self.modes.clear();
        for p in self.proxies.values() {
            p.heal_all();
        }
    }

    /// Applies the asked modes again, after a member got a new etcd id (wiped and re-added).
    pub fn reapply(&self, ids: &BTreeMap<NodeId, u64>) {
        for (link, mode) in &self.modes {
            self.apply(*link, *mode, ids);
        }
        self.refresh_unattributed();
    }

    /// The mode asked of a link.
    pub fn mode(&self, link: Link) -> LinkMode {
        self.modes.get(&link).copied().unwrap_or_default()
    }

    /// Every directed link between the members that have a proxy.
    pub fn links(&self) -> Vec<Link> {
        let ids: Vec<NodeId> = self.proxies.keys().copied().collect();
        ids.iter()
            .flat_map(|a| ids.iter().filter(move |b| *b != a).map(move |b| (*a, *b)))
            .collect()
    }

    /// The links of `nodes` in `direction`: `Out` are their messages to the others, `In` the
    /// others' messages to them, `Both` either.
    pub fn touching(&self, nodes: &BTreeSet<NodeId>, direction: Direction) -> Vec<Link> {
        touching(self.links(), nodes, direction)
    }

    /// The links that cross between different `groups` (nodes in no group are left alone).
    pub fn crossing(&self, groups: &[BTreeSet<NodeId>]) -> Vec<Link> {
        crossing(self.links(), groups)
    }

    /// Whether every link to and from `id` holds all traffic.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        let links = self.touching(&BTreeSet::from([id]), Direction::Both);
        !links.is_empty() && links.iter().all(|l| self.mode(*l) == LinkMode::Blackhole)
    }

    /// The link faults that touch node `id`, for the cluster panel: `→2 blackhole`, `3→ delay`.
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        let mut out = Vec::new();
        for ((from, to), mode) in &self.modes {
            if *from == id {
                out.push(format!("→{to} {}", mode_name(*mode)));
            } else if *to == id {
                out.push(format!("{from}→ {}", mode_name(*mode)));
            }
        }
        out
    }

    /// Counters of the connections at node `id`'s proxy, per flow.
    pub fn stats(&self, id: NodeId) -> BTreeMap<PeerFlow, crate::proxy::ProxyStats> {
        self.proxies.get(&id).map(|p| p.stats()).unwrap_or_default()
    }

    /// Stops every proxy and waits for its tasks.
    pub async fn shutdown(self) {
        for (_, p) in self.proxies {
            p.shutdown().await;
        }
    }

    /// Sets the mode of link `from → to` on the two proxies that carry its messages: streams
    /// opened by `to` at `from`'s proxy, pipelines opened by `from` at `to`'s proxy.
    fn apply(&self, (from, to): Link, mode: LinkMode, ids: &BTreeMap<NodeId, u64>) {
        if let (Some(proxy), Some(opener)) = (self.proxies.get(&from), ids.get(&to)) {
            let flow = PeerFlow {
                opener: *opener,
                stream: true,
            };
            proxy.set_mode(flow, mode);
        }
        if let (Some(proxy), Some(opener)) = (self.proxies.get(&to), ids.get(&from)) {
            let flow = PeerFlow {
                opener: *opener,
                stream: false,
            };
            proxy.set_mode(flow, mode);
        }
    }

    /// Each member's unattributed mode: the mode of all links into it when they agree.
    fn refresh_unattributed(&self) {
        for (id, proxy) in &self.proxies {
            let mut inbound = self
                .proxies
                .keys()
                .filter(|other| *other != id)
                .map(|other| self.mode((*other, *id)));
            let first = inbound.next().unwrap_or_default();
            let common = if inbound.all(|m| m == first) {
                first
            } else {
                LinkMode::Pass
            };
            proxy.set_unattributed_mode(common);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> RequestHead {
        RequestHead::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn streams_and_pipelines_are_told_apart_and_probes_are_not_placed() {
        // Request heads as etcd 3.4.23 sends them (seen through a logging proxy).
        let stream = head(
            "GET /raft/stream/msgapp/41a6436260604436 HTTP/1.1\r\nHost: 127.0.0.1:24911\r\n\
             User-Agent: Go-http-client/1.1\r\nX-Raft-To: a672701039a307af\r\n\
             X-Server-From: 41a6436260604436\r\n\r\n",
        );
        assert_eq!(
            classify(&stream),
            Some(PeerFlow {
                opener: 0x41a6436260604436,
                stream: true
            })
        );
        let pipeline = head("POST /raft HTTP/1.1\r\nX-Server-From: eb99db14a63a0518\r\n\r\n");
        assert_eq!(
            classify(&pipeline),
            Some(PeerFlow {
                opener: 0xeb99db14a63a0518,
                stream: false
            })
        );
        let probe = head("GET /raft/probing HTTP/1.1\r\nUser-Agent: Go-http-client/1.1\r\n\r\n");
        assert_eq!(classify(&probe), None);
    }

    #[tokio::test]
    async fn a_link_is_set_on_both_proxies_that_carry_it() {
        let mut links = EtcdLinks::default();
        // Upstreams are never dialled here.
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
        for id in 1..=3 {
            let proxy = EtcdLinks::start_proxy(nowhere).await.unwrap();
            links.insert(id, proxy);
        }
        let ids = BTreeMap::from([(1, 0x11), (2, 0x22), (3, 0x33)]);
        links.set(&[(1, 2)], LinkMode::Blackhole, &ids);
        let p1 = &links.proxies[&1];
        let p2 = &links.proxies[&2];
        let stream_from_2 = PeerFlow {
            opener: 0x22,
            stream: true,
        };
        let pipeline_from_1 = PeerFlow {
            opener: 0x11,
            stream: false,
        };
        assert_eq!(p1.mode(&stream_from_2), LinkMode::Blackhole);
        assert_eq!(p2.mode(&pipeline_from_1), LinkMode::Blackhole);
        // The other direction is untouched.
        let stream_from_1 = PeerFlow {
            opener: 0x11,
            stream: true,
        };
        assert_eq!(p2.mode(&stream_from_1), LinkMode::Pass);
        assert_eq!(p2.unattributed_mode(), LinkMode::Pass, "3→2 still passes");

        let two = BTreeSet::from([2]);
        assert_eq!(links.touching(&two, Direction::In), vec![(1, 2), (3, 2)]);
        assert_eq!(links.touching(&two, Direction::Out), vec![(2, 1), (2, 3)]);
        let groups = [BTreeSet::from([1]), BTreeSet::from([2, 3])];
        assert_eq!(
            links.crossing(&groups),
            vec![(1, 2), (1, 3), (2, 1), (3, 1)]
        );
        links.set(
            &links.touching(&two, Direction::Both),
            LinkMode::Blackhole,
            &ids,
        );
        assert!(links.is_isolated(2));
        assert!(links.faults_of(3).contains(&"→2 blackhole".to_string()));
        assert_eq!(links.proxies[&2].unattributed_mode(), LinkMode::Blackhole);
        // Node 2 comes back with a new member id: its links follow.
        let ids = BTreeMap::from([(1, 0x11), (2, 0x99), (3, 0x33)]);
        links.reapply(&ids);
        let stream_from_new_2 = PeerFlow {
            opener: 0x99,
            stream: true,
        };
        assert_eq!(
            links.proxies[&1].mode(&stream_from_new_2),
            LinkMode::Blackhole
        );
        links.heal_all();
        assert!(!links.is_isolated(2));
        assert_eq!(links.proxies[&1].mode(&stream_from_new_2), LinkMode::Pass);
        links.shutdown().await;
    }
}
