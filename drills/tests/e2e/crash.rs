use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;

/// Kills every node in the middle of writes, restarts them all, and returns the acknowledged
/// writes and the ones that are gone.
async fn crash_all(flags: &[&str]) -> (BTreeMap<String, String>, Vec<String>) {
    let (mut c, _) = start(3, flags).await;
    let client = http();
    let writer = Writer::start(c.urls(), 4, 100_000, "crash");
    writer.wait_acked(300, Duration::from_secs(30)).await;
    for id in [1, 2, 3] {
        c.kill(id).unwrap();
    }
    let log = writer.finish().await;
    for id in [1, 2, 3] {
        c.restart(id).unwrap();
    }
    let leader = c
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader after restart");
    let lost = missing(&client, &c.url(leader), &log.acked, "linearizable").await;
    (log.acked, lost)
}

/// With the disk store, a crash of the whole cluster loses no acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cluster_crash_keeps_every_acknowledged_write_on_disk() {
    let _serial = serial().await;
    let (acked, lost) = crash_all(&[]).await;
    assert!(acked.len() >= 300);
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acked.len()
    );
}

/// The same crash with `--store memory` does lose acknowledged writes: the check above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cluster_crash_loses_acknowledged_writes_in_memory() {
    let _serial = serial().await;
    let (acked, lost) = crash_all(&["--store", "memory"]).await;
    assert!(acked.len() >= 300);
    assert!(
        !lost.is_empty(),
        "the memory store kept all {} writes across a crash",
        acked.len()
    );
}
