//! The election gate: a follower that still hears from a leader does not campaign.
//!
//! openraft 0.9 has no PreVote. A follower whose election timer fires (a stall of its own Raft
//! core, a busy machine) starts an election in a new term it cannot win: its peers still hold
//! the leader's lease and refuse their votes (openraft checks that), but its higher term reaches
//! the leader in the next AppendEntries answer and the leader steps down. One scheduling
//! hiccup then costs a leader and a failover. etcd avoids this with PreVote and CheckQuorum.
//!
//! openraft offers a switch for the election timer (`RuntimeConfigHandle::elect`), and the node
//! sees every AppendEntries at its HTTP endpoint before the Raft core does. So the gate notes
//! the time of every AppendEntries from a leader of the current term or later, and keeps the
//! timer off while the last one is younger than the minimum election timeout. When the leader
//! is really gone its AppendEntries stop, the timer is back on within that time, and the
//! failover takes what it took before (openraft's own timer, lease plus election timeout, runs
//! from the last AppendEntries its core handled).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::typ::Raft;

/// How often the gate re-evaluates.
const EVERY: Duration = Duration::from_millis(10);

/// When the node last heard from a leader.
#[derive(Debug)]
pub struct ElectionGate {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last AppendEntries from a current leader, plus one
    /// (0: never).
    heard_ms: AtomicU64,
    quiet: Duration,
}

impl ElectionGate {
    /// A gate that opens `quiet` after the last AppendEntries.
    pub fn new(quiet: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            heard_ms: AtomicU64::new(0),
            quiet,
        }
    }

    /// Notes an AppendEntries in `term` when `current_term` is the node's own.
    pub fn heard(&self, term: u64, current_term: u64) {
        if term >= current_term {
            let ms = self.epoch.elapsed().as_millis() as u64 + 1;
            self.heard_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// Whether an election may start now.
    pub fn open(&self) -> bool {
        match self.heard_ms.load(Ordering::Relaxed) {
            0 => true,
            ms => self.epoch.elapsed() >= Duration::from_millis(ms - 1) + self.quiet,
        }
    }

    /// Keeps `raft`'s election timer in step with the gate until the node shuts down.
    pub async fn run(self: std::sync::Arc<Self>, raft: Raft) {
        let mut was = None;
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let open = self.open();
            if was != Some(open) {
                raft.runtime_config().elect(open);
                was = Some(open);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_closes_while_a_current_leader_is_heard() {
        let g = ElectionGate::new(Duration::from_secs(60));
        assert!(g.open(), "nobody heard yet: elections allowed");
        g.heard(3, 4);
        assert!(g.open(), "a stale leader does not close the gate");
        g.heard(4, 4);
        assert!(!g.open(), "a current leader was just heard");
        let quick = ElectionGate::new(Duration::ZERO);
        quick.heard(4, 4);
        assert!(quick.open(), "after the quiet time the gate opens again");
    }
}
