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

    // The stage timings saw those writes: proposal to applied on the leader, the log append
    // and the AppendEntries round trips there, the follower's side and its applies.
    let stages = |id: u64, q: &'static str| {
        let (client, url) = (client.clone(), c.url(id));
        async move {
            let r = client
                .get(format!("{url}/admin/stages{q}"))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (code, on_leader) = stages(leader, "?reset=true").await;
    assert_eq!(code, 200);
    assert!(
        on_leader["write"]["count"].as_u64().unwrap() >= 21,
        "{on_leader}"
    );
    for stage in [
        "log_append",
        "replicate",
        "apply",
        "write_to_flush",
        "write_to_apply",
    ] {
        let s = &on_leader[stage];
        assert!(s["count"].as_u64().unwrap() > 0, "{stage}: {on_leader}");
        assert!(s["p99_ms"].as_f64().unwrap() >= s["p50_ms"].as_f64().unwrap());
        assert!(
            s["items_per_pass"].as_f64().unwrap() >= 1.0,
            "{stage}: {on_leader}"
        );
    }
    let (_, on_follower) = stages(follower, "").await;
    for stage in ["follower_append", "log_append", "apply"] {
        assert!(
            on_follower[stage]["count"].as_u64().unwrap() > 0,
            "{stage}: {on_follower}"
        );
    }
    assert!(on_follower.get("write").is_none(), "{on_follower}");
    let (_, after_reset) = stages(leader, "").await;
    assert!(
        after_reset.get("write").is_none(),
        "reset starts over: {after_reset}"
    );
    let (code, bad) = stages(leader, "?reset=yes").await;
    assert_eq!(code, 400, "{bad}");

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
