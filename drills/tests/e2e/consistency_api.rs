//! The node's session reads (`consistency=session&min_index=N`) and all-replica writes
//! (`ack=all`), on a real 3-node cluster.

use std::time::Duration;

use raftdrill_wire::{GetResponse, WriteResponse};

use crate::harness::*;

/// `ack=all` answers only once every voter has applied the write, so a stale read on every
/// node then sees it; with a voter down it cannot, and answers 504 while a plain write still
/// succeeds. A session read waits for its `min_index` and reads the client's own write on any
/// node; one past everything the log holds answers 504 after the request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_all_and_session_reads() {
    let _serial = serial().await;
    let (mut c, leader) = start(3, &["--request-timeout", "800ms"]).await;
    let client = http();
    let ids: Vec<u64> = (1..=3).collect();
    let follower = *ids.iter().find(|i| **i != leader).unwrap();

    for round in 0..20 {
        let key = format!("all-{round}");
        let resp = client
            .put(format!("{}/kv/{key}?ack=all", c.url(follower)))
            .json(&serde_json::json!({ "value": "v" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        for id in &ids {
            assert_eq!(
                get(&client, &c.url(*id), &key, "stale").await.as_deref(),
                Some("v"),
                "node {id} had applied {key} before the ack=all answer"
            );
        }
    }

    // Read your writes on every node: the write's index as min_index.
    let w: WriteResponse = put(&client, &c.url(leader), "mine", "1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for id in &ids {
        let r = client
            .get(format!(
                "{}/kv/mine?consistency=session&min_index={}",
                c.url(*id),
                w.index
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let got: GetResponse = r.json().await.unwrap();
        assert_eq!(got.value, "1");
        assert_eq!(got.index, w.index);
    }
    // An index the log will not reach within the request timeout.
    let far = client
        .get(format!(
            "{}/kv/mine?consistency=session&min_index={}",
            c.url(follower),
            w.index + 1_000_000
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(far.status(), 504);
    assert!(far.text().await.unwrap().contains("timeout"));

    // Malformed options are 400s with the JSON body.
    let bad_ack = client
        .put(format!("{}/kv/x?ack=most", c.url(leader)))
        .json(&serde_json::json!({ "value": "v" }))
        .send()
        .await
        .unwrap();
    let stray_min = client
        .get(format!("{}/kv/x?min_index=3", c.url(leader)))
        .send()
        .await
        .unwrap();
    for r in [bad_ack, stray_min] {
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("\"error\""));
    }

    // One voter down: a write still commits, but not on every voter.
    let down = *ids.iter().find(|i| **i != leader).unwrap();
    c.kill(down).unwrap();
    let plain = put(&client, &c.url(leader), "after", "p").await.unwrap();
    assert_eq!(plain.status(), 200);
    let all = client
        .put(format!("{}/kv/after?ack=all", c.url(leader)))
        .json(&serde_json::json!({ "value": "a" }))
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 504, "{}", all.text().await.unwrap());
    c.stop(Duration::from_secs(5)).await;
}
