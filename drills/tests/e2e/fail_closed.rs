//! Pass means checked: every path on which a run could not prove what it claims ends
//! `inconclusive` (exit 5) or `fail`, never exit 0. Each test plants one such path and asserts
//! the exact verdict and exit code.

use std::time::Duration;

use crate::harness::{checked_summary, raftdrill, serial, spawn_raftdrill, started_by};

/// A small scenario at 100 ops/s, with `extra` appended.
fn scenario(dir: &std::path::Path, name: &str, secs: u64, extra: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nduration = \"{secs}s\"\n[load]\nworkload = \"a\"\nrate = 100\n\
             warmup = \"1s\"\nkeys = 500\ntimeout = \"1s\"\n{extra}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Runs `file` to its end (with `hooks` planted), returns its exit code and checked summary.
async fn run(
    dir: &std::path::Path,
    file: &str,
    hooks: &str,
) -> (Option<i32>, serde_json::Value, String) {
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = dir.join(format!("out-{stem}-{hooks}"));
    let o = out.display().to_string();
    let child = tokio::process::Command::new(crate::harness::exe())
        .args(["run", file, "--no-tui", "--out", &o])
        .current_dir(dir)
        .env("TMPDIR", dir)
        .env("RAFTDRILL_TEST_HOOKS", hooks)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the run ends")
        .unwrap();
    let s = checked_summary(&out.join("summary.json"));
    (
        res.status.code(),
        s,
        String::from_utf8_lossy(&res.stderr).into_owned(),
    )
}

fn reasons(s: &serde_json::Value) -> String {
    s["reasons"].to_string()
}

/// The pid of node `id` among the processes raftdrill `parent` started.
fn node_pid(parent: u32, id: u64) -> Option<u32> {
    let needle = format!("--id\0{id}\0");
    started_by(parent).into_iter().find(|p| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

/// A node that dies on its own after a restart (SIGKILLed from outside raftdrill) is seen by
/// its exit, named with its status, and makes the run inconclusive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_on_its_own_after_a_restart_is_inconclusive() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "dies",
        14,
        "[[fault]]\nat = \"3s\"\naction = \"restart\"\ntarget = \"node:3\"\n",
    );
    let out = dir.path().join("out");
    let o = out.display().to_string();
    let mut child = spawn_raftdrill(
        &["run", &file, "--no-tui", "--out", &o],
        dir.path(),
        std::process::Stdio::null(),
        false,
    );
    let parent = child.id().expect("running");
    // Node 3's first process, then the one its restart started: that one is killed.
    let first = crate::harness::eventually(Duration::from_secs(30), "node 3 starts", || async {
        node_pid(parent, 3)
    })
    .await;
    let second = crate::harness::eventually(Duration::from_secs(30), "node 3 restarts", || async {
        node_pid(parent, 3).filter(|p| *p != first)
    })
    .await;
    // SAFETY: a process this test's raftdrill started, found by its marker a moment ago.
    unsafe { libc::kill(second as i32, libc::SIGKILL) };
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("the run ends")
        .unwrap();
    let s = checked_summary(&out.join("summary.json"));
    assert_eq!(status.code(), Some(5), "{}", reasons(&s));
    assert_eq!(s["verdict"], "inconclusive");
    let exit = &s["node_exits"][0];
    assert_eq!(exit["node"], 3, "{s}");
    assert!(exit["status"].as_str().unwrap().contains("9"), "{exit}");
    assert!(
        reasons(&s).contains("node 3 exited on its own"),
        "{}",
        reasons(&s)
    );
}

/// A fault aimed at a node that does not exist yet cannot fire: inconclusive, named. And a
/// checker given no time decides nothing: inconclusive too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_cannot_fire_and_a_checker_without_time_are_inconclusive() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let early = scenario(
        dir.path(),
        "early",
        8,
        "[[fault]]\nat = \"2s\"\naction = \"kill\"\ntarget = \"node:4\"\n\
         [[fault]]\nat = \"4s\"\naction = \"add-node\"\n",
    );
    let (code, s, _) = run(dir.path(), &early, "").await;
    assert_eq!(code, Some(5), "{}", reasons(&s));
    assert_eq!(s["verdict"], "inconclusive");
    assert!(
        reasons(&s).contains("fault 1 (kill node:4) did not fire"),
        "{}",
        reasons(&s)
    );
    let hasty = scenario(dir.path(), "hasty", 5, "[checks]\ntime_limit = \"0s\"\n");
    let (code, s, _) = run(dir.path(), &hasty, "").await;
    assert_eq!(code, Some(5), "{}", reasons(&s));
    assert_eq!(s["checks"]["linearizability"]["status"], "unknown");
    assert!(reasons(&s).contains("linearizability not established"));
}

/// A read-back task that panics leaves its key unreadable (never dropped from the check) and
/// the run inconclusive with the panic's message; a panicking operation tracker the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_check_loses_no_evidence_and_is_inconclusive() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "panics", 5, "");
    let (code, s, _) = run(dir.path(), &file, "panic-read-back").await;
    assert_eq!(code, Some(5), "{}", reasons(&s));
    assert_eq!(s["checks"]["lost_writes"]["unreadable"], 1, "{s}");
    assert!(reasons(&s).contains("planted by RAFTDRILL_TEST_HOOKS"));
    let (code, s, _) = run(dir.path(), &file, "panic-tracker").await;
    assert_eq!(code, Some(5), "{}", reasons(&s));
    assert!(
        reasons(&s).contains("the operation tracker"),
        "{}",
        reasons(&s)
    );
    assert!(s["checks"]["lost_writes"].is_null(), "no record, no check");
}

/// An undo that fails fails the run and names the fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heal_that_fails_fails_the_run() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "noheal",
        8,
        "[[fault]]\nat = \"2s\"\naction = \"kill\"\ntarget = \"follower\"\nfor = \"2s\"\n",
    );
    let (code, s, _) = run(dir.path(), &file, "fail-undo").await;
    assert_eq!(code, Some(1), "{}", reasons(&s));
    assert_eq!(s["verdict"], "fail");
    assert!(s["faults"][0]["heal_error"].is_string(), "{}", s["faults"]);
    assert!(
        reasons(&s).contains("the heal of fault 1 (kill follower) failed"),
        "{}",
        reasons(&s)
    );
}

/// A scenario that asks for a check it cannot carry out is refused when it is read: exit 2,
/// the file, line and column of the conflict, and nothing started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linearizability_without_a_history_is_refused_at_parse_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "blind", 5, "history = false\n");
    let res = raftdrill(
        &["run", &file, "--no-tui"],
        dir.path(),
        Duration::from_secs(20),
    )
    .await;
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("blind.toml:9:11"), "names the place: {err}");
    assert!(err.contains("history = false"), "{err}");
    assert!(!dir.path().join("results").exists(), "nothing started");
}
