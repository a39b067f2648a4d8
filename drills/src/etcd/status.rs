//! An etcd member's `/v3/maintenance/status` and member list as the poller's
//! [`raftdrill_wire::Status`], in raftdrill's node numbers.

use std::collections::BTreeMap;

use raftdrill_wire::{Role, Status};
use target_cluster::typ::NodeId;

use super::api::{Member, MemberStatus};

/// The node number of each etcd member id, and back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    by_member: BTreeMap<u64, NodeId>,
    by_node: BTreeMap<NodeId, u64>,
}

impl IdMap {
    /// Records that node `node` is etcd member `member` (replacing what either had before).
    pub fn insert(&mut self, node: NodeId, member: u64) {
        if let Some(old) = self.by_node.insert(node, member) {
            self.by_member.remove(&old);
        }
        if let Some(old) = self.by_member.insert(member, node)
            && old != node
        {
            self.by_node.remove(&old);
        }
    }

    /// Forgets node `node`.
    pub fn remove(&mut self, node: NodeId) {
        if let Some(m) = self.by_node.remove(&node) {
            self.by_member.remove(&m);
        }
    }

    /// The node of an etcd member id.
    pub fn node(&self, member: u64) -> Option<NodeId> {
        self.by_member.get(&member).copied()
    }

    /// The etcd member id of a node.
    pub fn member(&self, node: NodeId) -> Option<u64> {
        self.by_node.get(&node).copied()
    }

    /// Node → member id, for the link table.
    pub fn by_node(&self) -> &BTreeMap<NodeId, u64> {
        &self.by_node
    }
}

/// The poller's view of node `id` from its status and the member list it reported.
///
/// etcd 3.4 reports no Raft state, current term, last log index or snapshot index. Its
/// `raftTerm` is the term of the last *applied* entry (`EtcdServer.setTerm` in the apply
/// loop), so a member that campaigns without winning shows no higher term. The role is leader when
/// the member names itself leader, learner for a learner, candidate while it knows no leader
/// (electing, or cut off), follower otherwise; `raftIndex` (the committed index in 3.4) stands
/// for both `last_log_index` and `committed`; `snapshot_index` is 0.
pub fn to_status(id: NodeId, s: &MemberStatus, members: &[Member], ids: &IdMap) -> Status {
    let me = s.header.member_id;
    let learner = s.is_learner || members.iter().any(|m| m.id == me && m.is_learner);
    let role = if learner {
        Role::Learner
    } else if s.leader != 0 && s.leader == me {
        Role::Leader
    } else if s.leader == 0 {
        Role::Candidate
    } else {
        Role::Follower
    };
    let nodes_of = |learners: bool| {
        let mut v: Vec<NodeId> = members
            .iter()
            .filter(|m| m.is_learner == learners)
            .filter_map(|m| ids.node(m.id))
            .collect();
        v.sort_unstable();
        v
    };
    Status {
        id,
        role,
        term: s.raft_term.max(s.header.raft_term),
        leader: (s.leader != 0).then(|| ids.node(s.leader)).flatten(),
        last_log_index: s.raft_index,
        committed: s.raft_index,
        applied: s.raft_applied_index,
        snapshot_index: 0,
        voters: nodes_of(false),
        learners: nodes_of(true),
        log_commits: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::api::ResponseHeader;

    fn ids() -> IdMap {
        let mut m = IdMap::default();
        for (node, member) in [(1, 0xa1), (2, 0xb2), (3, 0xc3)] {
            m.insert(node, member);
        }
        m
    }

    fn members() -> Vec<Member> {
        [0xa1, 0xb2, 0xc3]
            .into_iter()
            .map(|id| Member {
                id,
                ..Member::default()
            })
            .collect()
    }

    fn status(me: u64, leader: u64) -> MemberStatus {
        MemberStatus {
            header: ResponseHeader {
                member_id: me,
                raft_term: 4,
            },
            leader,
            raft_term: 4,
            raft_index: 17,
            raft_applied_index: 16,
            is_learner: false,
        }
    }

    #[test]
    fn roles_and_ids_are_in_node_numbers() {
        let s = to_status(2, &status(0xb2, 0xb2), &members(), &ids());
        assert_eq!((s.id, s.role, s.leader), (2, Role::Leader, Some(2)));
        assert_eq!((s.term, s.committed, s.applied), (4, 17, 16));
        assert_eq!(s.voters, vec![1, 2, 3]);
        let s = to_status(1, &status(0xa1, 0xb2), &members(), &ids());
        assert_eq!((s.role, s.leader), (Role::Follower, Some(2)));
        let s = to_status(3, &status(0xc3, 0), &members(), &ids());
        assert_eq!((s.role, s.leader), (Role::Candidate, None));
    }

    #[test]
    fn learners_and_unknown_members_are_placed() {
        let mut list = members();
        list.push(Member {
            id: 0xd4,
            is_learner: true,
            ..Member::default()
        });
        let mut map = ids();
        map.insert(4, 0xd4);
        let s = to_status(4, &status(0xd4, 0xa1), &list, &map);
        assert_eq!(s.role, Role::Learner);
        assert_eq!((s.voters, s.learners), (vec![1, 2, 3], vec![4]));
        // A wiped node comes back under a new member id; the old one is forgotten.
        map.insert(2, 0xee);
        assert_eq!(map.node(0xb2), None);
        assert_eq!(map.member(2), Some(0xee));
        let s = to_status(1, &status(0xa1, 0xb2), &members(), &map);
        assert_eq!(s.leader, None, "a leader id nobody maps to is not guessed");
    }
}
