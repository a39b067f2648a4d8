//! Each scenario action, written once against the placement's primitives and the store's
//! membership calls: what it does, and what undoes it. Which store runs and where is not asked
//! here; what a combination cannot do was refused before the run started (`super::support`),
//! and a primitive that still cannot be carried out says why in its error.

use std::collections::BTreeSet;

use raftdrill_faultfs::Mode;
use target_cluster::typ::NodeId;

use super::corrupt::{Ask, Corruption, corrupt};
use super::resolve::partition_groups;
use super::{Rig, STOP_GRACE, later};
use crate::links::{Link, crossing, mode_of, touching};
use crate::nodes::view::ClusterView;
use crate::placement::{Effect, disks};
use crate::proxy::LinkMode;
use crate::scenario::Action;

/// What undoes an applied fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// Start the nodes again.
    Restart(Vec<NodeId>),
    /// SIGCONT the nodes.
    Resume(Vec<NodeId>),
    /// Links back to pass.
    Links(Vec<Link>),
    /// Disks back to pass.
    Disks(Vec<NodeId>),
    /// Nodes back in touch with their peers (and, on hosts, their clients).
    Isolation(Vec<NodeId>),
    /// CPU quotas lifted.
    CpuLimit(Vec<NodeId>),
    /// Clocks true again.
    Clock(Vec<NodeId>),
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// What applying a fault did.
#[derive(Debug, Default)]
pub struct Applied {
    /// What would undo it.
    pub undo: Option<Undo>,
    /// When it took effect (Unix seconds), where the placement knows it.
    pub at: Effect,
    /// The files a `corrupt` damaged, and what the nodes made of them.
    pub corruption: Vec<Corruption>,
    /// What a power loss dropped and kept, per node.
    pub power_loss: Vec<PowerLossRecord>,
}

/// What a power loss did to one node's disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct PowerLossRecord {
    /// The node.
    pub node: NodeId,
    /// The fault layer's report: what was dropped, kept and torn, and the seed of the draw.
    #[serde(flatten)]
    pub report: raftdrill_faultfs::PowerLossReport,
}

impl From<(Option<Undo>, Effect)> for Applied {
    fn from((undo, at): (Option<Undo>, Effect)) -> Self {
        Applied {
            undo,
            at,
            ..Applied::default()
        }
    }
}

/// Applies `action` to `nodes`; `seed` chooses what a seeded action picks (the files and
/// ranges of a `corrupt`).
pub async fn apply(
    rig: &Rig,
    action: &Action,
    nodes: &[NodeId],
    view: &ClusterView,
    seed: u64,
) -> Result<Applied, String> {
    let applied = match action {
        Action::Kill | Action::Stop | Action::Pause | Action::Restart => {
            process(rig, action, nodes).await?
        }
        Action::CpuLimit { share } => {
            let p = rig.nodes.placement();
            let mut at = None;
            for id in nodes {
                at = later(at, p.limit_cpu(*id, Some(*share)).await.map_err(err)?);
            }
            (Some(Undo::CpuLimit(nodes.to_vec())), at)
        }
        Action::Isolate
        | Action::Partition { .. }
        | Action::Delay { .. }
        | Action::Bandwidth { .. }
        | Action::Blackhole { .. }
        | Action::Reset { .. }
        | Action::Loss { .. }
        | Action::Heal => links(rig, action, nodes, view).await?,
        Action::Wipe | Action::WipeInPlace | Action::AddNode | Action::RemoveNode => {
            (None, membership(rig, action, nodes, view).await?)
        }
        Action::PowerLoss { keep } => {
            let power_loss = power_loss(rig, nodes, *keep, seed).await?;
            return Ok(Applied {
                undo: Some(Undo::Restart(nodes.to_vec())),
                power_loss,
                ..Applied::default()
            });
        }
        Action::DiskDelay { .. }
        | Action::DiskStall
        | Action::DiskError { .. }
        | Action::DiskFull => (Some(disk(rig, action, nodes).await?), None),
        Action::Clock { change } => {
            let p = rig.nodes.placement();
            for id in nodes {
                p.set_clock(*id, Some(*change)).await.map_err(err)?;
            }
            (Some(Undo::Clock(nodes.to_vec())), None)
        }
        Action::Corrupt { how, file, bytes } => {
            let ask = Ask {
                how: *how,
                file: *file,
                bytes: *bytes,
            };
            let (corruption, at) = corrupt(rig, ask, nodes, seed).await?;
            return Ok(Applied {
                at,
                corruption,
                ..Applied::default()
            });
        }
    };
    Ok(applied.into())
}

/// Signals to the node processes: kill, stop, pause, restart.
async fn process(
    rig: &Rig,
    action: &Action,
    nodes: &[NodeId],
) -> Result<(Option<Undo>, Effect), String> {
    let p = rig.nodes.placement();
    let mut at = None;
    for id in nodes {
        let took = match action {
            Action::Kill => p.kill(*id).await,
            Action::Stop => p.stop(*id, STOP_GRACE).await,
            Action::Pause => p.pause(*id).await,
            _ => {
                if p.is_running(*id) {
                    p.stop(*id, STOP_GRACE).await.map_err(err)?;
                }
                p.restart(*id).await.map(|()| None)
            }
        };
        at = later(at, took.map_err(err)?);
    }
    let undo = match action {
        Action::Kill | Action::Stop => Some(Undo::Restart(nodes.to_vec())),
        Action::Pause => Some(Undo::Resume(nodes.to_vec())),
        _ => None,
    };
    Ok((undo, at))
}

/// Link faults: isolation, partitions, one link mode on the target's links, and heal.
async fn links(
    rig: &Rig,
    action: &Action,
    nodes: &[NodeId],
    view: &ClusterView,
) -> Result<(Option<Undo>, Effect), String> {
    let (n, p) = (&rig.nodes, rig.nodes.placement());
    let set: BTreeSet<NodeId> = nodes.iter().copied().collect();
    let (chosen, mode) = match action {
        Action::Isolate => {
            let mut at = None;
            for id in nodes {
                at = later(at, n.isolate(*id).await.map_err(err)?);
            }
            return Ok((Some(Undo::Isolation(nodes.to_vec())), at));
        }
        Action::Heal => {
            heal_links_and_resume(rig).await;
            return Ok((None, None));
        }
        Action::Partition { groups } => {
            let groups = partition_groups(groups.as_deref(), &set, view);
            (crossing(p.links()?, &groups), LinkMode::Blackhole)
        }
        Action::Loss {
            probability,
            direction,
        } => {
            let chosen = touching(p.links()?, &set, *direction);
            let at = p.lose(&chosen, *probability).await.map_err(err)?;
            return Ok((Some(Undo::Links(chosen)), at));
        }
        _ => {
            let (mode, direction) = mode_of(action).expect("a link mode action");
            (touching(p.links()?, &set, direction), mode)
        }
    };
    let at = n.set_links(&chosen, mode).await.map_err(err)?;
    Ok((Some(Undo::Links(chosen)), at))
}

/// Changes of who the nodes are: wipes, added and removed members.
async fn membership(
    rig: &Rig,
    action: &Action,
    nodes: &[NodeId],
    view: &ClusterView,
) -> Result<Effect, String> {
    let n = &rig.nodes;
    let mut at = None;
    for id in nodes {
        let took = match action {
            Action::Wipe => n.replace(*id, view.leader).await,
            Action::WipeInPlace => n.wipe_in_place(*id).await,
            Action::AddNode => n.add(*id, view.leader).await.map(|()| None),
            _ => n.remove(*id, view.leader, STOP_GRACE).await.map(|()| None),
        };
        at = later(at, took.map_err(err)?);
    }
    Ok(at)
}

/// Disk faults, undone by passing again.
async fn disk(rig: &Rig, action: &Action, nodes: &[NodeId]) -> Result<Undo, String> {
    let p = rig.nodes.placement();
    let mode = disk_mode(action, nodes[0]).ok_or("not a disk mode")?;
    for id in nodes {
        disks::set_mode(&p.disk(*id).map_err(err)?, mode.clone()).await?;
    }
    Ok(Undo::Disks(nodes.to_vec()))
}

/// The disk mode a disk action puts the disk in; `seed` picks which calls fail.
fn disk_mode(action: &Action, seed: NodeId) -> Option<Mode> {
    Some(match action {
        Action::DiskDelay {
            latency,
            jitter,
            ops,
        } => Mode::Delay {
            latency: *latency,
            jitter: *jitter,
            ops: disks::ops(ops),
        },
        Action::DiskStall => Mode::Stall { duration: None },
        Action::DiskError {
            probability,
            on,
            drop_dirty,
        } => Mode::Error {
            probability: *probability,
            seed,
            on: *on,
            drop_dirty: *drop_dirty,
        },
        Action::DiskFull => Mode::Full,
        _ => return None,
    })
}

/// SIGKILLs `nodes` and reaps them, then drops what their disks had not made durable, or
/// keeps the part `keep` draws from `seed` (after the kill, so no write of theirs can land
/// after the loss); undone by a restart.
async fn power_loss(
    rig: &Rig,
    nodes: &[NodeId],
    keep: raftdrill_faultfs::Keep,
    seed: u64,
) -> Result<Vec<PowerLossRecord>, String> {
    let p = rig.nodes.placement();
    let mut controls = Vec::new();
    for id in nodes {
        controls.push((*id, p.disk(*id).map_err(err)?));
    }
    for id in nodes {
        if p.is_running(*id) {
            p.kill(*id).await.map_err(err)?;
        }
    }
    let mut out = Vec::new();
    for (id, control) in controls {
        let loss = raftdrill_faultfs::PowerLoss {
            keep,
            seed: seed.wrapping_add(id),
        };
        let report = disks::power_loss(&control, loss).await?;
        tracing::info!(node = id, ?report, "power loss");
        out.push(PowerLossRecord { node: id, report });
    }
    Ok(out)
}

/// Undoes a fault; returns when it was undone (Unix seconds), where the placement knows it.
pub async fn undo(rig: &Rig, undo: &Undo) -> Result<Effect, String> {
    if crate::testing::hook(crate::testing::Hook::FailUndo) {
        return Err(format!("{undo:?} not undone: {}", crate::testing::PLANTED));
    }
    let (n, p) = (&rig.nodes, rig.nodes.placement());
    let mut at = None;
    match undo {
        Undo::Restart(ids) => {
            for id in ids {
                if !p.is_running(*id) {
                    p.restart(*id).await.map_err(err)?;
                }
            }
        }
        Undo::Resume(ids) => {
            for id in ids {
                if p.is_paused(*id) {
                    p.resume(*id).await.map_err(err)?;
                }
            }
        }
        Undo::Links(links) => at = n.restore_links(links).await.map_err(err)?,
        Undo::Isolation(ids) => {
            for id in ids {
                at = later(at, n.end_isolation(*id).await.map_err(err)?);
            }
        }
        Undo::Disks(ids) => {
            for id in ids {
                disks::set_mode(&p.disk(*id).map_err(err)?, Mode::Pass).await?;
            }
        }
        Undo::CpuLimit(ids) => {
            for id in ids {
                at = later(at, p.limit_cpu(*id, None).await.map_err(err)?);
            }
        }
        Undo::Clock(ids) => {
            for id in ids {
                p.set_clock(*id, None).await.map_err(err)?;
            }
        }
    }
    Ok(at)
}

/// Every disk and link back to pass and every paused node resumed; failures are logged (the
/// final clean-up removes every rule in any case).
pub async fn heal_links_and_resume(rig: &Rig) {
    let p = rig.nodes.placement();
    for (id, control) in p.disks() {
        if let Err(e) = disks::set_mode(&control, Mode::Pass).await {
            tracing::warn!(node = id, error = %e, "cannot heal a disk");
        }
    }
    if let Err(e) = p.heal_links().await {
        tracing::warn!(error = %e, "cannot heal the links");
    }
    for id in rig.nodes.ids() {
        if let Err(e) = p.limit_cpu(id, None).await {
            tracing::warn!(node = id, error = %e, "cannot lift a CPU quota");
        }
    }
    for id in p.running_ids() {
        if p.is_paused(id)
            && let Err(e) = p.resume(id).await
        {
            tracing::warn!(node = id, error = %e, "cannot resume a node");
        }
    }
}
