//! `raftdrill cluster` as a user runs it: its output, its stop paths, its errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// Pids whose parent is `pid`.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next()),
            Some(Some('Z'))
        ),
        Err(_) => false,
    }
}

/// Starts `raftdrill cluster --nodes 3`, waits for its endpoint table, returns it and the node pids.
/// Starts `raftdrill cluster` with its data in `data` (the test's own folder: a raftdrill
/// killed by SIGKILL cannot remove a temporary folder of its own).
fn start_cluster_cmd(data: &std::path::Path) -> (Child, Vec<u32>) {
    let mut child = Command::new(exe())
        .args(["cluster", "--nodes", "3", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut table = Vec::new();
    // The line iterator ends if raftdrill exits, so this loop is bounded.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("Ctrl-C stops");
        table.push(line);
        if done {
            break;
        }
    }
    assert!(
        table.iter().any(|l| l.contains("leader")),
        "no endpoint table: {table:?}"
    );
    assert_eq!(
        table
            .iter()
            .filter(|l| l.contains("http://127.0.0.1:"))
            .count(),
        4,
        "{table:?}"
    );
    let nodes = children_of(child.id());
    assert_eq!(nodes.len(), 3, "three node processes: {nodes:?}");
    assert_eq!(
        started_by(child.id()).len(),
        3,
        "the nodes carry their raftdrill's pid"
    );
    (child, nodes)
}

pub(crate) async fn all_gone(nodes: &[u32]) {
    let nodes = nodes.to_vec();
    eventually(
        Duration::from_secs(30),
        "every node process to exit",
        || {
            let nodes = nodes.clone();
            async move { nodes.iter().all(|p| !alive(*p)).then_some(()) }
        },
    )
    .await;
}

/// SIGTERM stops every node and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_command_stops_every_node_on_sigterm() {
    let _serial = serial().await;
    let data = tempfile::tempdir().unwrap();
    let (mut child, nodes) = start_cluster_cmd(data.path());
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    all_gone(&nodes).await;
    none_left_by(child.id()).await;
}

/// SIGKILL of raftdrill itself leaves no node behind (the parent-death signal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_node_outlives_a_sigkilled_raftdrill() {
    let _serial = serial().await;
    let data = tempfile::tempdir().unwrap();
    let (mut child, nodes) = start_cluster_cmd(data.path());
    child.kill().unwrap();
    child.wait().unwrap();
    all_gone(&nodes).await;
    none_left_by(child.id()).await;
}

/// A port in use is a one-line error and exit code 4, with no node left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_in_use_is_a_one_line_error_with_exit_code_4() {
    let _serial = serial().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let child = Command::new(exe())
        .args(["cluster", "--nodes", "3", "--base-port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(started_by(pid).is_empty(), "no node left running");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("in use"),
        "{stderr}"
    );
}
