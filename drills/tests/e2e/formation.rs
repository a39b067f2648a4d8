use std::time::Duration;

use raftdrill_wire::{Role, WriteResponse};

use crate::harness::*;

/// A 3-node cluster elects a leader; a write sent to a follower is forwarded, and a
/// linearizable read from the third node sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_leader_and_forward_writes() {
    let _serial = serial().await;
    let (c, leader) = start(3, &[]).await;
    let client = http();
    let others: Vec<u64> = c
        .nodes()
        .keys()
        .copied()
        .filter(|id| *id != leader)
        .collect();
    let (follower, reader) = (others[0], others[1]);

    let resp = put(&client, &c.url(follower), "greeting", "hello")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let w: WriteResponse = resp.json().await.unwrap();
    assert_eq!(w.leader, leader);
    assert_eq!(
        w.served_by, follower,
        "served_by names the node the client asked"
    );
    assert!(w.index > 0 && w.term > 0);

    assert_eq!(
        get(&client, &c.url(reader), "greeting", "linearizable")
            .await
            .as_deref(),
        Some("hello")
    );
    assert_eq!(
        get(&client, &c.url(reader), "greeting", "lease")
            .await
            .as_deref(),
        Some("hello")
    );
    assert_eq!(
        get(&client, &c.url(leader), "absent", "linearizable").await,
        None
    );

    // A stale read on the reader catches up on its own.
    let url = c.url(reader);
    eventually(Duration::from_secs(5), "stale read sees the write", || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            (get(&client, &url, "greeting", "stale").await.as_deref() == Some("hello"))
                .then_some(())
        }
    })
    .await;

    let s = status(&client, &c.url(leader)).await.unwrap();
    assert_eq!(s.role, Role::Leader);
    assert_eq!(s.voters, vec![1, 2, 3]);
    assert!(s.committed >= w.index && s.applied >= w.index, "{s:?}");

    // CAS and DELETE go through the same path.
    let cas = client
        .post(format!("{}/kv/greeting/cas", c.url(reader)))
        .json(&serde_json::json!({"expect": "hello", "value": "bye"}))
        .send()
        .await
        .unwrap();
    let cas: serde_json::Value = cas.json().await.unwrap();
    assert_eq!(cas["ok"], true);
    let stale_cas = client
        .post(format!("{}/kv/greeting/cas", c.url(leader)))
        .json(&serde_json::json!({"expect": "hello", "value": "again"}))
        .send()
        .await
        .unwrap();
    let stale_cas: serde_json::Value = stale_cas.json().await.unwrap();
    assert_eq!(stale_cas["ok"], false);
    assert_eq!(stale_cas["current"], "bye");
    let del = client
        .delete(format!("{}/kv/greeting", c.url(follower)))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(
        get(&client, &c.url(leader), "greeting", "linearizable").await,
        None
    );

    // SIGTERM is a graceful stop with exit code 0.
    let mut c = c;
    let exit = c
        .terminate(follower, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        exit.is_some_and(|s| s.success()),
        "node {follower} exited with {exit:?}"
    );
}
