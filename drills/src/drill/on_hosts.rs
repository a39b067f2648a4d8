//! The fault steps on hosts: SSH calls through the shared [`HostCluster`], taken without the
//! lock on the nodes so that the poller keeps its pace while a call is under way.
//!
//! What hosts can do is fixed here and checked before a drill starts ([`unsupported`]): signals
//! to the node (kill, stop, pause, restart), cuts by iptables DROP (isolate, partition,
//! blackhole in either direction), delays and bandwidth caps by tc on the sending hosts where
//! their kernels have netem and tbf, and by link proxies on the sending hosts elsewhere, and
//! resets by link proxies (started only for a scenario that needs them: [`link_modes`]). Disk
//! faults and adding nodes are not done on hosts; wipes and member removals only on the
//! reference store.

use std::collections::BTreeSet;
use std::time::Duration;

use target_cluster::typ::NodeId;

use super::faults::{self, Undo, partition_groups};
use super::links;
use super::poller::ClusterView;
use super::rig::Rig;
use crate::hosts::HostCluster;
use crate::hosts::cluster::later;
use crate::proxy::LinkMode;
use crate::scenario::{Action, Scenario, TargetKind};

/// How long a node on a host gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The faults of `scenario` that hosts cannot carry out, as `fault N (action): why`.
pub fn unsupported(scenario: &Scenario) -> Vec<String> {
    scenario
        .faults
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let why = match &f.action {
                Action::Kill
                | Action::Stop
                | Action::Pause
                | Action::Restart
                | Action::Isolate
                | Action::Partition { .. }
                | Action::Blackhole { .. }
                | Action::Delay { .. }
                | Action::Bandwidth { .. }
                | Action::Reset { .. }
                | Action::Heal => return None,
                Action::Wipe | Action::WipeInPlace | Action::RemoveNode
                    if scenario.cluster.target == TargetKind::Reference =>
                {
                    return None;
                }
                Action::Wipe | Action::WipeInPlace | Action::RemoveNode => {
                    "wipes and member removals on hosts are made for the reference store only"
                }
                Action::AddNode => "hosts run one node each: a new node has no host of its own",
                _ => "disk faults need the fault-injecting filesystem, which runs only on this machine",
            };
            Some(format!("fault {} ({}): {why}", i + 1, f.action.name()))
        })
        .collect()
}

/// The link modes `scenario` puts links in beyond cuts (delays, bandwidth caps, resets): the
/// hosts make them with tc where they can, with link proxies elsewhere (see
/// [`crate::hosts::HostOptions::link_modes`]).
pub fn link_modes(scenario: &Scenario) -> Vec<LinkMode> {
    let mut modes: Vec<LinkMode> = Vec::new();
    for f in &scenario.faults {
        if let Some((m, _)) = links::mode_of(&f.action)
            && m != LinkMode::Blackhole
            && !modes.contains(&m)
        {
            modes.push(m);
        }
    }
    modes
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Applies `action` to `nodes` on the hosts; returns what would undo it and when the hosts
/// carried it out (Unix seconds on the controller's clock), when they said.
pub async fn apply(
    rig: &Rig,
    h: &HostCluster,
    action: &Action,
    nodes: &[NodeId],
    view: &ClusterView,
) -> Result<(Option<Undo>, Option<f64>), String> {
    let set: BTreeSet<NodeId> = nodes.iter().copied().collect();
    let mut at = None;
    let undo = match action {
        Action::Kill => {
            for id in nodes {
                at = later(at, h.kill(*id).await.map_err(err)?);
            }
            rig.mark_down(nodes).await;
            Some(Undo::Restart(nodes.to_vec()))
        }
        Action::Stop => {
            for id in nodes {
                at = later(at, h.stop_node(*id, STOP_GRACE).await.map_err(err)?);
            }
            Some(Undo::Restart(nodes.to_vec()))
        }
        Action::Pause => {
            for id in nodes {
                at = later(at, h.pause(*id).await.map_err(err)?);
            }
            Some(Undo::Resume(nodes.to_vec()))
        }
        Action::Restart => {
            for id in nodes {
                if h.is_running(*id) {
                    h.stop_node(*id, STOP_GRACE).await.map_err(err)?;
                }
                h.restart(*id).await.map_err(err)?;
            }
            None
        }
        Action::Isolate => {
            for id in nodes {
                at = later(at, h.isolate(*id).await.map_err(err)?);
            }
            Some(Undo::Isolation(nodes.to_vec()))
        }
        Action::Partition { groups } => {
            let groups = partition_groups(groups.as_deref(), &set, view);
            let chosen = links::crossing(h.links(), &groups);
            at = h.cut(&chosen).await.map_err(err)?;
            Some(Undo::Links(chosen))
        }
        Action::Blackhole { direction } => {
            let chosen = links::touching(h.links(), &set, *direction);
            at = h.cut(&chosen).await.map_err(err)?;
            Some(Undo::Links(chosen))
        }
        // Cuts are iptables rules (above); the other link modes are tc's or the proxies'.
        Action::Delay { .. } | Action::Bandwidth { .. } | Action::Reset { .. } => {
            let (mode, direction) = links::mode_of(action).expect("a link mode action");
            let chosen = links::touching(h.links(), &set, direction);
            at = h.set_links(&chosen, mode).await.map_err(err)?;
            Some(Undo::Links(chosen))
        }
        Action::Heal => {
            heal(h).await;
            None
        }
        Action::WipeInPlace => {
            for id in nodes {
                at = later(at, h.wipe(*id).await.map_err(err)?);
            }
            None
        }
        // Out of the membership, wiped, and back in as a new voter under its old id.
        Action::Wipe => {
            for id in nodes {
                faults::remove_member(rig, view, *id).await?;
                at = later(at, h.wipe(*id).await.map_err(err)?);
                let addr = h.nodes()[id].addr.to_string();
                faults::add_voter(rig, view, *id, addr).await?;
            }
            None
        }
        Action::RemoveNode => {
            for id in nodes {
                faults::remove_member(rig, view, *id).await?;
                rig.removed.lock().expect("removed lock").insert(*id);
                rig.stop_node(*id, STOP_GRACE).await?;
            }
            None
        }
        other => return Err(format!("{} is not done on hosts", other.name())),
    };
    Ok((undo, at))
}

/// Undoes a fault applied by [`apply`]; returns when the hosts carried out the last of it
/// (Unix seconds on the controller's clock), when they said.
pub async fn undo(h: &HostCluster, undo: &Undo) -> Result<Option<f64>, String> {
    let mut at = None;
    match undo {
        Undo::Restart(ids) => {
            for id in ids {
                if !h.is_running(*id) {
                    h.restart(*id).await.map_err(err)?;
                }
            }
        }
        Undo::Resume(ids) => {
            for id in ids {
                if h.is_paused(*id) {
                    h.resume(*id).await.map_err(err)?;
                }
            }
        }
        Undo::Links(links) => at = h.restore(links).await.map_err(err)?,
        Undo::Isolation(ids) => {
            for id in ids {
                at = later(at, h.end_isolation(*id).await.map_err(err)?);
            }
        }
        Undo::Disks(_) => return Err("disk faults are not made on hosts".into()),
    }
    Ok(at)
}

/// Every rule removed and every paused node resumed; failures are logged (the final clean-up
/// removes the chain in any case).
pub async fn heal(h: &HostCluster) {
    if let Err(e) = h.heal_links().await {
        tracing::warn!(error = %e, "cannot heal the links on the hosts");
    }
    for id in h.running_ids() {
        if h.is_paused(id)
            && let Err(e) = h.resume(id).await
        {
            tracing::warn!(node = id, error = %e, "cannot resume a node on its host");
        }
    }
}

/// Starts every node that is down and not removed; returns the ids restarted.
pub async fn restart_down(rig: &Rig, h: &HostCluster) -> Vec<NodeId> {
    let mut restarted = Vec::new();
    for id in h.nodes().keys().copied() {
        if !h.is_running(id) && !rig.is_removed(id) && h.restart(id).await.is_ok() {
            restarted.push(id);
        }
    }
    restarted
}
