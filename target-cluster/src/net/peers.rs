//! The peer address map: where this node sends traffic meant for each peer.
//!
//! The drill controller starts every node with `--peer ID=HOST:PORT` pointing at the proxy of
//! that directed link, so that it can cut or slow each link on its own. A peer missing from the
//! map is reached at the address recorded in the membership.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::typ::NodeId;

/// Shared, updatable map from peer id to `HOST:PORT`.
#[derive(Clone, Debug, Default)]
pub struct PeerMap {
    inner: Arc<RwLock<HashMap<NodeId, String>>>,
}

impl PeerMap {
    /// A map with these entries.
    pub fn new(entries: impl IntoIterator<Item = (NodeId, String)>) -> Self {
        Self {
            inner: Arc::new(RwLock::new(entries.into_iter().collect())),
        }
    }

    /// The address to use for `id`: the mapped one, or `fallback` (the membership's address).
    pub fn resolve(&self, id: NodeId, fallback: &str) -> String {
        self.get(id).unwrap_or_else(|| fallback.to_string())
    }

    /// The mapped address of `id`, if any.
    pub fn get(&self, id: NodeId) -> Option<String> {
        self.inner.read().expect("peer map lock").get(&id).cloned()
    }

    /// Maps `id` to `addr`, replacing what was there.
    pub fn set(&self, id: NodeId, addr: String) {
        self.inner.write().expect("peer map lock").insert(id, addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_address_wins_over_the_membership_one() {
        let m = PeerMap::new([(2, "127.0.0.1:9002".to_string())]);
        assert_eq!(m.resolve(2, "127.0.0.1:7002"), "127.0.0.1:9002");
        assert_eq!(m.resolve(3, "127.0.0.1:7003"), "127.0.0.1:7003");
        m.set(3, "127.0.0.1:9003".into());
        assert_eq!(m.resolve(3, "127.0.0.1:7003"), "127.0.0.1:9003");
    }
}
