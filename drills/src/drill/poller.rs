//! The cluster poller: every 150 ms, each node's `/status` (with a short timeout, so a paused
//! node cannot stall it) plus its CPU and RSS from /proc, folded into a [`ClusterView`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raftdrill_wire::{Role, Status};
use target_cluster::typ::NodeId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::fault::Rig;
pub use crate::nodes::view::{ClusterView, NodeExit, NodeState, NodeView};
use crate::report::series::NodeSeries;

/// How often the cluster is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(150);

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
    /// Node processes that exited without the drill's doing.
    pub exits: Vec<NodeExit>,
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

    /// Records node `id`'s process at `t`: a new pid is a (re)start; `judged_cpu` counts
    /// for the verdict.
    fn observe_process(&mut self, t: f64, id: NodeId, pid: Option<u32>, judged_cpu: Option<f64>) {
        if let Some(pct) = judged_cpu {
            let e = self.cpu.entry(id).or_default();
            e.0 += pct;
            e.1 += 1;
        }
        if let Some(pid) = pid
            && self.pids.insert(id, pid) != Some(pid)
        {
            self.started.push((t, id));
        }
    }

    /// Records the leader and the highest term seen at `t`, and each node's last status.
    fn observe_cluster(&mut self, t: f64, leader: Option<NodeId>, nodes: &[NodeView]) {
        if self.leaders.last().is_none_or(|(_, l)| *l != leader) {
            self.leaders.push((t, leader));
        }
        let term = nodes
            .iter()
            .filter_map(|n| n.status.as_ref())
            .map(|s| s.term)
            .max();
        if let Some(term) = term
            && self.terms.last().is_none_or(|(_, t0)| *t0 != term)
        {
            self.terms.push((t, term));
        }
        for n in nodes {
            if let Some(s) = &n.status {
                self.last_status.insert(n.id, s.clone());
            }
        }
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

/// CPU samples of local node processes, from /proc: the previous reading of each pid.
struct CpuMeter {
    hz: f64,
    prev: BTreeMap<u32, (u64, Instant)>,
}

impl CpuMeter {
    /// The CPU share (percent of one core) of `pid` since its last reading, and its RSS.
    fn sample(&mut self, pid: u32) -> (Option<f64>, Option<u64>) {
        let Some((ticks, rss)) = proc_sample(pid) else {
            return (None, None);
        };
        let now = Instant::now();
        let pct = self.prev.get(&pid).map(|(t0, i0)| {
            let secs = (now - *i0).as_secs_f64().max(1e-3);
            (ticks.saturating_sub(*t0)) as f64 / self.hz / secs * 100.0
        });
        self.prev.insert(pid, (ticks, now));
        (pct, Some(rss))
    }
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
    let mut cpu = CpuMeter {
        hz: clock_ticks(),
        prev: BTreeMap::new(),
    };
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let view = poll_once(&rig, &mut cpu, &log, judge_from).await;
        views.send_replace(view);
    }
}

/// One poll: every node's status (asked at once, no lock held), process state and CPU.
async fn poll_once(
    rig: &Rig,
    cpu: &mut CpuMeter,
    log: &Mutex<PollLog>,
    judge_from: f64,
) -> ClusterView {
    let (n, p) = (&rig.nodes, rig.nodes.placement());
    let mut fetches = tokio::task::JoinSet::new();
    for (id, call) in n.status_calls() {
        fetches.spawn(async move { (id, call.await) });
    }
    let mut statuses = BTreeMap::new();
    while let Some(Ok((id, s))) = fetches.join_next().await {
        if let Some(s) = s {
            statuses.insert(id, s);
        }
    }
    let exits = p.take_exits().await;
    let t = rig.now_s();
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    record_exits(n, &mut log, exits, t);
    let mut nodes = Vec::new();
    for id in n.ids() {
        let running = p.is_running(id);
        // On hosts, the host's own sampler (over SSH); here, /proc.
        let (pid, cpu_pct, rss_bytes) = match p.hosts() {
            Some(h) => match h.cpu_sample(id).filter(|_| running) {
                Some(s) => (Some(s.pid), s.cpu_pct, Some(s.rss_bytes)),
                None => (None, None, None),
            },
            None => match p.pid(id) {
                Some(pid) => {
                    let (pct, rss) = cpu.sample(pid);
                    (Some(pid), pct, rss)
                }
                None => (None, None, None),
            },
        };
        log.observe_process(t, id, pid, cpu_pct.filter(|_| t >= judge_from));
        let state = if n.is_removed(id) {
            NodeState::Removed
        } else if !running {
            NodeState::Down
        } else if p.is_paused(id) {
            NodeState::Paused
        } else if p.is_isolated(id) {
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
            link_faults: p.faults_of(id),
        });
    }
    let leader = nodes
        .iter()
        .filter_map(|n| n.status.as_ref())
        .filter(|s| s.role == Role::Leader)
        .max_by_key(|s| s.term)
        .map(|s| s.id);
    log.observe_cluster(t, leader, &nodes);
    ClusterView { t, nodes, leader }
}

/// Keeps the exits of nodes that died on their own. A member the drill took out of the
/// cluster may exit by itself: that is expected. So may a node started on files the drill
/// damaged: its fault records the refusal.
fn record_exits(
    n: &crate::nodes::Nodes,
    log: &mut PollLog,
    exits: Vec<(NodeId, String, String)>,
    t: f64,
) {
    for (node, status, log_tail) in exits {
        if !n.is_removed(node) && !n.probation_exit(node, &status, &log_tail) {
            tracing::warn!(node, %status, "a node exited on its own");
            log.exits.push(NodeExit {
                node,
                at_s: t,
                status,
                log_tail,
            });
        }
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
