//! Which nodes a fault hits: a scenario's target selector resolved against the cluster as it
//! is when the fault fires, and the sides of a partition.

use std::collections::BTreeSet;

use target_cluster::typ::NodeId;

use crate::nodes::view::ClusterView;
use crate::scenario::Selector;

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

/// The sides of a partition: the scenario's `groups`, or the target nodes and the rest.
pub fn partition_groups(
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

#[cfg(test)]
mod tests {
    use raftdrill_wire::{Role, Status};

    use super::*;
    use crate::nodes::view::{NodeState, NodeView};

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
