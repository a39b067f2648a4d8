//! One node's host, as the controller knows it after checking it.

use std::net::{IpAddr, SocketAddr};

use target_cluster::typ::NodeId;

use super::HostSpec;
use super::shaping::Probe;
use super::ssh::{Ssh, quote};
use crate::proxy::LinkMode;

/// One node's host.
#[derive(Debug, Clone)]
pub struct HostNode {
    /// The node id.
    pub id: NodeId,
    /// The host as the file gives it.
    pub spec: HostSpec,
    /// SSH access.
    pub ssh: Ssh,
    /// Where the node listens.
    pub addr: SocketAddr,
    /// The host clock less the controller's, in seconds (midpoint of an SSH round trip).
    pub clock_offset_s: f64,
    /// The round trip the offset was measured in, in seconds (its error is at most half).
    pub clock_rtt_s: f64,
    /// What tc can do on the host (probed only for a scenario with delays or bandwidth caps).
    pub shaping: Option<Probe>,
    /// libfaketime on the host, when the scenario has clock faults: the node starts with it
    /// preloaded (see `crate::placement::clock`).
    pub faketime: Option<String>,
}

impl HostNode {
    /// Whether this host can put its link to node `to` (at `peer`) in `mode` with tc.
    pub fn can_shape(&self, mode: &LinkMode, to: NodeId, peer: IpAddr) -> bool {
        self.shaping.as_ref().is_some_and(|p| p.can(mode, to, peer))
    }
}

impl HostNode {
    pub(crate) fn path(&self, name: &str) -> String {
        quote(&self.spec.data_dir.join(name).display().to_string())
    }
}
