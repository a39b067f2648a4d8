//! `corrupt`: a follower's log damaged while it is stopped. The node either refuses its files
//! (recorded with its reason, and the run carries on without it) or starts and is judged on
//! what it serves; the cluster loses no acknowledged write either way.

use std::time::Duration;

use crate::harness::{checked_summary, raftdrill, serial};

const FLIP: &str = r#"name = "flip-follower-log"
duration = "20s"

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

/// One bit flipped in node 3's log, somewhere in what it wrote: the run records the file, the
/// range and the node's answer, loses nothing, and never blames the tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_in_a_followers_log_is_refused_or_repaired_and_loses_nothing() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flip.toml");
    std::fs::write(&file, FLIP).unwrap();
    let out = dir.path().join("run");
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let res = raftdrill(
        &["run", &f, "--no-tui", "--out", &o],
        dir.path(),
        Duration::from_secs(120),
    )
    .await;
    let s = checked_summary(&out.join("summary.json"));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(
        res.status.code().map(i64::from),
        s["exit_code"].as_i64(),
        "{stderr}"
    );
    crate::drills::assert_no_loss("flip", &s);
    let fault = &s["faults"][0];
    assert!(fault["error"].is_null(), "the fault fired: {fault}");
    let c = &fault["corruption"][0];
    assert_eq!(c["node"], 3, "{fault}");
    assert!(c["file"].as_str().unwrap().ends_with(".wal"), "{c}");
    assert!(
        c["offset"].as_u64().unwrap() < c["file_len"].as_u64().unwrap(),
        "{c}"
    );
    assert_eq!(c["len"], 1, "{c}");
    match c["outcome"].as_str().unwrap() {
        "refused-start" => {
            // Refused: that is the store's answer, recorded with its reason; node 3 is out of
            // service, not dead on its own, so the run is judged on the other two.
            let detail = c["detail"].as_str().unwrap_or_default();
            assert!(!detail.is_empty(), "the refusal says why: {c}");
            assert!(s["node_exits"].as_array().is_none_or(Vec::is_empty), "{s}");
        }
        "started" => {
            // Started on the damaged log: it must serve every acknowledged write (checked
            // above) and catch up.
            assert_ne!(s["verdict"], "inconclusive", "{}", s["reasons"]);
        }
        other => panic!("node 3 neither started nor refused: {other} ({c})"),
    }
    assert!(
        ["pass", "warn", "fail"].contains(&s["verdict"].as_str().unwrap()),
        "a damaged follower is a finding, not a tool failure: {} {}",
        s["verdict"],
        s["reasons"]
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Corrupted: node 3"), "{report}");
}
