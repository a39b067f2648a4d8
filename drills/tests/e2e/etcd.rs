//! etcd as a target (Debian's etcd-server, etcd 3.4): the default drill, an isolated leader,
//! a capacity search, and the refusals that need no etcd. The tests that run etcd are
//! `#[ignore]`d in the plain suite; `.ci/run` installs the package and runs them, and they fail
//! (never skip) without the binary.

use std::time::Duration;

use crate::drills::assert_no_loss;
use crate::harness::*;

/// etcd must be on PATH for the ignored tests: say so plainly when it is not.
fn need_etcd() {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()))
        .unwrap_or(false);
    assert!(found, "etcd is not on PATH: apt-get install -y etcd-server");
}

/// The default drill (a leader kill under YCSB-A) on etcd: every claim of the drill holds and
/// no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd (Debian's etcd-server); .ci/run installs it"]
async fn etcd_default_drill_loses_nothing() {
    need_etcd();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.display().to_string();
    let res = raftdrill(
        &["run", "--target", "etcd", "--no-tui", "--out", &o],
        dir.path(),
        Duration::from_secs(180),
    )
    .await;
    let s = checked_summary(&out.join("summary.json"));
    assert_eq!(s["cluster"]["target"], "etcd");
    assert_eq!(
        s["cluster"]["timing"]["heartbeat_ms"], 100.0,
        "etcd's defaults"
    );
    assert_no_loss("etcd leader-kill", &s);
    assert_eq!(
        s["checks"]["linearizability"]["status"], "ok",
        "{}",
        s["checks"]
    );
    let r = &s["recovery"][0];
    assert!(r["leader_elected_after_s"].is_number(), "{r}");
    assert!(r["first_success_after_s"].is_number(), "{r}");
    assert_eq!(
        res.status.code(),
        s["exit_code"].as_i64().map(|c| c as i32),
        "{}",
        s["reasons"]
    );
    assert_ne!(res.status.code(), Some(3));
    assert_ne!(
        res.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// The isolated-leader drill on etcd: the links are cut through the attributing proxies, a
/// new leader is elected, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd (Debian's etcd-server); .ci/run installs it"]
async fn etcd_isolated_leader_is_replaced_and_loses_nothing() {
    need_etcd();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.display().to_string();
    let res = raftdrill(
        &[
            "run",
            "isolate-leader",
            "--target",
            "etcd",
            "--duration",
            "25s",
            "--no-tui",
            "--out",
            &o,
        ],
        dir.path(),
        Duration::from_secs(180),
    )
    .await;
    let s = checked_summary(&out.join("summary.json"));
    assert_no_loss("etcd isolate-leader", &s);
    let f = &s["faults"][0];
    assert!(f["error"].is_null(), "{f}");
    assert!(f["hit_leader"].is_number(), "the leader was isolated: {f}");
    let r = &s["recovery"][0];
    assert!(
        r["leader_elected_after_s"].is_number(),
        "a new leader: {r}\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// A capacity search on etcd with short steps finds a sustainable rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd (Debian's etcd-server); .ci/run installs it"]
async fn etcd_capacity_search_finds_a_rate() {
    need_etcd();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cap");
    let o = out.display().to_string();
    let res = raftdrill(
        &[
            "capacity",
            "baseline",
            "--target",
            "etcd",
            "--step-duration",
            "3s",
            "--step-warmup",
            "1s",
            "--start-rate",
            "100",
            "--resolution",
            "25%",
            "--out",
            &o,
        ],
        dir.path(),
        Duration::from_secs(400),
    )
    .await;
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
    assert!(
        report["answer"]["achieved_rate"].as_f64().unwrap() >= 100.0,
        "{report}"
    );
    assert!(report["steps"].as_array().unwrap().len() >= 2, "{stderr}");
}

/// etcd has no lease reads: asked for them, raftdrill refuses before starting anything,
/// exit 2, and says why (no etcd needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_on_etcd_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let res = raftdrill(
        &[
            "load",
            "--target",
            "etcd",
            "--endpoints",
            "http://127.0.0.1:9",
            "--consistency",
            "lease",
            "--rate",
            "10",
            "--duration",
            "1s",
        ],
        dir.path(),
        Duration::from_secs(20),
    )
    .await;
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("lease"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let file = dir.path().join("lease.toml");
    std::fs::write(
        &file,
        "name = \"x\"\nduration = \"10s\"\n[cluster]\ntarget = \"etcd\"\n[load]\nworkload = \"b\"\nrate = 10\nconsistency = \"lease\"\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let res = raftdrill(
        &["run", &f, "--no-tui"],
        dir.path(),
        Duration::from_secs(20),
    )
    .await;
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("lease") && err.contains("4:10"),
        "names the place: {err}"
    );
    assert!(!dir.path().join("results").exists(), "nothing started");
}

/// A stalled WAL disk under etcd's leader (its WAL sits on faultfs; its memory-mapped database
/// cannot): the leader stops heartbeating while its fsync hangs, a new leader is elected and
/// nothing is lost. A power loss is refused on etcd (exit 2) and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd (Debian's etcd-server); .ci/run installs it"]
async fn etcd_stalled_leader_disk_is_replaced_and_power_loss_is_refused() {
    need_etcd();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    // Whether the poller sees the new leader before the stall ends is a race on two cores (one
    // CI run in several missed it: writes came back after 1.2 s with no new term seen): the
    // claim counts as broken only when a second run agrees. No loss holds in every run.
    let mut seen = Vec::new();
    for attempt in 1..=2 {
        let out = dir.path().join(format!("run-{attempt}"));
        let o = out.display().to_string();
        let res = raftdrill(
            &[
                "run",
                "disk-stall-leader",
                "--target",
                "etcd",
                "--duration",
                "20s",
                "--no-tui",
                "--out",
                &o,
            ],
            dir.path(),
            Duration::from_secs(180),
        )
        .await;
        let s = checked_summary(&out.join("summary.json"));
        assert_eq!(s["cluster"]["target"], "etcd");
        assert_no_loss("etcd disk-stall-leader", &s);
        assert_eq!(
            res.status.code(),
            s["exit_code"].as_i64().map(|c| c as i32),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let r = s["recovery"][0].clone();
        assert!(r["first_success_after_s"].is_number(), "{r}");
        if r["leader_elected_after_s"].is_number() {
            seen.clear();
            break;
        }
        seen.push(r);
    }
    assert!(
        seen.is_empty(),
        "no new leader seen after the leader's disk stalled, twice: {seen:?}"
    );
    let refused = raftdrill(
        &["run", "power-loss-all", "--target", "etcd", "--no-tui"],
        dir.path(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("power-loss") && err.contains("WAL"), "{err}");
}

/// A limping etcd leader (5 % of a core) and a bit flipped in a stopped follower's WAL. Both
/// are findings about etcd, not tool failures: the quota's finding is reported, and etcd's
/// answer to the damaged WAL is recorded: mostly a fatal refusal at start (`walpb: crc
/// mismatch`, or a decoding error when the bit falls in a record's length or tag), sometimes
/// a start, while the other two members serve on and lose nothing. The stop before the damage is a
/// SIGTERM that etcd answers at once: it is the drill's stop, never an exit on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd (Debian's etcd-server); .ci/run installs it"]
async fn etcd_a_limping_leader_and_a_damaged_wal_are_findings() {
    need_etcd();
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let s = run_scenario(
        dir.path(),
        "etcd-limp-corrupt",
        LIMP_CORRUPT,
        Duration::from_secs(180),
    )
    .await
    .summary;
    assert_no_loss("etcd limp and corrupt", &s);
    assert_faults_fired(&s);
    assert!(s["recovery"][0]["limp"].is_object(), "{}", s["recovery"][0]);
    let c = &s["faults"][1]["corruption"][0];
    assert!(c["file"].as_str().unwrap().ends_with(".wal"), "{c}");
    // Either answer is etcd's own. Most flipped bits it refuses fatally; 28 in 300 it started
    // on, measured (20 in a record's padding, which no checksum covers; 6 read as a torn
    // tail, and the WAL cut there: `wal: repairing`; see bench/etcd-wal-flips.py). Started, the member must have caught up by the end, or the run would be
    // inconclusive, which the verdict below rules out.
    match c["outcome"].as_str() {
        Some("refused-start") => assert!(
            c["detail"]
                .as_str()
                .unwrap()
                .contains("\"level\":\"fatal\""),
            "etcd says why, fatally: {c}"
        ),
        Some("started") => {}
        _ => panic!("etcd neither refused nor served the damaged WAL: {c}"),
    }
    assert!(
        s["node_exits"].as_array().is_none_or(Vec::is_empty),
        "{}",
        s["node_exits"]
    );
    assert!(
        ["pass", "warn", "fail"].contains(&s["verdict"].as_str().unwrap()),
        "{} {}",
        s["verdict"],
        s["reasons"]
    );
}

const LIMP_CORRUPT: &str = r#"name = "etcd-limp-corrupt"
duration = "24s"

[cluster]
nodes = 3
target = "etcd"

[load]
workload = "w"
rate = 100
keys = 600
value_size = 128
warmup = "1s"
timeout = "1s"

[[fault]]
at = "5s"
action = "cpu-limit"
target = "leader"
share = 0.05
for = "4s"

[[fault]]
at = "12s"
action = "corrupt"
target = "node:3"
how = "flip"
file = "log"
bytes = 1

[checks]
lost_writes = true
"#;
