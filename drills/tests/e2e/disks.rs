//! Disk faults end to end, on faultfs under each node (needs root and `/dev/fuse`, as the
//! faultfs tests do; they fail, never skip, without them): the planted durability bug that only
//! a power loss shows, a failing and then full disk on a follower that must keep serving and
//! recover, and Ctrl-C in the middle of a disk drill leaving no mount behind.
//!
//! The built-in disk drills (`disk-stall-leader`, `slow-disk-follower`, `power-loss-all` with
//! `fsync = "always"`) run in `library::every_builtin_scenario_keeps_its_claims`: a new leader
//! after the stall, recovery, and no acknowledged write lost.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::*;

/// Fails the test with the reason when FUSE cannot be mounted here.
pub(crate) fn require_fuse() {
    if let Err(reason) = raftdrill_faultfs::available() {
        panic!("this test mounts faultfs under the nodes: {reason}");
    }
}

/// The faultfs mount points served by processes that raftdrill `pid` started.
fn mounts_of(pid: u32) -> Vec<PathBuf> {
    let ours = started_by(pid);
    raftdrill_faultfs::mounts::faultfs_mounts()
        .unwrap()
        .into_iter()
        .filter(|m| m.server_pid.is_some_and(|p| ours.contains(&p)))
        .map(|m| m.mount_point)
        .collect()
}

fn mounted(points: &[PathBuf]) -> Vec<PathBuf> {
    let now: Vec<PathBuf> = raftdrill_faultfs::mounts::faultfs_mounts()
        .unwrap()
        .into_iter()
        .map(|m| m.mount_point)
        .collect();
    points.iter().filter(|p| now.contains(p)).cloned().collect()
}

/// `fsync = "never"` survives every SIGKILL (the kernel keeps the page cache), but not a power
/// loss: with the whole cluster's power cut, acknowledged writes are gone, the nodes come back
/// empty and bootstrap a new cluster, and the lost-write check must say so with exit 3. The
/// same drill with `fsync = "always"` is `power-loss-all` in the library run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_without_fsync_loses_acknowledged_writes() {
    require_fuse();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.toml");
    std::fs::write(&file, POWER_LOSS_NEVER).unwrap();
    let out = dir.path().join("run");
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let res = raftdrill(
        &["run", &f, "--no-tui", "--out", &o],
        dir.path(),
        Duration::from_secs(120),
    )
    .await;
    let s = checked_summary(&out.join("summary.json"));
    let lw = &s["checks"]["lost_writes"];
    assert_eq!(lw["status"], "lost", "{lw}\n{}", s["reasons"]);
    assert!(lw["lost"].as_u64().unwrap() > 0, "{lw}");
    assert_eq!(res.status.code(), Some(3), "a loss is a data anomaly");
    assert_eq!(s["cluster"]["fsync"], "never");
    assert_eq!(s["faults"][0]["action"], "power-loss");
    assert_eq!(s["faults"][0]["resolved"].as_array().unwrap().len(), 3);
}

const POWER_LOSS_NEVER: &str = r#"name = "power-loss-never"
description = "the whole cluster loses power, with fsync off"
expect = "fail"
duration = "16s"

[cluster]
nodes = 3
fsync = "never"

[load]
workload = "w"
rate = 200
keys = 2000
warmup = "2s"
timeout = "1s"

[[fault]]
at = "6s"
action = "power-loss"
target = "all"
for = "2s"

[checks]
lost_writes = true
"#;

/// A power loss that keeps a seeded subset of each file's unsynced writes, in another order
/// than they were made (LazyFS's torn-seq): with `fsync = "always"` every acknowledged write
/// was synced before it was acknowledged, so nothing is lost, and the logs come back from what
/// the disk kept (a frame no sync mark covers is a torn tail, whatever follows it). The report
/// of each node's loss is in the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_loss_that_keeps_reordered_writes_loses_nothing_acknowledged() {
    require_fuse();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reordered.toml");
    let text = POWER_LOSS_NEVER
        .replace("fsync = \"never\"", "fsync = \"always\"")
        .replace("for = \"2s\"", "for = \"2s\"\nkeep = \"reordered\"");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("run");
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let res = raftdrill(
        &["run", &f, "--no-tui", "--out", &o],
        dir.path(),
        Duration::from_secs(120),
    )
    .await;
    let s = checked_summary(&out.join("summary.json"));
    crate::drills::assert_no_loss("reordered", &s);
    assert_ne!(res.status.code(), Some(3), "{}", s["reasons"]);
    assert_ne!(s["verdict"], "inconclusive", "{}", s["reasons"]);
    let losses = s["faults"][0]["power_loss"].as_array().unwrap();
    assert_eq!(losses.len(), 3, "{losses:?}");
    for l in losses {
        assert_eq!(l["keep"], "reordered", "{l}");
        assert!(l["seed"].is_u64(), "{l}");
    }
}

/// A follower's disk first fails every write, then fills up, then heals; then the other
/// follower is killed, so the quorum needs the node whose disk failed.
/// Why every write: the log preallocates its segments, and a write over allocated blocks
/// succeeds on a full disk, as it would on ext4. While every write fails, so does every
/// preallocation, so node 3 comes out of the errors on a plain segment that grows by appends:
/// the full disk then reaches it for certain (with half the writes failing it only sometimes
/// did, and CI once saw no ENOSPC at all). The cluster
/// serves throughout, the node reports its errors in `/status` (the summary's `log_commits`)
/// and in its log, never crash-loops, and recovers: writes succeed while it is half the quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_a_failing_then_full_disk_keeps_serving_and_recovers() {
    require_fuse();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let Ran {
        summary: s, out, ..
    } = run_scenario(dir.path(), "bad-disk", BAD_DISK, Duration::from_secs(150)).await;
    crate::drills::assert_no_loss("bad-disk", &s);
    let faults = s["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 3);
    for f in faults {
        assert!(f["error"].is_null(), "{f}");
    }
    assert_eq!(faults[0]["resolved"], serde_json::json!([3]));
    let commits = &s["log_commits"]["3"];
    assert!(
        commits["errors"].as_u64().unwrap() > 0,
        "node 3 reports the failed commits: {commits}"
    );
    assert!(
        commits["last_error"].is_string(),
        "and says what failed: {commits}"
    );
    let log = std::fs::read_to_string(out.join("nodes/3.log")).unwrap();
    assert!(
        log.contains("Input/output error") || log.contains("os error 5"),
        "node 3's log names the EIO"
    );
    assert!(
        log.contains("No space left") || log.contains("os error 28"),
        "node 3's log names the ENOSPC"
    );
    // Node 3 ran as one process from start to end: never down, so never restarted.
    let csv = std::fs::read_to_string(out.join("nodes.csv")).unwrap();
    let states: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("3"))
        .filter_map(|l| l.split(',').nth(2))
        .collect();
    assert!(states.len() > 10, "{csv}");
    assert!(states.iter().all(|s| *s == "up"), "node 3: {states:?}");
    // With node 2 killed, every write needs node 3's disk: it must have recovered.
    let after_kill = s["recovery"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["fault"] == 2)
        .unwrap();
    // Before node 2 is back: a node 3 that never recovered would make the cluster wait for it.
    let down_for = faults[2]["healed_at_s"].as_f64().unwrap() - faults[2]["at_s"].as_f64().unwrap();
    let first = after_kill["first_success_after_s"].as_f64();
    assert!(
        first.is_some_and(|t| t < down_for),
        "writes succeed with node 3 in the quorum, while node 2 is down ({down_for:.1} s): {after_kill}"
    );
    assert!(
        after_kill["unrecovered"].as_array().unwrap().is_empty(),
        "{after_kill}"
    );
    let totals = &s["totals"];
    assert!(
        totals["ok"].as_f64().unwrap() > 0.9 * totals["ops"].as_f64().unwrap(),
        "the cluster kept serving: {totals}"
    );
}

const BAD_DISK: &str = r#"name = "bad-disk"
description = "a follower's disk fails, fills up and heals; then the other follower dies"
duration = "24s"

[cluster]
nodes = 3

[load]
workload = "w"
rate = 200
keys = 2000
value_size = 2048         # the file must grow while the disk is full
warmup = "2s"
timeout = "1s"

[[fault]]
at = "3s"
action = "disk-error"
target = "node:3"
probability = 1.0         # every roll fails too, so node 3 leaves it on a plain segment
on = "write"              # a failed fsync would stop the node (lost-fsync drills test that)
for = "4s"

[[fault]]
at = "8s"
action = "disk-full"
target = "node:3"
for = "4s"

[[fault]]
at = "15s"
action = "kill"
target = "node:2"
for = "6s"

[checks]
lost_writes = true
"#;

/// Ctrl-C in the middle of a disk drill: raftdrill exits 4 with an aborted result and no
/// faultfs mount and no process of its own is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_disk_drill_leaves_no_mount() {
    require_fuse();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = spawn_raftdrill(
        &[
            "run",
            "slow-disk-follower",
            "--no-tui",
            "--out",
            &out.display().to_string(),
        ],
        dir.path(),
        std::process::Stdio::null(),
        false,
    );
    let pid = child.id().unwrap();
    let points = eventually(
        Duration::from_secs(60),
        "a faultfs mount under each of the three nodes",
        || async move {
            let m = mounts_of(pid);
            (m.len() == 3).then_some(m)
        },
    )
    .await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), Some(4), "aborted runs exit 4");
    assert_eq!(
        mounted(&points),
        Vec::<PathBuf>::new(),
        "mounts left after Ctrl-C"
    );
    none_left_by(pid).await;
}
