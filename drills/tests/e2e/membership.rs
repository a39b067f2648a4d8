use std::time::Duration;

use raftdrill_wire::AdminResponse;

use crate::harness::*;

/// With a snapshot every 500 entries and 5,000 writes, a new learner receives a snapshot, is
/// promoted, and serves every key. Two writers at a time: the node batches concurrent writes
/// into one entry, and two keep the log at 2,500 entries or more, so the leader has purged
/// its start (it keeps 500 entries behind a snapshot) and node 4 can only catch up from a
/// snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_receives_a_snapshot_and_serves_every_key() {
    let _serial = serial().await;
    let (mut c, leader) = start(3, &["--snapshot-every", "500"]).await;
    let client = http();
    let log = Writer::start(vec![c.url(leader)], 2, 5000, "snap")
        .join()
        .await;
    assert_eq!(
        log.acked.len(),
        5000,
        "every write succeeds without faults: {log:?}"
    );
    let leader_url = c.url(leader);
    let last = status(&client, &leader_url)
        .await
        .expect("the leader answers /status")
        .last_log_index;
    assert!(
        last >= 2500,
        "two writers batch at most two writes an entry: {last}"
    );
    let s = eventually(
        Duration::from_secs(20),
        "the leader purges its log behind a snapshot",
        || {
            let (client, url) = (client.clone(), leader_url.clone());
            async move {
                status(&client, &url)
                    .await
                    .filter(|s| s.snapshot_index + 500 >= last)
            }
        },
    )
    .await;

    let addr = c.spawn_new_node(4).unwrap();
    let resp = client
        .post(format!("{leader_url}/admin/members"))
        .json(&serde_json::json!({"id": 4, "addr": addr.to_string(), "voter": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let members: AdminResponse = resp.json().await.unwrap();
    assert_eq!(members.voters, vec![1, 2, 3, 4]);

    let url4 = c.url(4);
    let s4 = eventually(
        Duration::from_secs(30),
        "node 4 installs the snapshot",
        || {
            let (client, url) = (client.clone(), url4.clone());
            async move {
                status(&client, &url)
                    .await
                    .filter(|s| s.applied >= s.snapshot_index && s.snapshot_index > 0)
            }
        },
    )
    .await;
    assert!(
        s4.snapshot_index > 0,
        "node 4 got its state from a snapshot: {s4:?} (leader {s:?})"
    );
    let lost = missing(&client, &url4, &log.acked, "stale").await;
    assert!(lost.is_empty(), "node 4 lacks {} keys", lost.len());
}

/// Under a writer: add node 4 as a voter, remove node 1. Writes keep succeeding and no
/// acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_change_under_load_loses_nothing() {
    let _serial = serial().await;
    let (mut c, _) = start(3, &[]).await;
    let client = http();
    let writer = Writer::start(vec![c.url(2), c.url(3)], 4, 100_000, "churn");
    writer.wait_acked(100, Duration::from_secs(30)).await;

    let addr = c.spawn_new_node(4).unwrap();
    let add = client
        .post(format!("{}/admin/members", c.url(2)))
        .json(&serde_json::json!({"id": 4, "addr": addr.to_string(), "voter": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        add.status(),
        200,
        "{}",
        add.text().await.unwrap_or_default()
    );
    let removed = client
        .delete(format!("{}/admin/members/1", c.url(3)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        removed.status(),
        200,
        "{}",
        removed.text().await.unwrap_or_default()
    );
    let members: AdminResponse = removed.json().await.unwrap();
    assert_eq!(members.voters, vec![2, 3, 4]);

    let before = writer.acked();
    writer
        .wait_acked(before + 200, Duration::from_secs(30))
        .await;
    let log = writer.finish().await;
    c.kill(1).unwrap();
    let leader = new_leader(&c, Some(1), Duration::from_secs(15)).await;
    let lost = missing(&client, &c.url(leader), &log.acked, "linearizable").await;
    assert!(
        lost.is_empty(),
        "acknowledged writes lost in the membership change: {lost:?}"
    );
}
