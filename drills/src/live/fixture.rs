//! Test fixtures: snapshots, cluster views and fault records for the leader-kill scenario, and
//! a [`state`] 40 s into a run (a leader kill at 15 s, healed at 25 s).

use loadgen::Snapshot;
use loadgen::metrics::{Counts, LatencySummary};
use raftdrill_wire::{Role, Status};

use super::ViewSpec;
use super::state::ViewState;
use crate::drill::Phase;
use crate::drill::poller::{ClusterView, NodeState, NodeView};
use crate::fault::FaultRecord;
use crate::scenario::{Scenario, builtin};

/// The built-in leader-kill scenario (40 s, kill at 15 s for 10 s, p99 800/1500 ms).
pub fn scenario() -> Scenario {
    builtin("leader-kill").expect("built in").expect("parses")
}

/// What the view is told of that scenario.
pub fn spec() -> ViewSpec {
    ViewSpec::of(&scenario())
}

/// One second of load: `tps` operations, `failed` of them failed, the given p99.
pub fn snapshot(t: f64, tps: f64, p99: f64, failed: u64) -> Snapshot {
    let ops = tps as u64;
    let counts = Counts {
        ops,
        ok: ops - failed,
        fail: failed,
        late: 2,
        ..Counts::default()
    };
    Snapshot {
        t,
        interval: 1.0,
        counts,
        tps,
        latency: LatencySummary {
            count: ops,
            p50: p99 / 4.0,
            p90: p99 / 2.0,
            p99,
            p999: p99 * 2.0,
            max: p99 * 3.0,
            mean: p99 / 3.0,
        },
        total: counts,
        total_per_kind: [(
            loadgen::workload::OpKind::Update,
            loadgen::metrics::Outcomes {
                ok: ops - failed,
                fail: failed,
                unknown: 0,
            },
        )]
        .into(),
        warmup: t <= 3.0,
        ..Snapshot::default()
    }
}

fn status(id: u64, leader: Option<u64>) -> Status {
    Status {
        id,
        role: if leader == Some(id) {
            Role::Leader
        } else {
            Role::Follower
        },
        term: 2,
        leader,
        last_log_index: 4200 + id,
        committed: 4200,
        applied: 4100 + id,
        snapshot_index: 0,
        voters: vec![1, 2, 3],
        learners: vec![],
        log_commits: None,
    }
}

/// Three nodes, all up, with `leader` leading.
pub fn cluster(t: f64, leader: Option<u64>) -> ClusterView {
    let nodes = (1..=3)
        .map(|id| NodeView {
            id,
            state: NodeState::Up,
            status: Some(status(id, leader)),
            cpu_pct: Some(10.0 * id as f64),
            rss_bytes: Some(id * 20 * 1024 * 1024),
            link_faults: Vec::new(),
        })
        .collect();
    ClusterView { t, nodes, leader }
}

/// A kill of the leader (node 1) at `at`; `pending`: not healed yet.
pub fn fault(at: f64, pending: bool) -> FaultRecord {
    record(at, "kill", pending)
}

/// `action` on the leader (node 1) at `at`; `pending`: not healed yet.
pub fn record(at: f64, action: &str, pending: bool) -> FaultRecord {
    FaultRecord {
        scheduled_s: at,
        at_s: at,
        action: action.into(),
        target: "leader".into(),
        resolved: vec![1],
        healed_at_s: None,
        hit_leader: Some(1),
        deposes: true,
        error: None,
        heal_error: None,
        corruption: Vec::new(),
        power_loss: Vec::new(),
        pending_undo: pending,
        undo: None,
    }
}

/// A state 40 s into leader-kill: 300 ops/s; at 16 s 120 ops/s with 25 % errors (success
/// rate ✗) and p99 900 ms (⚠); node 1 killed at 15 s and back at 25 s, node 2 leading from
/// 16.4 s; node 3 with a delayed link at the end.
pub fn state() -> ViewState {
    let mut v = ViewState::new(&spec());
    v.observe_phase(Phase::Warmup);
    for t in 1..=40u32 {
        let ts = f64::from(t);
        if t == 4 {
            v.observe_phase(Phase::Load);
        }
        if t == 15 {
            v.observe_faults(&[fault(15.0, true)]);
        }
        if t == 26 {
            let mut f = fault(15.0, false);
            f.healed_at_s = Some(25.0);
            v.observe_faults(&[f]);
        }
        let (tps, p99, failed) = match t {
            16 => (120.0, 900.0, 30),
            17 => (250.0, 650.0, 0),
            _ => (300.0, 12.0, 0),
        };
        v.observe_snapshot(&snapshot(ts, tps, p99, failed));
        let leader = match t {
            ..=14 => Some(1),
            15 => None,
            _ => Some(2),
        };
        let mut c = cluster(ts + 0.4, leader);
        if (15..25).contains(&t) {
            c.nodes[0].state = NodeState::Down;
            c.nodes[0].status = None;
            c.nodes[0].cpu_pct = None;
            c.nodes[0].rss_bytes = None;
        }
        if t == 40 {
            c.nodes[2].link_faults = vec!["→1 delay".into()];
        }
        v.observe_cluster(&c);
    }
    v.tick(40.7);
    v
}
