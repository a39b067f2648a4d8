//! The cluster as the drill last saw it: each node's state, status, CPU and link faults, and
//! who leads. The poller (`crate::drill::poller`) makes one every 150 ms; faults resolve their
//! targets against it, and the live view draws it.

use raftdrill_wire::Status;
use serde::Serialize;
use target_cluster::typ::NodeId;

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

/// A node process that exited without the drill's doing, as the poller saw it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct NodeExit {
    /// The node.
    pub node: NodeId,
    /// When the exit was seen, seconds from the start of the run.
    pub at_s: f64,
    /// How it ended (`exit status: 101`, `signal: 9 (SIGKILL)`), where this machine can know.
    pub status: String,
    /// The last lines of its log.
    pub log_tail: String,
}
