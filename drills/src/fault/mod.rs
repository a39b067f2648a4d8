//! The fault schedule: resolve each fault's target when it fires, apply it, undo it after its
//! `for`, record what happened, and heal whatever is left at the end. Every action is written
//! once ([`apply`]) against the nodes' primitives, for any store on any placement.
//!
//! # Layout
//! - this file: [`Rig`], [`FaultRecord`], [`run_schedule`], [`heal_everything`]
//! - [`apply`]: each action and its undo
//! - [`resolve`]: target selectors and partition sides
//! - [`support`]: which (placement, store, action) combinations cannot be run, and why

pub mod apply;
pub mod corrupt;
pub mod resolve;
pub mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::RunClock;
use serde::Serialize;
use target_cluster::typ::NodeId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use apply::Undo;
use apply::{Applied, apply, heal_links_and_resume, undo};
pub use resolve::resolve;

use crate::nodes::Nodes;
use crate::nodes::view::ClusterView;
use crate::scenario::{Action, FaultSpec};

/// The nodes of a drill on the run's clock: what the fault schedule and the poller share.
pub struct Rig {
    /// The nodes under test.
    pub nodes: Nodes,
    /// The run's clock (t = 0 when the load's worker pool is ready), shared with the load.
    pub clock: Arc<RunClock>,
}

/// How long a node gets to stop after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The later of two moments a placement reported.
pub fn later(a: crate::placement::Effect, b: crate::placement::Effect) -> crate::placement::Effect {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl Rig {
    /// Seconds since the start of the run (0 before it).
    pub fn now_s(&self) -> f64 {
        self.clock.now_s()
    }

    /// The second of the run at Unix time `unix_s` of this machine's clock.
    pub fn run_s_at_unix(&self, unix_s: f64) -> f64 {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.now_s() - (now_unix - unix_s)
    }
}

/// One fault as it happened, for the summary and the live view.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
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
    /// Why its undo failed, if it did (at its `for`, or in the final heal): the fault then
    /// stayed in effect past its schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heal_error: Option<String>,
    /// The files a `corrupt` damaged, and what each node made of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corruption: Vec<corrupt::Corruption>,
    /// What a `power-loss` dropped and kept of each node's unsynced writes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub power_loss: Vec<apply::PowerLossRecord>,
    /// Whether something is left to undo (cleared once healed).
    #[serde(skip)]
    pub pending_undo: bool,
    /// What undoes it, while something is left to undo.
    #[serde(skip)]
    pub undo: Option<Undo>,
}

/// The shared record of every fault fired so far.
pub type Records = Arc<Mutex<Vec<FaultRecord>>>;

fn lock(records: &Records) -> std::sync::MutexGuard<'_, Vec<FaultRecord>> {
    records.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the schedule until it is done or `stop` fires. Undo steps still pending at `stop` are
/// left to the final heal.
pub async fn run_schedule(
    rig: Arc<Rig>,
    faults: Vec<FaultSpec>,
    views: watch::Receiver<ClusterView>,
    records: Records,
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
        tokio::select! {
            _ = tokio::time::sleep_until(origin + f.at) => {}
            _ = stop.cancelled() => break,
        }
        let view = views.borrow().clone();
        let (fired, late) = fire(&rig, &f, &view, seed.wrapping_add(i as u64)).await;
        let index = {
            let mut r = lock(&records);
            r.push(fired.record);
            r.len() - 1
        };
        if let (Some(undo), Some(after)) = (fired.undo, f.undo_after) {
            let (rig, records, stop) = (rig.clone(), records.clone(), stop.clone());
            undos.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(after.saturating_sub(late)) => {}
                    _ = stop.cancelled() => return,
                }
                undo_later(&rig, &undo, &records, index).await;
            });
        }
    }
    tokio::select! {
        _ = async { while undos.join_next().await.is_some() {} } => {}
        _ = stop.cancelled() => undos.abort_all(),
    }
}

/// A fault that fired: its record, and what undoes it.
struct Fired {
    record: FaultRecord,
    undo: Option<Undo>,
}

/// Resolves and applies fault `f` against `view`; returns what happened and how late the
/// placement said it took effect after it was asked (the undo waits that much less, so the
/// fault lasts its `for` from the moment it took effect).
async fn fire(rig: &Rig, f: &FaultSpec, view: &ClusterView, seed: u64) -> (Fired, Duration) {
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
        heal_error: None,
        corruption: Vec::new(),
        power_loss: Vec::new(),
        pending_undo: false,
        undo: None,
    };
    let target = match f.action {
        // A new node has no id yet: it gets the next one.
        Action::AddNode => Ok(vec![view.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1]),
        _ => resolve(&f.target, view, seed),
    };
    let applied = match target {
        Err(e) => Err(e),
        Ok(nodes) => {
            rec.resolved = nodes.clone();
            rec.hit_leader = view.leader.filter(|l| nodes.contains(l));
            apply(rig, &f.action, &nodes, view, seed).await
        }
    };
    // On hosts, the fault counts from when the host carried it out, not from when the
    // controller asked (an SSH call's latency is the tool's, not the store's).
    let mut late = Duration::ZERO;
    let undo = match applied {
        Ok(Applied {
            undo,
            at: effective,
            corruption,
            power_loss,
        }) => {
            rec.corruption = corruption;
            rec.power_loss = power_loss;
            if let Some(t) = effective {
                rec.at_s = rig.run_s_at_unix(t).max(rec.at_s);
                late = Duration::from_secs_f64((rig.now_s() - rec.at_s).max(0.0));
            }
            rec.pending_undo = undo.is_some();
            rec.undo = undo.clone();
            undo
        }
        Err(e) => {
            rec.error = Some(e);
            None
        }
    };
    tracing::info!(fault = %f, resolved = ?rec.resolved, ok = rec.error.is_none(), "fault fired");
    (Fired { record: rec, undo }, late)
}

/// Undoes record `index`'s fault and marks it healed (from when the placement carried the
/// undo out, where it says). A failed undo is recorded on the fault (it stayed in effect past
/// its schedule, which fails the run) and left to the final heal to try again.
async fn undo_later(rig: &Rig, u: &Undo, records: &Records, index: usize) {
    let result = undo(rig, u).await;
    let mut r = lock(records);
    match result {
        Ok(at) => {
            r[index].healed_at_s = Some(at.map_or_else(|| rig.now_s(), |t| rig.run_s_at_unix(t)));
            r[index].pending_undo = false;
            r[index].undo = None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "undo failed; the final heal will try again");
            r[index].heal_error = Some(e);
        }
    }
}

/// The end-of-run heal. Each fault still in effect is undone one by one, and each failure is
/// recorded on its fault; then, as a net under those, links, disks and paused nodes are put
/// back and every member that is down (and was not removed on purpose) is started again.
/// Returns the ids that net restarted.
pub async fn heal_everything(rig: &Rig, records: &Records) -> Vec<NodeId> {
    let pending: Vec<(usize, Undo)> = lock(records)
        .iter()
        .enumerate()
        .filter(|(_, r)| r.pending_undo)
        .filter_map(|(i, r)| Some((i, r.undo.clone()?)))
        .collect();
    for (index, u) in pending {
        let result = undo(rig, &u).await;
        let now = rig.now_s();
        let mut r = lock(records);
        r[index].pending_undo = false;
        r[index].undo = None;
        match result {
            Ok(at) => {
                r[index].healed_at_s = Some(at.map_or(now, |t| rig.run_s_at_unix(t)));
            }
            Err(e) => {
                tracing::warn!(error = %e, fault = %r[index].action, "the final heal failed");
                r[index].heal_error.get_or_insert(e);
            }
        }
    }
    heal_links_and_resume(rig).await;
    let p = rig.nodes.placement();
    let mut restarted = Vec::new();
    for id in rig.nodes.ids() {
        if !p.is_running(id) && !rig.nodes.is_removed(id) && p.restart(id).await.is_ok() {
            restarted.push(id);
        }
    }
    restarted
}
