//! The link proxies between the nodes of this machine, in the form the store's peer wiring
//! allows: one [`LinkProxy`](crate::proxy::LinkProxy) per directed link when each node is told
//! per peer where to dial ([`LinkTable`]), or one attributing proxy in front of each member's
//! advertised peer address ([`EtcdLinks`]). Without proxies (`--direct-links`) there is no
//! link to fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use target_cluster::typ::NodeId;

use super::link_table::LinkTable;
use crate::etcd::links::{EtcdLinks, MemberProxy};
use crate::links::Link;
use crate::proxy::{LinkMode, LinkProxy, ProxyError};
use crate::store::{PeerStyle, Site};

/// Why a link fault cannot be made: there are no proxies.
pub const NO_PROXIES: &str = "link faults need the link proxies (run without --direct-links)";

/// The proxies between the nodes of this machine.
pub enum LocalLinks {
    /// Nodes dial each other directly.
    Direct(PeerStyle),
    /// A proxy per directed link.
    PerLink(LinkTable),
    /// A proxy in front of each member's peer listener.
    Advertised(EtcdLinks),
}

/// Proxies started for a new node, to be added with [`LocalLinks::insert`].
pub enum Started {
    /// Nothing to add.
    Nothing,
    /// The new node's links, both ways, to and from every other node.
    PerLink(Vec<(Link, LinkProxy)>),
    /// The new member's peer proxy.
    Advertised(NodeId, MemberProxy),
}

impl LocalLinks {
    /// A proxy on every link of `sites`, in the store's `style`.
    pub async fn build(
        style: PeerStyle,
        sites: &BTreeMap<NodeId, Site>,
    ) -> Result<Self, ProxyError> {
        Ok(match style {
            PeerStyle::PerLink => {
                let addrs = sites.iter().map(|(id, s)| (*id, s.client)).collect();
                LocalLinks::PerLink(LinkTable::build(&addrs).await?)
            }
            PeerStyle::Advertised => {
                let mut t = EtcdLinks::default();
                for (id, s) in sites {
                    t.insert(*id, EtcdLinks::start_proxy(s.peer_listen).await?);
                }
                LocalLinks::Advertised(t)
            }
        })
    }

    /// The wiring of the proxies, when there are any.
    pub fn proxied(&self) -> Option<PeerStyle> {
        match self {
            LocalLinks::Direct(_) => None,
            LocalLinks::PerLink(_) => Some(PeerStyle::PerLink),
            LocalLinks::Advertised(_) => Some(PeerStyle::Advertised),
        }
    }

    /// Starts the proxies a new node `site` needs beside `others` in the wiring `proxied`
    /// (see [`LocalLinks::proxied`]), with no table held while they start.
    pub async fn start_for(
        proxied: Option<PeerStyle>,
        site: &Site,
        others: &BTreeMap<NodeId, SocketAddr>,
    ) -> Result<Started, ProxyError> {
        Ok(match proxied {
            None => Started::Nothing,
            Some(PeerStyle::PerLink) => {
                Started::PerLink(LinkTable::start_for_new_node(site.id, site.client, others).await?)
            }
            Some(PeerStyle::Advertised) => {
                Started::Advertised(site.id, EtcdLinks::start_proxy(site.peer_listen).await?)
            }
        })
    }

    /// Adds proxies started by [`LocalLinks::start_for`]; returns the new per-link proxy
    /// addresses (for the running nodes to learn) and a replaced proxy to shut down.
    pub fn insert(
        &mut self,
        started: Started,
        sites: &mut BTreeMap<NodeId, Site>,
    ) -> (Vec<(Link, SocketAddr)>, Option<MemberProxy>) {
        match (self, started) {
            (LocalLinks::PerLink(t), Started::PerLink(s)) => (t.insert(s), None),
            (LocalLinks::Advertised(t), Started::Advertised(id, p)) => {
                let (addr, old) = t.insert(id, p);
                if let Some(site) = sites.get_mut(&id) {
                    site.peer_advertised = addr;
                }
                (Vec::new(), old)
            }
            _ => (Vec::new(), None),
        }
    }

    /// Sets every member's advertised peer address to its proxy's.
    pub fn advertise(&self, sites: &mut BTreeMap<NodeId, Site>) {
        if let LocalLinks::Advertised(t) = self {
            for (id, site) in sites.iter_mut() {
                if let Some(a) = t.addr(*id) {
                    site.peer_advertised = a;
                }
            }
        }
    }

    /// The store's peer wiring.
    pub fn style(&self) -> PeerStyle {
        match self {
            LocalLinks::Direct(s) => *s,
            LocalLinks::PerLink(_) => PeerStyle::PerLink,
            LocalLinks::Advertised(_) => PeerStyle::Advertised,
        }
    }

    /// The address node `from` dials for `to`, when a proxy carries that link.
    pub fn addr(&self, link: Link) -> Option<SocketAddr> {
        match self {
            LocalLinks::PerLink(t) => t.addr(link),
            _ => None,
        }
    }

    /// Every link a fault can be put on; an error without proxies.
    pub fn links(&self) -> Result<Vec<Link>, String> {
        match self {
            LocalLinks::Direct(_) => Err(NO_PROXIES.into()),
            LocalLinks::PerLink(t) => Ok(t.links().collect()),
            LocalLinks::Advertised(t) => Ok(t.links()),
        }
    }

    /// Puts `links` in `mode`; etcd's proxies tell links apart by member ids (`ids`).
    pub fn set(&mut self, links: &[Link], mode: LinkMode, ids: &BTreeMap<NodeId, u64>) {
        match self {
            LocalLinks::Direct(_) => {}
            LocalLinks::PerLink(t) => t.set(links, mode),
            LocalLinks::Advertised(t) => t.set(links, mode, ids),
        }
    }

    /// Applies the asked modes again after a member got a new etcd id.
    pub fn reapply(&self, ids: &BTreeMap<NodeId, u64>) {
        if let LocalLinks::Advertised(t) = self {
            t.reapply(ids);
        }
    }

    /// Every link back to pass.
    pub fn heal_all(&mut self) {
        match self {
            LocalLinks::Direct(_) => {}
            LocalLinks::PerLink(t) => t.heal_all(),
            LocalLinks::Advertised(t) => t.heal_all(),
        }
    }

    /// Tells the proxies in front of node `id` that it is down, so they refuse at once (as
    /// the node's own closed port would).
    pub fn node_down(&self, id: NodeId) {
        if let LocalLinks::PerLink(t) = self {
            t.node_down(id);
        }
    }

    /// Forgets node `id`'s links (it left the cluster); returns its proxy to shut down.
    pub fn remove(&mut self, id: NodeId) -> Option<MemberProxy> {
        match self {
            LocalLinks::Advertised(t) => t.remove_member(id),
            _ => None,
        }
    }

    /// Whether every link to and from `id` is cut.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        match self {
            LocalLinks::Direct(_) => false,
            LocalLinks::PerLink(t) => t.is_isolated(id),
            LocalLinks::Advertised(t) => t.is_isolated(id),
        }
    }

    /// The link faults touching `id`, for the live view (`→2 blackhole`).
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        match self {
            LocalLinks::Direct(_) => Vec::new(),
            LocalLinks::PerLink(t) => t.faults_of(id),
            LocalLinks::Advertised(t) => t.faults_of(id),
        }
    }

    /// Stops every proxy and waits for its tasks.
    pub async fn shutdown(self) {
        match self {
            LocalLinks::Direct(_) => {}
            LocalLinks::PerLink(t) => t.shutdown().await,
            LocalLinks::Advertised(t) => t.shutdown().await,
        }
    }
}
