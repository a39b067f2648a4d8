//! `raftdrill capacity` against a planted knee (`apply_delay = "10ms"`: at most ≈ 98 entries
//! per second): the ways a search ends early. The search itself, its accuracy and its files
//! are tested in `capacity_knee.rs`.

use std::time::Duration;

use crate::harness::*;

const KNEE: &str = r#"name = "knee"
description = "a planted capacity limit"
duration = "10s"

[cluster]
nodes = 3
apply_delay = "10ms"

[load]
workload = "w"
rate = 100
keys = 1000
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_exits_1_when_even_the_first_step_fails() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("knee.toml");
    std::fs::write(&file, KNEE).unwrap();
    let (f, o) = (
        file.display().to_string(),
        dir.path().join("cap").display().to_string(),
    );
    let args = [
        "capacity",
        &f,
        "--slo",
        "p50<0.001ms",
        "--step-duration",
        "2s",
        "--step-warmup",
        "1s",
        "--out",
        &o,
    ];
    let res = raftdrill(&args, dir.path(), Duration::from_secs(120)).await;
    assert_eq!(
        res.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(String::from_utf8_lossy(&res.stdout).contains("no sustainable rate"));
}

/// A step whose backlog cannot drain before the next one must not pass silently into it: the
/// step records that its log did not drain and the search stops, exit 4. (With `apply_delay`
/// at 100 ms, a 2 s step at 50 ops/s leaves about 9 s of entries to apply; the settle timeout
/// is 1 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_cannot_drain_stops_the_search() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.toml");
    std::fs::write(&file, KNEE.replace("\"10ms\"", "\"100ms\"")).unwrap();
    let out = dir.path().join("cap");
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let args = [
        "capacity",
        &f,
        "--slo",
        "p99<60s",
        "--step-duration",
        "2s",
        "--step-warmup",
        "1s",
        "--start-rate",
        "50",
        "--settle-timeout",
        "1s",
        "--out",
        &o,
    ];
    let res = raftdrill(&args, dir.path(), Duration::from_secs(120)).await;
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(4), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        1,
        "no step ran on a polluted cluster: {stderr}"
    );
    assert_eq!(steps[0]["drained"], false);
    assert!(
        report["stopped"]
            .as_str()
            .unwrap()
            .contains("did not drain"),
        "{report}"
    );
}

/// A scenario whose thresholds give no warn level to derive an SLO from is refused (exit 2)
/// rather than searched with an empty SLO that every step would pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_slo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("noslo.toml");
    let text = format!(
        "{KNEE}\n[thresholds]\np99 = {{ break = \"1s\" }}\nsuccess_rate = {{ break = \"90%\" }}\nnode_cpu = {{ warn = \"75%\" }}\n"
    );
    std::fs::write(&file, text).unwrap();
    let f = file.display().to_string();
    let res = raftdrill(&["capacity", &f], dir.path(), Duration::from_secs(30)).await;
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--slo"), "{stderr}");
    assert!(!dir.path().join("results").exists(), "nothing started");
}
