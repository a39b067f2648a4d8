use std::time::{Duration, Instant};

use crate::harness::*;

/// SIGKILL of the leader under a writer: a new leader is elected, every write answered 200 is
/// readable, and the killed node restarts on its data and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_loses_no_acknowledged_write_and_the_old_leader_catches_up() {
    let _serial = serial().await;
    let (mut c, leader) = start(3, &[]).await;
    let client = http();
    let writer = Writer::start(c.urls(), 4, 100_000, "fo");
    writer.wait_acked(200, Duration::from_secs(30)).await;

    c.kill(leader).unwrap();
    let killed = Instant::now();
    let new = new_leader(&c, Some(leader), Duration::from_secs(15)).await;
    let elected = killed.elapsed();
    let before = writer.acked();
    writer
        .wait_acked(before + 200, Duration::from_secs(30))
        .await;
    let log = writer.finish().await;
    eprintln!(
        "leader {leader} killed; node {new} leads after {elected:?}; {} acked, {} failed, {} unknown",
        log.acked.len(),
        log.failed,
        log.unknown
    );

    let lost = missing(&client, &c.url(new), &log.acked, "linearizable").await;
    assert!(
        lost.is_empty(),
        "acknowledged writes lost after failover: {lost:?}"
    );

    c.restart(leader).unwrap();
    let target = status(&client, &c.url(new)).await.unwrap().applied;
    let url = c.url(leader);
    eventually(
        Duration::from_secs(30),
        "the restarted node catches up",
        || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                status(&client, &url)
                    .await
                    .filter(|s| s.applied >= target)
                    .map(|_| ())
            }
        },
    )
    .await;
    let lost = missing(&client, &c.url(leader), &log.acked, "stale").await;
    assert!(
        lost.is_empty(),
        "the restarted node misses acknowledged writes: {lost:?}"
    );
}
