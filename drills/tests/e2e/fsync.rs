//! Lost fsyncs ("fsyncgate"): the fault layer fails every fsync of every node for a while
//! the way Linux does after a writeback error: the data written since the last good sync is
//! dropped and the next fsync reports success. A node that retries the fsync and carries on
//! (the planted `unsafe_fsync_retry`) acknowledges writes that are gone, and the power loss
//! that follows shows it: exit 3. The reference node stops at its first failed fsync instead,
//! and the same drill loses nothing.

use std::time::Duration;

use crate::disks::require_fuse;
use crate::harness::{assert_faults_fired, run_scenario, serial};

fn scenario(planted: bool) -> String {
    format!(
        r#"name = "lost-fsync-{planted}"
duration = "22s"

[cluster]
nodes = 3
unsafe_fsync_retry = {planted}

[load]
workload = "w"
rate = 150
keys = 2000
warmup = "1s"
timeout = "1s"

[[fault]]
at = "6s"
action = "disk-error"
target = "all"
on = "fsync"
drop_dirty = true
for = "6s"

[[fault]]
at = "10s"
action = "power-loss"
target = "all"
for = "3s"

[thresholds]
p99 = {{ warn = "800ms", break = "10s" }}
success_rate = {{ warn = "99.5%", break = "10%" }}

[checks]
lost_writes = true
may_stay_down = [1, 2, 3]
"#
    )
}

async fn run(planted: bool) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let ran = run_scenario(
        dir.path(),
        "lost-fsync",
        &scenario(planted),
        Duration::from_secs(150),
    )
    .await;
    assert_faults_fired(&ran.summary);
    (ran.code, ran.summary)
}

/// The planted retry is caught as lost acknowledged writes; the reference node, which stops at
/// a failed fsync, loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_fsync_loses_acknowledged_writes_and_a_stop_loses_none() {
    require_fuse();
    let _serial = serial().await;
    let (code, s) = run(true).await;
    let lw = &s["checks"]["lost_writes"];
    assert_eq!(
        code,
        Some(3),
        "the planted retry is an anomaly: {lw} {}",
        s["reasons"]
    );
    assert!(lw["lost"].as_u64().unwrap() > 0, "{lw}");

    let (code, s) = run(false).await;
    crate::drills::assert_no_loss("lost-fsync", &s);
    assert_ne!(code, Some(3), "{}", s["reasons"]);
    let exits = s["node_exits"].as_array().cloned().unwrap_or_default();
    assert!(
        !exits.is_empty(),
        "the nodes stopped at the failed fsync: {}",
        s["reasons"]
    );
}
