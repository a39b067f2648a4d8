//! Session reads end to end (`consistency = "session"`): each load worker sends, as
//! `min_index`, the highest commit position it has seen from its own writes and reads, and the
//! drill's session check holds every read to that promise. Read-your-writes holds while a
//! follower is killed; a node that serves session reads without waiting for `min_index` (the
//! planted `unsafe_reads` bug) behind a slow link is caught, and the same lag without the bug
//! is not.
//!
//! The load is a closed loop of 6 users: each worker's next read follows its last write at
//! once, so the reads at stake come many times a second. (An open loop at the same rate spreads
//! its operations over a pool of 75 workers, each running one every half second, by when a
//! follower 60 ms behind has long caught up.)

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::harness::*;

fn scenario(name: &str, cluster_extra: &str, fault: &str) -> String {
    format!(
        r#"name = "{name}"
description = "session reads under a fault"
duration = "16s"

[cluster]
nodes = 3
{cluster_extra}

[load]
workload = "a"
keys = 20
users = 6
warmup = "1s"
timeout = "2s"
consistency = "session"

{fault}

[thresholds]
p99 = {{ warn = "800ms", break = "1500ms" }}
success_rate = {{ warn = "99.5%", break = "90%" }}

[checks]
lost_writes = true
"#
    )
}

/// Runs the session scenario `name` (with `cluster_extra` and `fault`) in `dir/name`; its
/// output and its summary, checked against the schema.
async fn run_drill(
    dir: &Path,
    name: &str,
    cluster_extra: &str,
    fault: &str,
) -> (std::process::Output, serde_json::Value) {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, scenario(name, cluster_extra, fault)).unwrap();
    let out = dir.join(name);
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let args = ["run", &f, "--no-tui", "--out", &o];
    let res = raftdrill(&args, dir, Duration::from_secs(120)).await;
    (res, checked_summary(&out.join("summary.json")))
}

/// Reads in `history.jsonl` that came after an acknowledged write of the same key by the same
/// worker: the reads where read-your-writes is at stake.
fn reads_after_own_write(history: &str) -> usize {
    let mut ops: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    ops.sort_by_key(|o| o["invoke_us"].as_u64().unwrap());
    let mut wrote: HashMap<(u64, String), bool> = HashMap::new();
    let mut n = 0;
    for o in ops {
        let who = (
            o["worker"].as_u64().unwrap(),
            o["key"].as_str().unwrap().to_string(),
        );
        let ok = o["outcome"] == "ok";
        match o["kind"].as_str().unwrap() {
            "read" if ok && wrote.contains_key(&who) => n += 1,
            "update" | "insert" if ok => {
                wrote.insert(who, true);
            }
            _ => {}
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_reads_read_your_writes_while_a_follower_is_killed() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let fault = "[[fault]]\nat = \"5s\"\naction = \"kill\"\ntarget = \"follower\"\nfor = \"5s\"";
    let (res, s) = run_drill(dir.path(), "session-follower-kill", "", fault).await;
    let out = dir.path().join("session-follower-kill");
    let session = &s["checks"]["session"];
    assert_eq!(session["status"], "ok", "{session}\n{}", s["reasons"]);
    assert_eq!(session["violations"], 0, "{session}");
    assert!(
        session["reads_checked"].as_u64().unwrap() > 300,
        "too few session reads were judged: {session}"
    );
    assert_eq!(s["load"]["consistency"], "session");
    assert_eq!(s["faults"][0]["action"], "kill");
    // Read-your-writes was at stake many times: a worker read a key it had written.
    let history = std::fs::read_to_string(out.join("history.jsonl")).unwrap();
    let at_stake = reads_after_own_write(&history);
    assert!(at_stake > 20, "only {at_stake} reads followed an own write");
    // Session reads are left out of the linearizability check, which says so, and the rest
    // of the history is linearizable.
    let linear = &s["checks"]["linearizability"];
    assert_eq!(linear["status"], "ok", "{linear}");
    assert!(
        linear["reason"].as_str().unwrap().contains("session reads"),
        "{linear}"
    );
    assert_eq!(s["checks"]["lost_writes"]["lost"], 0);
    assert!(
        matches!(res.status.code(), Some(0)),
        "exit {:?}: {}\n{}",
        res.status.code(),
        s["reasons"],
        String::from_utf8_lossy(&res.stderr)
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("sessions held"), "{report}");
}

/// The planted bug: `unsafe_reads` makes every node answer reads from its own state at once,
/// so a session read ignores its `min_index`. With one follower behind a slow link it lags the
/// log, and reads served there go back in time: the session check must say so, exit 3. The
/// same drill without the bug (the control) must hold every session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_reads_that_ignore_min_index_are_caught() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let timing = "heartbeat = \"300ms\"\nelection_timeout = \"1s..2s\"";
    let fault = "[[fault]]\nat = \"3s\"\naction = \"delay\"\ntarget = \"follower\"\nlatency = \"60ms\"\nfor = \"10s\"";
    let unsafe_reads = format!("unsafe_reads = true\n{timing}");
    let (res, s) = run_drill(dir.path(), "session-unsafe", &unsafe_reads, fault).await;
    let session = &s["checks"]["session"];
    assert_eq!(session["status"], "anomaly", "{session}\n{}", s["reasons"]);
    assert!(session["violations"].as_u64().unwrap() > 0, "{session}");
    let first = &session["examples"][0];
    let (needed, got) = (
        first["required_index"].as_u64().unwrap(),
        first["returned_index"].as_u64().unwrap_or(0),
    );
    assert!(got < needed, "{first}");
    assert_eq!(res.status.code(), Some(3), "{}", s["reasons"]);
    assert!(
        s["reasons"].to_string().contains("went back in time"),
        "{}",
        s["reasons"]
    );

    let (res, s) = run_drill(dir.path(), "session-control", timing, fault).await;
    let session = &s["checks"]["session"];
    assert_eq!(session["status"], "ok", "{session}\n{}", s["reasons"]);
    assert!(
        session["reads_checked"].as_u64().unwrap() > 300,
        "{session}"
    );
    assert_eq!(res.status.code(), Some(0), "{}", s["reasons"]);
}
