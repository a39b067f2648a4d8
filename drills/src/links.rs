//! Directed links between nodes, and what a link fault does to them: the one mapping from a
//! scenario's link actions to link modes, and the choice of links a fault touches. Every
//! placement's links (proxies here, iptables and tc on hosts) are picked by these.

use std::collections::BTreeSet;

use target_cluster::typ::NodeId;

use crate::proxy::LinkMode;
use crate::scenario::{Action, Direction};

/// A directed link: `(from, to)` carries the connections `from` opens to `to`.
pub type Link = (NodeId, NodeId);

/// Of `links`, those of `nodes` in `direction`: `Out` are theirs to others, `In` the others'
/// to them, `Both` either.
pub fn touching(
    links: impl IntoIterator<Item = Link>,
    nodes: &BTreeSet<NodeId>,
    direction: Direction,
) -> Vec<Link> {
    links
        .into_iter()
        .filter(|(from, to)| match direction {
            Direction::Out => nodes.contains(from),
            Direction::In => nodes.contains(to),
            Direction::Both => nodes.contains(from) || nodes.contains(to),
        })
        .collect()
}

/// Of `links`, those that cross between different `groups` (nodes in no group are left alone).
pub fn crossing(links: impl IntoIterator<Item = Link>, groups: &[BTreeSet<NodeId>]) -> Vec<Link> {
    let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
    links
        .into_iter()
        .filter(|(a, b)| match (group_of(*a), group_of(*b)) {
            (Some(x), Some(y)) => x != y,
            _ => false,
        })
        .collect()
}

/// The link mode a fault puts its links in, and which of the target's links: the one mapping
/// from a scenario's link actions to proxies, on one machine and on hosts. `None` for faults
/// that are not link modes (cuts by partition groups, isolation, node and disk faults).
pub fn mode_of(action: &Action) -> Option<(LinkMode, Direction)> {
    Some(match action {
        Action::Delay {
            latency,
            jitter,
            direction,
        } => (
            LinkMode::Delay {
                latency: *latency,
                jitter: *jitter,
            },
            *direction,
        ),
        Action::Bandwidth {
            bytes_per_sec,
            direction,
        } => (
            LinkMode::Bandwidth {
                bytes_per_sec: *bytes_per_sec,
            },
            *direction,
        ),
        Action::Blackhole { direction } => (LinkMode::Blackhole, *direction),
        Action::Reset { direction } => (LinkMode::Reset, *direction),
        _ => return None,
    })
}

/// The name of `mode` for the live view and the logs.
pub fn mode_name(mode: LinkMode) -> String {
    match mode {
        LinkMode::Pass => "pass".into(),
        LinkMode::Blackhole => "blackhole".into(),
        LinkMode::Delay { latency, jitter } => {
            format!("delay {}±{}ms", latency.as_millis(), jitter.as_millis())
        }
        LinkMode::Bandwidth { bytes_per_sec } => format!("{} KiB/s", bytes_per_sec / 1024),
        LinkMode::Reset => "reset".into(),
    }
}
