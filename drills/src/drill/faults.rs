//! The fault schedule: resolve each fault's target when it fires, apply it, undo it after its
//! `for`, and record what happened.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftdrill_wire::AddMember;
use serde::Serialize;
use target_cluster::typ::NodeId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use raftdrill_faultfs::Mode;

use super::disks;
use super::links::{Link, LinkTable};
use super::nodes::Nodes;
use super::on_hosts;
use super::poller::ClusterView;
use super::rig::Rig;
use crate::admin::AdminError;
use crate::proxy::LinkMode;
use crate::scenario::{Action, Direction, FaultSpec, Selector};

/// How long a node gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a membership change may take.
const ADMIN_DEADLINE: Duration = Duration::from_secs(30);

/// One fault as it happened, for the summary and the live view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRecord {
    /// When it was scheduled, in seconds from the start.
    pub scheduled_s: f64,
    /// When it fired.
    pub at_s: f64,
    /// The action.
    pub action: String,
    /// The target as written.
    pub target: String,
    /// The nodes it resolved to.
    pub resolved: Vec<NodeId>,
    /// When it was undone (by its `for`, or by the final heal).
    pub healed_at_s: Option<f64>,
    /// The leader when it fired, if the fault hit it.
    pub hit_leader: Option<NodeId>,
    /// Whether the action takes its target out of service (a leader it hits must be
    /// replaced), as opposed to slowing it down.
    pub deposes: bool,
    /// Why it could not be carried out, if it could not.
    pub error: Option<String>,
    /// Whether something is left to undo (cleared once healed).
    #[serde(skip)]
    pub pending_undo: bool,
}

/// What undoes an applied fault.
#[derive(Debug, Clone)]
pub enum Undo {
    /// Start the nodes again.
    Restart(Vec<NodeId>),
    /// SIGCONT the nodes.
    Resume(Vec<NodeId>),
    /// Links back to pass.
    Links(Vec<Link>),
    /// Disks back to pass.
    Disks(Vec<NodeId>),
    /// Nodes on hosts back in touch with their peers and clients.
    Isolation(Vec<NodeId>),
}

/// Picks the nodes a selector means in `view`. `seed` decides `any`.
pub fn resolve(sel: &Selector, view: &ClusterView, seed: u64) -> Result<Vec<NodeId>, String> {
    let up = view.up();
    let mut voters = view.voters();
    voters.sort_unstable();
    let minority = || -> Vec<NodeId> {
        let k = voters.len().saturating_sub(1) / 2;
        voters
            .iter()
            .copied()
            .filter(|v| Some(*v) != view.leader)
            .take(k)
            .collect()
    };
    let nodes = match sel {
        Selector::Leader => vec![view.leader.ok_or("no leader to target")?],
        Selector::NthFollower(n) => {
            let f = voters
                .iter()
                .copied()
                .filter(|v| Some(*v) != view.leader && up.contains(v))
                .nth(n - 1);
            vec![f.ok_or_else(|| format!("there is no follower number {n} up"))?]
        }
        Selector::Follower => {
            let f = voters
                .iter()
                .copied()
                .find(|v| Some(*v) != view.leader && up.contains(v));
            vec![f.ok_or("no follower is up")?]
        }
        Selector::Any => {
            if up.is_empty() {
                return Err("no node is up".into());
            }
            vec![up[(seed as usize) % up.len()]]
        }
        Selector::Minority => minority(),
        Selector::Majority => {
            let m = minority();
            voters.iter().copied().filter(|v| !m.contains(v)).collect()
        }
        Selector::Node(id) => {
            if !view.nodes.iter().any(|n| n.id == *id) {
                return Err(format!("node {id} does not exist (yet)"));
            }
            vec![*id]
        }
        Selector::All => view.nodes.iter().map(|n| n.id).collect(),
    };
    if nodes.is_empty() {
        return Err(format!("{sel} selects no node"));
    }
    Ok(nodes)
}

/// Runs the schedule until it is done or `stop` fires. Undo steps still pending at `stop` are
/// left to the final heal.
pub async fn run_schedule(
    rig: Arc<Rig>,
    faults: Vec<FaultSpec>,
    views: watch::Receiver<ClusterView>,
    records: Arc<Mutex<Vec<FaultRecord>>>,
    seed: u64,
    stop: CancellationToken,
) {
    let mut undos = tokio::task::JoinSet::new();
    // Fault times count from the run's clock, as every other figure does.
    let origin = tokio::select! {
        o = rig.clock.started() => o,
        _ = stop.cancelled() => return,
    };
    for (i, f) in faults.into_iter().enumerate() {
        let when = origin + f.at;
        tokio::select! {
            _ = tokio::time::sleep_until(when) => {}
            _ = stop.cancelled() => break,
        }
        let view = views.borrow().clone();
        let mut rec = FaultRecord {
            scheduled_s: f.at.as_secs_f64(),
            at_s: rig.now_s(),
            action: f.action.name().into(),
            target: f.target.to_string(),
            resolved: Vec::new(),
            healed_at_s: None,
            hit_leader: None,
            deposes: f.action.deposes(),
            error: None,
            pending_undo: false,
        };
        let target = match f.action {
            // A new node has no id yet: it gets the next one.
            Action::AddNode => Ok(vec![view.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1]),
            _ => resolve(&f.target, &view, seed.wrapping_add(i as u64)),
        };
        let applied = match target {
            Err(e) => Err(e),
            Ok(nodes) => {
                rec.resolved = nodes.clone();
                rec.hit_leader = view.leader.filter(|l| nodes.contains(l));
                apply(&rig, &f.action, &nodes, &view).await
            }
        };
        // On hosts, the fault counts from when the host carried it out, not from when the
        // controller asked (an SSH call's latency is the tool's, not the store's).
        // It then lasts `for` from that moment too: the undo waits less the time the call
        // took to come back.
        let mut late = Duration::ZERO;
        let applied = applied.map(|(undo, effective_s)| {
            if let Some(t) = effective_s {
                rec.at_s = t.max(rec.at_s);
                late = Duration::from_secs_f64((rig.now_s() - rec.at_s).max(0.0));
            }
            undo
        });
        tracing::info!(fault = %f, resolved = ?rec.resolved, ok = applied.is_ok(), "fault fired");
        let index = {
            let mut records = records.lock().expect("fault records lock");
            match &applied {
                Err(e) => rec.error = Some(e.clone()),
                Ok(undo) => rec.pending_undo = undo.is_some(),
            }
            records.push(rec);
            records.len() - 1
        };
        if let (Ok(Some(undo)), Some(after)) = (applied, f.undo_after) {
            let (rig, records, stop) = (rig.clone(), records.clone(), stop.clone());
            undos.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(after.saturating_sub(late)) => {}
                    _ = stop.cancelled() => return,
                }
                let healed = match undo_fault(&rig, &undo).await {
                    Ok(at) => at.unwrap_or_else(|| rig.now_s()),
                    Err(e) => {
                        tracing::warn!(error = %e, "undo failed; the final heal will retry");
                        return;
                    }
                };
                let mut records = records.lock().expect("fault records lock");
                records[index].healed_at_s = Some(healed);
                records[index].pending_undo = false;
            });
        }
    }
    tokio::select! {
        _ = async { while undos.join_next().await.is_some() {} } => {}
        _ = stop.cancelled() => undos.abort_all(),
    }
}

async fn link_fault(
    rig: &Rig,
    links: impl FnOnce(&Nodes) -> Result<Vec<Link>, String>,
    mode: LinkMode,
) -> Result<Option<Undo>, String> {
    let mut n = rig.nodes.lock().await;
    let chosen = links(&n)?;
    n.set_links(&chosen, mode);
    Ok(Some(Undo::Links(chosen)))
}

/// The sides of a partition: the scenario's `groups`, or the target nodes and the rest.
pub(super) fn partition_groups(
    groups: Option<&[Vec<u64>]>,
    set: &BTreeSet<NodeId>,
    view: &ClusterView,
) -> Vec<BTreeSet<NodeId>> {
    match groups {
        Some(g) => g.iter().map(|g| g.iter().copied().collect()).collect(),
        None => {
            let rest = view
                .nodes
                .iter()
                .map(|n| n.id)
                .filter(|i| !set.contains(i))
                .collect();
            vec![set.clone(), rest]
        }
    }
}

/// Applies `action` to `nodes`; returns what would undo it and, on hosts, the second of the
/// run at which the hosts carried it out.
async fn apply(
    rig: &Rig,
    action: &Action,
    nodes: &[NodeId],
    view: &ClusterView,
) -> Result<(Option<Undo>, Option<f64>), String> {
    if let Some(h) = rig.hosts().await {
        let (undo, at_unix) = on_hosts::apply(rig, &h, action, nodes, view).await?;
        return Ok((undo, at_unix.map(|t| rig.run_s_at_unix(t))));
    }
    apply_here(rig, action, nodes, view)
        .await
        .map(|u| (u, None))
}

/// [`apply`] for nodes on this machine.
async fn apply_here(
    rig: &Rig,
    action: &Action,
    nodes: &[NodeId],
    view: &ClusterView,
) -> Result<Option<Undo>, String> {
    let set: BTreeSet<NodeId> = nodes.iter().copied().collect();
    match action {
        Action::Kill => {
            {
                let mut n = rig.nodes.lock().await;
                for id in nodes {
                    n.kill(*id)?;
                }
            }
            rig.mark_down(nodes).await;
            Ok(Some(Undo::Restart(nodes.to_vec())))
        }
        Action::Stop => {
            for id in nodes {
                rig.stop_node(*id, STOP_GRACE).await?;
            }
            Ok(Some(Undo::Restart(nodes.to_vec())))
        }
        Action::Pause => {
            let mut n = rig.nodes.lock().await;
            for id in nodes {
                n.supervisor()?.pause(*id).map_err(|e| e.to_string())?;
            }
            Ok(Some(Undo::Resume(nodes.to_vec())))
        }
        Action::Restart => {
            for id in nodes {
                if rig.nodes.lock().await.is_running(*id) {
                    rig.stop_node(*id, STOP_GRACE).await?;
                }
                rig.nodes.lock().await.restart(*id)?;
            }
            Ok(None)
        }
        Action::Wipe => {
            for id in nodes {
                wipe(rig, view, *id).await?;
            }
            Ok(None)
        }
        Action::WipeInPlace => {
            for id in nodes {
                rig.nodes.lock().await.wipe_in_place(*id)?;
            }
            Ok(None)
        }
        Action::Isolate => {
            link_fault(
                rig,
                |n| n.touching(&set, Direction::Both),
                LinkMode::Blackhole,
            )
            .await
        }
        Action::Partition { groups } => {
            let groups = partition_groups(groups.as_deref(), &set, view);
            link_fault(rig, |n| n.crossing(&groups), LinkMode::Blackhole).await
        }
        Action::Delay { .. }
        | Action::Bandwidth { .. }
        | Action::Blackhole { .. }
        | Action::Reset { .. } => {
            let (mode, direction) = super::links::mode_of(action).expect("a link mode action");
            link_fault(rig, |n| n.touching(&set, direction), mode).await
        }
        Action::Heal => {
            heal_links_and_resume(rig).await;
            Ok(None)
        }
        Action::AddNode => add_node(rig, view, nodes[0]).await.map(|_| None),
        Action::DiskDelay {
            latency,
            jitter,
            ops,
        } => {
            let mode = Mode::Delay {
                latency: *latency,
                jitter: *jitter,
                ops: disks::ops(ops),
            };
            disk_fault(rig, nodes, mode).await
        }
        Action::DiskStall => disk_fault(rig, nodes, Mode::Stall { duration: None }).await,
        Action::DiskError { probability } => {
            let mode = Mode::Error {
                probability: *probability,
                seed: rig.clock.origin().map_or(0, |_| nodes[0]),
            };
            disk_fault(rig, nodes, mode).await
        }
        Action::DiskFull => disk_fault(rig, nodes, Mode::Full).await,
        Action::PowerLoss => {
            let mut controls = Vec::new();
            for id in nodes {
                controls.push((*id, rig.disk(*id).await?));
            }
            {
                // SIGKILL and reap first, so no write of the node can land after the loss.
                let mut n = rig.nodes.lock().await;
                for id in nodes {
                    if n.is_running(*id) {
                        n.kill(*id)?;
                    }
                }
            }
            rig.mark_down(nodes).await;
            for (id, control) in controls {
                let lost = disks::power_loss(&control).await?;
                tracing::info!(node = id, ?lost, "power loss");
            }
            Ok(Some(Undo::Restart(nodes.to_vec())))
        }
        Action::RemoveNode => {
            for id in nodes {
                remove_node(rig, view, *id).await?;
                rig.removed.lock().expect("removed lock").insert(*id);
                rig.stop_node(*id, STOP_GRACE).await?;
            }
            Ok(None)
        }
    }
}

/// Undoes a fault; returns when it was undone, in run seconds, when hosts said (a heal on
/// hosts counts from when the host carried it out, as the fault did).
async fn undo_fault(rig: &Rig, undo: &Undo) -> Result<Option<f64>, String> {
    if let Some(h) = rig.hosts().await {
        let at = on_hosts::undo(&h, undo).await?;
        return Ok(at.map(|t| rig.run_s_at_unix(t)));
    }
    let mut n = rig.nodes.lock().await;
    match undo {
        Undo::Restart(ids) => {
            for id in ids {
                if !n.is_running(*id) {
                    n.restart(*id)?;
                }
            }
        }
        Undo::Resume(ids) => {
            for id in ids {
                if n.is_paused(*id) {
                    n.supervisor()?.resume(*id).map_err(|e| e.to_string())?;
                }
            }
        }
        Undo::Links(links) => n.set_links(links, LinkMode::Pass),
        Undo::Isolation(_) => return Err("isolation by iptables is made on hosts only".into()),
        Undo::Disks(ids) => {
            drop(n);
            for id in ids {
                disks::set_mode(&rig.disk(*id).await?, Mode::Pass).await?;
            }
        }
    }
    Ok(None)
}

/// Switches the disks of `nodes` into `mode`; undone by passing again.
async fn disk_fault(rig: &Rig, nodes: &[NodeId], mode: Mode) -> Result<Option<Undo>, String> {
    for id in nodes {
        disks::set_mode(&rig.disk(*id).await?, mode.clone()).await?;
    }
    Ok(Some(Undo::Disks(nodes.to_vec())))
}

/// Every link and disk back to pass and every paused node resumed.
async fn heal_links_and_resume(rig: &Rig) {
    if let Some(h) = rig.hosts().await {
        on_hosts::heal(&h).await;
        return;
    }
    let controls = match &*rig.disks.lock().await {
        Some(d) => d.controls(),
        None => Vec::new(),
    };
    for (id, control) in controls {
        if let Err(e) = disks::set_mode(&control, Mode::Pass).await {
            tracing::warn!(node = id, error = %e, "cannot heal a disk");
        }
    }
    let mut n = rig.nodes.lock().await;
    n.heal_links();
    if let Ok(s) = n.supervisor() {
        for id in s.running_ids() {
            if s.is_paused(id) {
                let _ = s.resume(id);
            }
        }
    }
}

/// The end-of-run heal: links, paused nodes, and every member that is down is started again.
/// Returns the ids restarted.
pub async fn heal_everything(rig: &Rig, records: &Mutex<Vec<FaultRecord>>) -> Vec<NodeId> {
    heal_links_and_resume(rig).await;
    let mut restarted = Vec::new();
    if let Some(h) = rig.hosts().await {
        restarted = on_hosts::restart_down(rig, &h).await;
    } else {
        let mut n = rig.nodes.lock().await;
        for id in n.ids() {
            if !n.is_running(id) && !rig.is_removed(id) && n.restart(id).is_ok() {
                restarted.push(id);
            }
        }
    }
    let now = rig.now_s();
    for r in records.lock().expect("fault records lock").iter_mut() {
        if r.pending_undo {
            r.healed_at_s = Some(now);
            r.pending_undo = false;
        }
    }
    restarted
}

/// Removes node `id` from the membership, deletes its data and brings it back empty as a
/// voter: the reference node through raftdrill's admin API, an etcd member through etcd's
/// member API (it comes back with a new member id, as etcd's runbook has it).
async fn wipe(rig: &Rig, view: &ClusterView, id: NodeId) -> Result<(), String> {
    if let Nodes::Etcd(e) = &mut *rig.nodes.lock().await {
        return e.wipe(id).await.map_err(|e| e.to_string());
    }
    remove_member(rig, view, id).await?;
    let addr = {
        let mut n = rig.nodes.lock().await;
        let Nodes::Reference(r) = &mut *n else {
            unreachable!("checked above")
        };
        r.cluster.wipe(id).map_err(|e| e.to_string())?;
        r.cluster.nodes()[&id].addr.to_string()
    };
    add_voter(rig, view, id, addr).await
}

/// Takes node `id` out of the membership.
async fn remove_node(rig: &Rig, view: &ClusterView, id: NodeId) -> Result<(), String> {
    if let Nodes::Etcd(e) = &mut *rig.nodes.lock().await {
        return e.remove_member(id).await.map_err(|e| e.to_string());
    }
    remove_member(rig, view, id).await
}

/// Starts node `id` and adds it as a voter. On the reference cluster it gets its own link
/// proxies, and no lock is held while they start or while its peers are told of them; etcd
/// adds the member through its member API.
async fn add_node(rig: &Rig, view: &ClusterView, id: NodeId) -> Result<NodeId, String> {
    if let Nodes::Etcd(e) = &mut *rig.nodes.lock().await {
        return e.add_member().await.map_err(|e| e.to_string());
    }
    let (others, addr, proxied) = {
        let mut n = rig.nodes.lock().await;
        let Nodes::Reference(r) = &mut *n else {
            unreachable!("checked above")
        };
        let others = r
            .cluster
            .nodes()
            .iter()
            .map(|(id, i)| (*id, i.addr))
            .collect();
        let addr = r.cluster.prepare_new_node(id).map_err(|e| e.to_string())?;
        (others, addr, r.links.is_some())
    };
    if proxied {
        let started = LinkTable::start_for_new_node(id, addr, &others)
            .await
            .map_err(|e| e.to_string())?;
        let added = {
            let mut n = rig.nodes.lock().await;
            let Nodes::Reference(r) = &mut *n else {
                unreachable!("checked above")
            };
            let added = r
                .links
                .as_mut()
                .map(|t| t.insert(started))
                .unwrap_or_default();
            // A node that is down learns the address at its next start.
            for ((from, to), proxy) in &added {
                r.cluster.set_peer_addr(*from, *to, proxy.to_string());
            }
            added
        };
        for ((from, to), proxy) in added {
            if from != id {
                let url = rig.url(from).await;
                let _ = rig
                    .admin
                    .set_peer(&url, to, &proxy.to_string(), Duration::from_secs(2))
                    .await;
            }
        }
    }
    {
        let mut n = rig.nodes.lock().await;
        let Nodes::Reference(r) = &mut *n else {
            unreachable!("checked above")
        };
        r.cluster.launch_joining(id).map_err(|e| e.to_string())?;
    }
    add_voter(rig, view, id, addr.to_string()).await?;
    Ok(id)
}

/// Adds node `id` at `addr` as a learner and promotes it to voter.
pub(super) async fn add_voter(
    rig: &Rig,
    view: &ClusterView,
    id: NodeId,
    addr: String,
) -> Result<(), String> {
    let member = AddMember {
        id,
        addr,
        voter: true,
    };
    let member = &member;
    on_cluster(rig, view, |base| async move {
        rig.admin
            .add_member(&base, member, ADMIN_DEADLINE)
            .await
            .map(|_| ())
    })
    .await
}

/// Takes node `id` out of the membership.
pub(super) async fn remove_member(rig: &Rig, view: &ClusterView, id: NodeId) -> Result<(), String> {
    on_cluster(rig, view, |base| async move {
        rig.admin
            .remove_member(&base, id, ADMIN_DEADLINE)
            .await
            .map(|_| ())
    })
    .await
}

/// Makes an admin call on the cluster: the leader first, then any node that is up; tried
/// again until a deadline.
async fn on_cluster<F, Fut>(rig: &Rig, view: &ClusterView, call: F) -> Result<(), String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), AdminError>>,
{
    let mut order: Vec<NodeId> = view.leader.into_iter().collect();
    order.extend(view.up().into_iter().filter(|i| Some(*i) != view.leader));
    let deadline = tokio::time::Instant::now() + ADMIN_DEADLINE;
    let mut last = String::from("no node is up");
    while tokio::time::Instant::now() < deadline {
        for id in &order {
            match call(rig.url(*id).await).await {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("node {id}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use raftdrill_wire::{Role, Status};

    use super::*;
    use crate::drill::poller::{NodeState, NodeView};

    fn view(leader: NodeId, n: u64, down: &[NodeId]) -> ClusterView {
        let nodes = (1..=n)
            .map(|id| NodeView {
                id,
                state: if down.contains(&id) {
                    NodeState::Down
                } else {
                    NodeState::Up
                },
                status: (!down.contains(&id)).then(|| Status {
                    id,
                    role: if id == leader {
                        Role::Leader
                    } else {
                        Role::Follower
                    },
                    term: 2,
                    leader: Some(leader),
                    last_log_index: 10,
                    committed: 10,
                    applied: 10,
                    snapshot_index: 0,
                    voters: (1..=n).collect(),
                    learners: vec![],
                    log_commits: None,
                }),
                cpu_pct: None,
                rss_bytes: None,
                link_faults: vec![],
            })
            .collect();
        ClusterView {
            t: 1.0,
            nodes,
            leader: Some(leader),
        }
    }

    #[test]
    fn selectors_resolve_against_the_current_view() {
        let v = view(2, 5, &[1]);
        assert_eq!(resolve(&Selector::Leader, &v, 0).unwrap(), vec![2]);
        assert_eq!(
            resolve(&Selector::Follower, &v, 0).unwrap(),
            vec![3],
            "node 1 is down"
        );
        assert_eq!(
            resolve(&Selector::Minority, &v, 0).unwrap(),
            vec![1, 3],
            "two of five, not the leader"
        );
        assert_eq!(resolve(&Selector::Majority, &v, 0).unwrap(), vec![2, 4, 5]);
        assert_eq!(resolve(&Selector::NthFollower(2), &v, 0).unwrap(), vec![4]);
        assert!(resolve(&Selector::NthFollower(4), &v, 0).is_err());
        assert_eq!(resolve(&Selector::All, &v, 0).unwrap().len(), 5);
        assert_eq!(resolve(&Selector::Node(4), &v, 0).unwrap(), vec![4]);
        assert!(resolve(&Selector::Node(9), &v, 0).is_err());
        let any = resolve(&Selector::Any, &v, 7).unwrap();
        assert!(v.up().contains(&any[0]));
        assert_eq!(
            any,
            resolve(&Selector::Any, &v, 7).unwrap(),
            "the seed decides"
        );
    }

    #[test]
    fn without_a_leader_a_leader_fault_cannot_resolve() {
        let mut v = view(1, 3, &[]);
        v.leader = None;
        assert!(resolve(&Selector::Leader, &v, 0).is_err());
    }
}
