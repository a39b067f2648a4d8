//! `corrupt`: a follower's log damaged while it is stopped. The node either refuses its files
//! (recorded with its reason, and the run carries on without it) or starts and is judged on
//! what it serves; the cluster loses no acknowledged write either way.

use std::time::Duration;

use crate::harness::{Ran, assert_faults_fired, run_scenario, serial};

const FLIP: &str = r#"name = "damaged-follower-log"
duration = "20s"

[cluster]
nodes = 3

[load]
workload = "w"
rate = 150
keys = 600
value_size = 128
warmup = "1s"
timeout = "1s"

[[fault]]
at = "9s"
action = "corrupt"
target = "node:3"
how = "flip"
file = "log"
bytes = 1

[checks]
lost_writes = true
"#;

/// Runs `scenario` (the drill above, with `how` in place of the flip), checks what every
/// damaged-log run must hold, and returns the summary.
async fn run(how: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let text = match how {
        "flip" => FLIP.to_string(),
        // A snapshot every 300 entries: node 3 has one to damage by 9 s.
        "snapshot" => FLIP
            .replace("file = \"log\"", "file = \"snapshot\"")
            .replace("nodes = 3", "nodes = 3\nsnapshot_every = 300"),
        other => FLIP
            .replace("how = \"flip\"", &format!("how = \"{other}\""))
            .replace("bytes = 1\n", ""),
    };
    let Ran {
        summary: s, out, ..
    } = run_scenario(dir.path(), how, &text, Duration::from_secs(120)).await;
    crate::drills::assert_no_loss(how, &s);
    assert_faults_fired(&s);
    let fault = &s["faults"][0];
    let c = &fault["corruption"][0];
    assert_eq!(c["node"], 3, "{fault}");
    let (kind, file_end) = match how {
        "snapshot" => ("flip", "snapshot.bin"),
        other => (other, ".wal"),
    };
    assert_eq!(c["how"], kind, "{fault}");
    assert!(c["file"].as_str().unwrap().ends_with(file_end), "{c}");
    assert!(
        c["offset"].as_u64().unwrap() < c["file_len"].as_u64().unwrap(),
        "{c}"
    );
    assert!(
        ["pass", "warn", "fail"].contains(&s["verdict"].as_str().unwrap()),
        "a damaged follower is a finding, not a tool failure: {} {}",
        s["verdict"],
        s["reasons"]
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Corrupted: node 3"), "{report}");
    s
}

/// One bit flipped in what node 3's log holds (after a clean stop, which seals the segment):
/// the node refuses the log, saying where it is damaged, and the run carries on without it;
/// nothing is lost and its exit is not taken for a death on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_in_a_followers_log_is_refused_and_loses_nothing() {
    let _serial = serial().await;
    let s = run("flip").await;
    let c = &s["faults"][0]["corruption"][0];
    assert_eq!(c["len"], 1, "{c}");
    assert_eq!(c["outcome"], "refused-start", "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("is damaged"), "the refusal says why: {c}");
    assert!(s["node_exits"].as_array().is_none_or(Vec::is_empty), "{s}");
}

/// Node 3's log cut short: that looks like a torn tail, so the node starts with a log that
/// lacks entries it had acknowledged. The leader must bring it back (openraft's
/// `loosen-follower-log-revert`; without it the leader's Raft core panics on the reverted
/// follower and the cluster stops serving), and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_log_cut_short_is_repaired_from_the_leader() {
    let _serial = serial().await;
    let s = run("truncate").await;
    let c = &s["faults"][0]["corruption"][0];
    assert_eq!(c["outcome"], "started", "{c}");
    assert_ne!(s["verdict"], "inconclusive", "{}", s["reasons"]);
}

/// One bit flipped in node 3's snapshot: the snapshot's checksum refuses it at start (without
/// one, a flipped value would be loaded and served), and the cluster loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_in_a_followers_snapshot_is_refused() {
    let _serial = serial().await;
    let s = run("snapshot").await;
    let c = &s["faults"][0]["corruption"][0];
    assert_eq!(c["outcome"], "refused-start", "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("snapshot") && detail.contains("is damaged"),
        "{c}"
    );
}
