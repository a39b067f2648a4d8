//! `raftdrill run` end to end: a short kill drill and its files, the planted memory-store bug,
//! bad scenarios, and the stop paths (Ctrl-C, SIGKILL). Every other fault kind runs in
//! `library.rs`, through the built-in scenario that exercises it, with the same checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;

/// A short drill: 3 nodes (unless the fault text says otherwise), 100 ops/s of YCSB-A, one
/// fault at 5 s. The success-rate break level is low on purpose: these drills test the fault
/// machinery, recovery figures and data safety, not the capacity of a busy CI machine.
fn scenario(name: &str, cluster: &str, faults: &str, duration: &str) -> String {
    format!(
        r#"name = "{name}"
description = "test drill"
duration = "{duration}"

[cluster]
nodes = 3
{cluster}

[load]
workload = "a"
rate = 100
keys = 1000
warmup = "1s"

{faults}

[thresholds]
success_rate = {{ warn = "99%", break = "50%" }}
p99 = {{ warn = "800ms", break = "5s" }}
node_cpu = {{ warn = "75%", break = "100%" }}

[checks]
lost_writes = true
"#
    )
}

fn fault(action: &str, target: &str, extra: &str) -> String {
    format!("[[fault]]\nat = \"5s\"\naction = \"{action}\"\ntarget = \"{target}\"\n{extra}\n")
}

/// Writes the scenario, runs it, and returns the exit code, the summary and the run folder.
async fn drill(text: &str) -> (Option<i32>, serde_json::Value, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("run");
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let res = raftdrill(
        &["run", &f, "--no-tui", "--out", &o],
        dir.path(),
        Duration::from_secs(90),
    )
    .await;
    let summary_path = out.join("summary.json");
    assert!(
        summary_path.exists(),
        "no summary; exit {:?}\nstdout: {}\nstderr: {}",
        res.status,
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    (res.status.code(), checked_summary(&summary_path), out, dir)
}

/// The lost-write check ran and established that nothing was lost: every key it had to read
/// came back (a check whose read-back failed has proven nothing).
pub fn assert_no_loss(name: &str, s: &serde_json::Value) {
    let lw = &s["checks"]["lost_writes"];
    assert_eq!(lw["status"], "ok", "{name}: {lw}");
    assert_eq!(lw["lost"], 0, "{name}: lost writes: {lw}");
    assert_eq!(lw["unreadable"], 0, "{name}: unreadable keys: {lw}");
    assert!(
        lw["verified"].as_u64().unwrap() > 0,
        "{name}: nothing verified: {lw}"
    );
}

/// The drill passed its checks: nothing lost, the fault fired, recovery figures were measured.
fn assert_recovered(name: &str, code: Option<i32>, s: &serde_json::Value, leader_hit: bool) {
    assert_no_loss(name, s);
    let lw = &s["checks"]["lost_writes"];
    assert!(
        lw["acked"].as_u64().unwrap() > 100,
        "{name}: too few acknowledged writes: {lw}"
    );
    assert_eq!(
        code,
        Some(0),
        "{name}: verdict {} reasons {}",
        s["verdict"],
        s["reasons"]
    );
    let fault = &s["faults"][0];
    assert!(
        fault["error"].is_null(),
        "{name}: fault did not fire: {fault}"
    );
    assert!(!fault["resolved"].as_array().unwrap().is_empty());
    let r = &s["recovery"][0];
    assert!(r["first_success_after_s"].is_number(), "{name}: {r}");
    assert!(r["tps_90pct_after_s"].is_number(), "{name}: {r}");
    if leader_hit {
        assert!(r["leader_elected_after_s"].is_number(), "{name}: {r}");
    }
    for key in ["cluster", "faults", "recovery", "checks"] {
        assert!(!s[key].is_null(), "{name}: summary lacks {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_drill_recovers_and_loses_nothing() {
    let _serial = serial().await;
    let text = scenario(
        "t-kill",
        "",
        &fault("kill", "leader", "for = \"3s\""),
        "13s",
    );
    let (code, s, out, _dir) = drill(&text).await;
    assert_recovered("kill", code, &s, true);
    assert!(
        s["faults"][0]["healed_at_s"].is_number(),
        "restarted after its `for`"
    );
    let csv = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert!(
        csv.contains("kill leader"),
        "the timeline marks the fault: {csv}"
    );
    assert!(out.join("report.md").exists() && out.join("latency.hgrm").exists());
    for id in 1..=3 {
        assert!(out.join(format!("nodes/{id}.log")).exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_full_crash_fails_the_lost_write_check() {
    let _serial = serial().await;
    let text = scenario(
        "t-memcrash",
        "store = \"memory\"",
        &fault("kill", "all", "for = \"2s\""),
        "12s",
    );
    let (code, s, _, _dir) = drill(&text).await;
    assert_eq!(
        code,
        Some(3),
        "verdict {} reasons {}",
        s["verdict"],
        s["reasons"]
    );
    assert_eq!(s["verdict"], "fail");
    let lw = &s["checks"]["lost_writes"];
    assert!(lw["lost"].as_u64().unwrap() > 0, "{lw}");
    assert!(
        !lw["lost_keys"].as_array().unwrap().is_empty(),
        "each lost key comes with evidence"
    );
}

/// The same crash on disk loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scenarios_exit_2_and_start_nothing() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-scenarios");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&corpus).unwrap().flatten() {
        let f = entry.path().display().to_string();
        let res = raftdrill(
            &["run", &f, "--no-tui"],
            dir.path(),
            Duration::from_secs(20),
        )
        .await;
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{f}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{f}: {err}");
        assert!(err.contains(&f), "{f}: names the file: {err}");
    }
    assert!(!dir.path().join("results").exists(), "nothing was started");
    let res = raftdrill(
        &["run", "no-such-scenario", "--no-tui"],
        dir.path(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(res.status.code(), Some(2));
}

/// SIGINT mid-drill: the load stops, everything heals, the results say `aborted`, and no node
/// is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_drill_writes_an_aborted_result() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = spawn_raftdrill(
        &[
            "run",
            "leader-kill",
            "--no-tui",
            "--out",
            &out.display().to_string(),
        ],
        dir.path(),
        std::process::Stdio::piped(),
        false,
    );
    let pid = child.id().unwrap();
    let nodes = eventually(
        Duration::from_secs(30),
        "three node processes",
        || async move {
            let n = crate::cluster_cmd::children_of(pid);
            (n.len() == 3).then_some(n)
        },
    )
    .await;
    // Wait for the first progress line: the load is running.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("t=")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("a progress line")
        .unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), Some(4), "aborted runs exit 4");
    let s = checked_summary(&out.join("summary.json"));
    assert_eq!(s["verdict"], "aborted");
    crate::cluster_cmd::all_gone(&nodes).await;
    none_left_by(pid).await;
}

/// SIGKILL of raftdrill mid-drill leaves no node process alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_drill_leaves_no_node() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_raftdrill(
        &["run", "baseline", "--no-tui"],
        dir.path(),
        std::process::Stdio::null(),
        false,
    );
    let pid = child.id().unwrap();
    let nodes = eventually(
        Duration::from_secs(30),
        "three node processes",
        || async move {
            let n = crate::cluster_cmd::children_of(pid);
            (n.len() == 3).then_some(n)
        },
    )
    .await;
    child.kill().await.unwrap();
    let nodes2 = nodes.clone();
    eventually(
        Duration::from_secs(30),
        "every node to die with raftdrill",
        || {
            let nodes = nodes2.clone();
            async move {
                nodes
                    .iter()
                    .all(|p| !crate::cluster_cmd::alive(*p))
                    .then_some(())
            }
        },
    )
    .await;
    none_left_by(pid).await;
}
