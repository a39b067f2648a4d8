//! The cluster poller: every 150 ms, each node's `/status` (with a short timeout, so a paused
//! node cannot stall it) plus its CPU and RSS from /proc, folded into a [`ClusterView`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raftdrill_wire::{Role, Status};
use serde::Serialize;
use target_cluster::typ::NodeId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::rig::Rig;
use crate::report::series::NodeSeries;

/// How often the cluster is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(150);

/// A node's state as the drill sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Running and reachable from its peers.
    Up,
    /// Stopped with SIGSTOP.
    Paused,
    /// No process (killed or stopped).
    Down,
    /// Every link to and from it is cut.
    Isolated,
    /// Taken out of the membership.
    Removed,
}

impl NodeState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Paused => "paused",
            NodeState::Down => "killed",
            NodeState::Isolated => "isolated",
            NodeState::Removed => "removed",
        }
    }
}

/// One node in a [`ClusterView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    /// Node id.
    pub id: NodeId,
    /// Process and link state.
    pub state: NodeState,
    /// Its last `/status` answer in this poll, if it answered.
    pub status: Option<Status>,
    /// CPU use since the last poll, in percent of one core.
    pub cpu_pct: Option<f64>,
    /// Resident memory in bytes.
    pub rss_bytes: Option<u64>,
    /// Link faults touching it (`→2 blackhole`).
    pub link_faults: Vec<String>,
}

/// The cluster at one poll.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClusterView {
    /// Seconds since the start of the run.
    pub t: f64,
    /// Every known node.
    pub nodes: Vec<NodeView>,
    /// The node that reports itself leader with the highest term.
    pub leader: Option<NodeId>,
}

impl ClusterView {
    /// The voters as the leader (or else any answering node) reports them.
    pub fn voters(&self) -> Vec<NodeId> {
        let from = |id: Option<NodeId>| {
            self.nodes
                .iter()
                .find(|n| Some(n.id) == id || id.is_none())
                .and_then(|n| n.status.as_ref())
        };
        from(self.leader)
            .or_else(|| self.nodes.iter().find_map(|n| n.status.as_ref()))
            .map(|s| s.voters.clone())
            .unwrap_or_default()
    }

    /// Nodes that are up (running, not paused; isolated counts as up for resolution).
    pub fn up(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.state, NodeState::Up | NodeState::Isolated))
            .map(|n| n.id)
            .collect()
    }
}

/// What the poller keeps for the verdict: leader and term changes, CPU, and each node's last
/// status.
#[derive(Debug, Default)]
pub struct PollLog {
    /// (t, leader) at every change.
    pub leaders: Vec<(f64, Option<NodeId>)>,
    /// (t, highest term any node reports) at every change.
    pub terms: Vec<(f64, u64)>,
    /// The last status each node gave.
    pub last_status: BTreeMap<NodeId, Status>,
    /// Per node: sum of CPU samples and their count, after `judge_from`.
    pub cpu: BTreeMap<NodeId, (f64, u64)>,
    /// Per node, one sample a second over the whole run: state, CPU and RSS (`nodes.csv`).
    pub nodes: NodeSeries,
    /// (t, node) each time a node's process is seen with a new pid: a start or restart.
    pub started: Vec<(f64, NodeId)>,
    /// The pid each node was last seen with.
    pids: BTreeMap<NodeId, u32>,
}

impl PollLog {
    /// Elections during the load: how far the highest term moved from the term at the start
    /// of the load (each election, won or not, takes a new term).
    pub fn elections(&self) -> u64 {
        let at_start = self
            .terms
            .iter()
            .take_while(|(t, _)| *t <= 0.0)
            .last()
            .or(self.terms.first())
            .map_or(0, |(_, term)| *term);
        let last = self.terms.last().map_or(at_start, |(_, term)| *term);
        last.saturating_sub(at_start)
    }

    /// Mean CPU of the busiest node over the judged part of the run.
    pub fn busiest_cpu(&self) -> Option<f64> {
        self.cpu
            .values()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| s / *n as f64)
            .reduce(f64::max)
    }
}

/// CPU time of a process in clock ticks, and its RSS in bytes, from /proc.
fn proc_sample(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(0) ppid(1) ... utime(11) stime(12) ... rss(21) in pages.
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let rss_pages = f.get(21)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    Some((ticks, rss_pages * page))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

/// Polls until `stop`, publishing views and keeping `log`. CPU counts for the verdict from
/// `judge_from` seconds on (after warmup).
pub async fn run(
    rig: Arc<Rig>,
    views: watch::Sender<ClusterView>,
    log: Arc<Mutex<PollLog>>,
    judge_from: f64,
    stop: CancellationToken,
) {
    let hz = clock_ticks();
    let mut prev: BTreeMap<u32, (u64, Instant)> = BTreeMap::new();
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        // The node list, pids and status calls under the lock; the calls run without it.
        let (targets, calls, hosts) = {
            let mut n = rig.nodes.lock().await;
            let targets: Vec<(NodeId, bool, Option<u32>, bool)> = n
                .ids()
                .into_iter()
                .map(|id| (id, n.is_running(id), n.pid(id), n.is_paused(id)))
                .collect();
            (targets, n.status_calls(&rig.admin), n.hosts())
        };
        let mut fetches = tokio::task::JoinSet::new();
        for (id, call) in calls {
            fetches.spawn(async move { (id, call.await) });
        }
        let mut statuses = BTreeMap::new();
        while let Some(Ok((id, s))) = fetches.join_next().await {
            if let Some(s) = s {
                statuses.insert(id, s);
            }
        }
        let t = rig.now_s();
        let links = rig.nodes.lock().await;
        let mut nodes = Vec::new();
        let mut log = log.lock().expect("poll log lock");
        for (id, running, pid, paused) in targets {
            // On hosts, the host's own sampler (over SSH); here, /proc.
            let (pid, cpu_pct, rss_bytes) = match &hosts {
                Some(h) => match h.cpu_sample(id).filter(|_| running) {
                    Some(s) => (Some(s.pid), s.cpu_pct, Some(s.rss_bytes)),
                    None => (None, None, None),
                },
                None => {
                    let sample = pid.and_then(proc_sample);
                    let now = Instant::now();
                    let cpu_pct = match (pid, sample) {
                        (Some(pid), Some((ticks, _))) => {
                            let pct = prev.get(&pid).map(|(t0, i0)| {
                                let secs = (now - *i0).as_secs_f64().max(1e-3);
                                (ticks.saturating_sub(*t0)) as f64 / hz / secs * 100.0
                            });
                            prev.insert(pid, (ticks, now));
                            pct
                        }
                        _ => None,
                    };
                    (pid, cpu_pct, sample.map(|(_, rss)| rss))
                }
            };
            if let Some(pct) = cpu_pct.filter(|_| t >= judge_from) {
                let e = log.cpu.entry(id).or_default();
                e.0 += pct;
                e.1 += 1;
            }
            if let Some(pid) = pid
                && log.pids.insert(id, pid) != Some(pid)
            {
                log.started.push((t, id));
            }
            let isolated = links.is_isolated(id);
            let state = if rig.is_removed(id) {
                NodeState::Removed
            } else if !running {
                NodeState::Down
            } else if paused {
                NodeState::Paused
            } else if isolated {
                NodeState::Isolated
            } else {
                NodeState::Up
            };
            log.nodes.observe(t, id, state.name(), cpu_pct, rss_bytes);
            nodes.push(NodeView {
                id,
                state,
                status: statuses.remove(&id),
                cpu_pct,
                rss_bytes,
                link_faults: links.faults_of(id),
            });
        }
        drop(links);
        let leader = nodes
            .iter()
            .filter_map(|n| n.status.as_ref())
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| s.term)
            .map(|s| s.id);
        if log.leaders.last().is_none_or(|(_, l)| *l != leader) {
            log.leaders.push((t, leader));
        }
        let term = nodes
            .iter()
            .filter_map(|n| n.status.as_ref())
            .map(|s| s.term)
            .max();
        if let Some(term) = term
            && log.terms.last().is_none_or(|(_, t0)| *t0 != term)
        {
            log.terms.push((t, term));
        }
        for n in &nodes {
            if let Some(s) = &n.status {
                log.last_status.insert(n.id, s.clone());
            }
        }
        drop(log);
        views.send_replace(ClusterView { t, nodes, leader });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elections_count_term_changes_during_the_load() {
        let mut log = PollLog::default();
        assert_eq!(log.elections(), 0, "nothing seen, nothing counted");
        // Term 2 before the load started, a jump of two terms (a failed election, then a won
        // one) at 5 s, one more at 9 s.
        log.terms = vec![(-0.5, 1), (0.0, 2), (5.0, 4), (9.0, 5)];
        assert_eq!(log.elections(), 3);
        log.terms = vec![(0.3, 7)];
        assert_eq!(log.elections(), 0);
    }
}
