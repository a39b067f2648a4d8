//! Real etcd members on loopback. Ignored by default (they need Debian's `etcd-server`); CI
//! runs them with `--ignored`, and without the binary they fail with a message naming the
//! package rather than skip.
//!
//! Every wait is a poll with a deadline; the deadlines are generous because the machine may be
//! busy, and no assertion depends on how fast anything happened.

use std::time::Duration;

use loadgen::etcd::EtcdCluster;
use loadgen::target::Target;
use raftdrill_wire::{Consistency, Role, Status};
use target_cluster::typ::NodeId;

use crate::etcd::links::PeerFlow;
use crate::nodes::{Nodes, NodesSpec, Where};
use crate::placement::links::LocalLinks;
use crate::proxy::ProxyStats;
use crate::scenario::ClusterSpec;
use crate::store::{Store, TargetKind};

/// Long enough for an election on a loaded 2-core machine with etcd's default timings.
const ELECTION: Duration = Duration::from_secs(30);

/// etcd members on this machine, each behind its attributing peer proxy, with a leader.
async fn cluster(members: u64) -> Nodes {
    let spec = NodesSpec {
        cluster: ClusterSpec {
            nodes: members,
            target: TargetKind::Etcd,
            ..ClusterSpec::default()
        },
        at: Where::Local {
            base_port: None,
            data_dir: None,
            link_proxies: true,
            disks: false,
            clocks: false,
            token: None,
        },
        // Only disks and reference nodes run from raftdrill's binary.
        exe: "raftdrill".into(),
        etcd_bin: None,
        log_dir: None,
    };
    spec.start().await.unwrap_or_else(|e| panic!("{e}"))
}

async fn elected(c: &Nodes) -> NodeId {
    c.first_leader(ELECTION)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn status(c: &Nodes, id: NodeId) -> Option<Status> {
    c.store()
        .status_call(id, c.url(id), Duration::from_millis(500))
        .await
}

fn member_id(c: &Nodes, id: NodeId) -> Option<u64> {
    match c.store() {
        Store::Etcd(e) => e.member_id(id),
        Store::Reference(_) => None,
    }
}

/// The connections at node `id`'s proxy, per flow.
fn flows(c: &Nodes, id: NodeId) -> std::collections::BTreeMap<PeerFlow, ProxyStats> {
    match c.placement().local().expect("local").links() {
        LocalLinks::Advertised(t) => t.stats(id),
        _ => Default::default(),
    }
}

/// An adapter on the given members' client URLs, each operation bounded by 1 s.
fn client(c: &Nodes, ids: &[NodeId]) -> EtcdCluster {
    let urls: Vec<String> = ids.iter().map(|id| c.url(*id)).collect();
    EtcdCluster::new(&urls, Duration::from_secs(1)).unwrap()
}

/// Polls `check` every 50 ms until it returns `Some`, failing after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `key` through any member, retrying until one accepts it.
async fn write(c: &Nodes, ids: &[NodeId], key: &str, value: &str) -> u64 {
    let adapter = client(c, ids);
    eventually(ELECTION, "a write is acknowledged", || async {
        adapter.put(0, key, value).await.ok().flatten()
    })
    .await
}

fn leader_of(statuses: &[Status]) -> Option<NodeId> {
    crate::store::agreed_leader(statuses)
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn three_members_elect_a_leader_and_report_consistent_status() {
    let c = cluster(3).await;
    let rev = write(&c, &[1, 2, 3], "k", "v").await;
    assert!(rev > 1);
    // After the write, every member applies it and reports the same view.
    let statuses = eventually(ELECTION, "all members applied the write", || async {
        let s = c.statuses().await;
        let max = s.iter().map(|s| s.committed).max()?;
        (s.len() == 3 && s.iter().all(|s| s.applied == max)).then_some(s)
    })
    .await;
    let leader = leader_of(&statuses).expect("an agreed leader");
    for s in &statuses {
        assert_eq!(s.voters, vec![1, 2, 3], "{s:?}");
        assert!(s.learners.is_empty());
        assert_eq!(s.term, statuses[0].term);
        let role = if s.id == leader {
            Role::Leader
        } else {
            Role::Follower
        };
        assert_eq!(s.role, role, "{s:?}");
    }
    // Every member knows every other's id, and peer connections were attributed to them.
    let ids: Vec<u64> = (1..=3)
        .map(|n| member_id(&c, n).expect("member id"))
        .collect();
    for n in 1..=3 {
        let flows = flows(&c, n);
        assert!(
            flows.keys().all(|f| ids.contains(&f.opener)),
            "node {n}: {flows:?}"
        );
        assert!(flows.keys().any(|f| f.stream), "node {n} carries streams");
    }
    c.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn killing_the_leader_elects_another_and_it_rejoins() {
    let c = cluster(3).await;
    let old = elected(&c).await;
    c.placement().kill(old).await.unwrap();
    assert!(!c.placement().is_running(old));
    let new = elected(&c).await;
    assert_ne!(new, old);
    let others: Vec<NodeId> = (1..=3).filter(|n| *n != old).collect();
    write(&c, &others, "after-kill", "x").await;
    c.placement().restart(old).await.unwrap();
    let leader = elected(&c).await;
    let s = eventually(ELECTION, "the restarted member answers", || status(&c, old)).await;
    assert_eq!(s.leader, Some(leader));
    c.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn a_wiped_follower_rejoins_with_a_new_id_and_serves() {
    let c = cluster(3).await;
    write(&c, &[1, 2, 3], "before-wipe", "kept").await;
    let leader = elected(&c).await;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    let old_id = member_id(&c, follower).unwrap();
    c.replace(follower, Some(leader))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    elected(&c).await;
    let new_id = member_id(&c, follower).unwrap();
    assert_ne!(new_id, old_id, "a wiped member comes back as a new member");
    // Its local (serializable) read shows it caught up from the others.
    let own = client(&c, &[follower]);
    let value = eventually(ELECTION, "the wiped member serves the old key", || async {
        own.get(0, "before-wipe", Consistency::Stale)
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(value, "kept");
    // And it takes part: a write through it commits.
    write(&c, &[follower], "after-wipe", "y").await;
    let s = status(&c, follower).await.unwrap();
    assert_eq!(s.voters, vec![1, 2, 3]);
    c.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn an_isolated_leader_steps_down_and_cannot_commit_while_the_others_elect() {
    let c = cluster(3).await;
    let old = elected(&c).await;
    let others: Vec<NodeId> = (1..=3).filter(|n| *n != old).collect();
    c.isolate(old).await.unwrap();
    assert!(c.placement().is_isolated(old));
    let new = c.leader_within(Some(&others), ELECTION).await.unwrap();
    assert_ne!(new, old);
    // etcd leaders check their quorum: cut off, the old one steps down.
    eventually(
        ELECTION,
        "the isolated member is no longer leader",
        || async {
            let s = status(&c, old).await?;
            (s.role != Role::Leader).then_some(())
        },
    )
    .await;
    // A write through it alone cannot commit.
    let e = client(&c, &[old])
        .put(0, "isolated", "no")
        .await
        .unwrap_err();
    tracing::info!(error = %e, "write through the isolated member");
    // The majority commits.
    write(&c, &others, "majority", "yes").await;
    c.placement().heal_links().await.unwrap();
    let leader = elected(&c).await;
    let s = eventually(ELECTION, "the healed member follows again", || async {
        let s = status(&c, old).await?;
        (s.leader == Some(leader)).then_some(s)
    })
    .await;
    assert!(s.voters.contains(&old));
    let healed = client(&c, &[old]);
    let seen = eventually(
        ELECTION,
        "the healed member has the majority's write",
        || async {
            healed
                .get(0, "majority", Consistency::Stale)
                .await
                .ok()
                .flatten()
        },
    )
    .await;
    assert_eq!(seen, "yes");
    c.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn cutting_only_the_leaders_messages_to_a_follower_makes_it_lose_its_leader() {
    let c = cluster(3).await;
    let leader = elected(&c).await;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    // The follower hears nothing from the leader (heartbeats included), so it times out,
    // forgets its leader and campaigns, while the leader keeps its quorum through the third
    // member. Were the link the other way round, the follower would keep hearing heartbeats
    // and keep its leader. (etcd's status reports the term of the last applied entry, not
    // Raft's current term, so the campaign itself does not show as a higher term.)
    c.set_links(&[(leader, follower)], crate::proxy::LinkMode::Blackhole)
        .await
        .unwrap();
    eventually(
        ELECTION,
        "the cut-off follower loses its leader",
        || async {
            let s = status(&c, follower).await?;
            (s.leader.is_none()).then_some(())
        },
    )
    .await;
    let third = (1..=3).find(|n| *n != leader && *n != follower).unwrap();
    let kept = c
        .leader_within(Some(&[leader, third]), ELECTION)
        .await
        .unwrap();
    assert_eq!(kept, leader, "the leader keeps its quorum");
    // Its own messages still reach the leader: the stream the leader opened to it carries them.
    let leader_id = member_id(&c, leader).unwrap();
    let outgoing = |c: &Nodes| {
        flows(c, follower)
            .iter()
            .filter(|(f, _)| f.opener == leader_id && f.stream)
            .map(|(_, s)| s.bytes_down)
            .sum::<u64>()
    };
    let before = outgoing(&c);
    eventually(
        ELECTION,
        "the follower's messages to the leader flow",
        || async { (outgoing(&c) > before).then_some(()) },
    )
    .await;
    c.placement().heal_links().await.unwrap();
    elected(&c).await;
    c.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn a_paused_follower_stops_answering_and_catches_up_when_resumed() {
    let c = cluster(3).await;
    let leader = elected(&c).await;
    let follower = (1..=3).find(|n| *n != leader).unwrap();
    c.placement().pause(follower).await.unwrap();
    assert!(
        status(&c, follower).await.is_none(),
        "a stopped process cannot answer"
    );
    let others: Vec<NodeId> = (1..=3).filter(|n| *n != follower).collect();
    write(&c, &others, "during-pause", "z").await;
    c.placement().resume(follower).await.unwrap();
    let own = client(&c, &[follower]);
    let value = eventually(ELECTION, "the resumed member catches up", || async {
        own.get(0, "during-pause", Consistency::Stale)
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(value, "z");
    c.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn members_are_added_and_removed() {
    let c = cluster(3).await;
    let first = elected(&c).await;
    c.add(4, Some(first))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    elected(&c).await;
    let s = eventually(ELECTION, "the new member is a voter", || async {
        let s = status(&c, 4).await?;
        (s.voters == vec![1, 2, 3, 4]).then_some(s)
    })
    .await;
    assert!(s.leader.is_some());
    let now = elected(&c).await;
    c.remove(4, Some(now), Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.placement().is_running(4));
    elected(&c).await;
    let leader = elected(&c).await;
    let s = eventually(ELECTION, "the member is gone", || async {
        let s = status(&c, leader).await?;
        (s.voters == vec![1, 2, 3]).then_some(s)
    })
    .await;
    assert_eq!(s.role, Role::Leader);
    c.shutdown(Duration::from_secs(5)).await;
}
