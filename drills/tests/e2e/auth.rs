use std::time::Duration;

use drills::local_cluster::{ClusterOptions, LocalCluster, new_token};
use raftdrill_wire::{ErrorBody, Status, error_code};

use crate::harness::*;

/// Nodes started with the run's token elect a leader and replicate (their peer calls carry
/// it), serve the client API without it, and refuse admin and peer calls without it: 401 with
/// the JSON error body. A wrong token is refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_peer_calls_without_the_token_are_refused() {
    let _serial = serial().await;
    let token = new_token().unwrap();
    let opts = ClusterOptions {
        nodes: 3,
        base_port: None,
        data_dir: None,
        log_dir: None,
        exe: exe(),
        node_flags: Vec::new(),
        token: Some(token.clone()),
    };
    let mut c = LocalCluster::start(&opts).expect("cluster starts");
    let leader = c
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader is elected through authenticated peer calls");
    let follower = *c.nodes().keys().find(|id| **id != leader).unwrap();
    let client = http();

    // The client API stays open; a follower forwards to the leader with the token.
    let resp = put(&client, &c.url(follower), "k", "v").await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        get(&client, &c.url(follower), "k", "linearizable")
            .await
            .as_deref(),
        Some("v")
    );
    assert_eq!(
        client
            .get(format!("{}/healthz", c.url(leader)))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let refused = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 401);
        let body: ErrorBody = resp.json().await.expect("a JSON error body");
        assert_eq!(body.error, error_code::UNAUTHORIZED);
    };
    let base = c.url(leader);
    refused(client.get(format!("{base}/status")).send().await.unwrap()).await;
    refused(
        client
            .delete(format!("{base}/admin/members/{follower}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(
        client
            .put(format!("{base}/admin/peers/{follower}"))
            .json(&serde_json::json!({"addr": "127.0.0.1:9"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(
        client
            .post(format!("{base}/raft/vote"))
            .body(vec![0u8; 8])
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(
        client
            .get(format!("{base}/status"))
            .bearer_auth("0".repeat(32))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // With the token, the same call is answered, and the refused calls changed nothing.
    let s: Status = client
        .get(format!("{base}/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s.voters, vec![1, 2, 3]);
    c.stop(Duration::from_secs(5)).await;
}
