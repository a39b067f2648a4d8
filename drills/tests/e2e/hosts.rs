//! Nodes on hosts over SSH, on test hosts made by `raftdrill testnet` (network namespaces with
//! their own sshd). They need root, `openssh-server`, `openssh-client` and `iptables`, so they
//! are ignored in the plain run; `.ci/run` installs the packages and runs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use drills::hosts::testnet;
use drills::hosts::{HostCluster, HostOptions, HostsFile};
use drills::local_cluster::new_token;
use drills::proxy::LinkMode;
use raftdrill_wire::{ErrorBody, Role};

use crate::harness::*;

/// A testnet for one test, taken down when dropped (also on a panic).
pub(crate) struct Testnet {
    dir: PathBuf,
    pub(crate) hosts: PathBuf,
    _tmp: tempfile::TempDir,
    // Dropped after `drop` has taken the testnet down (fields drop after the body).
    _lock: NetLock,
}

/// The testnet's names (bridge, namespaces, subnet) are fixed and live in the network namespace,
/// which two test runs on one kernel share (a CI job beside a developer's run). This lock lives
/// there too: an abstract Unix socket, bound for as long as a test holds the testnet and freed by
/// the kernel when its process dies, so the second run waits for the first instead of failing on
/// "a testnet is already up".
pub(crate) struct NetLock(#[allow(dead_code)] std::os::unix::net::UnixListener);

impl NetLock {
    const NAME: &'static [u8] = b"raftdrill-e2e-testnet";
    const WAIT: Duration = Duration::from_secs(20 * 60);

    fn take() -> Self {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(Self::NAME).unwrap();
        let deadline = Instant::now() + Self::WAIT;
        loop {
            match std::os::unix::net::UnixListener::bind_addr(&addr) {
                Ok(l) => return NetLock(l),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    assert!(
                        Instant::now() < deadline,
                        "another test run held the testnet for {:?}",
                        Self::WAIT
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("testnet lock: {e}"),
            }
        }
    }
}

impl Testnet {
    pub(crate) fn up(n: usize) -> Self {
        let lock = NetLock::take();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("testnet");
        let hosts = tmp.path().join("hosts.toml");
        let out = Command::new(exe())
            .args(["testnet", "up", "--hosts", &n.to_string()])
            .arg("--dir")
            .arg(&dir)
            .arg("--out")
            .arg(&hosts)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "testnet up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Testnet {
            dir,
            hosts,
            _tmp: tmp,
            _lock: lock,
        }
    }

    fn file(&self) -> HostsFile {
        HostsFile::load(&self.hosts).unwrap()
    }

    fn down(&self) -> std::process::Output {
        Command::new(exe())
            .args(["testnet", "down", "--dir"])
            .arg(&self.dir)
            .output()
            .unwrap()
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

async fn host_cluster(net: &Testnet) -> (HostCluster, u64) {
    host_cluster_with(net, Vec::new()).await
}

/// As [`host_cluster`], for a scenario that puts links in `link_modes`.
async fn host_cluster_with(net: &Testnet, link_modes: Vec<LinkMode>) -> (HostCluster, u64) {
    let opts = HostOptions {
        exe: exe(),
        port: 7001,
        token: new_token().unwrap(),
        link_modes,
        store: Default::default(),
        clocks: false,
    };
    let c = HostCluster::prepare(&net.file(), opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.start_all().await.unwrap_or_else(|e| panic!("{e}"));
    let leader = c
        .wait_for_leader(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (c, leader)
}

/// Waits for a leader other than `not` among the nodes that answer.
async fn other_leader(c: &HostCluster, not: u64, limit: Duration) -> u64 {
    eventually(limit, "a new leader on the hosts", || async {
        c.statuses()
            .await
            .into_iter()
            .find(|s| s.role == Role::Leader && s.id != not)
            .map(|s| s.id)
    })
    .await
}

/// SIGKILL of the leader over SSH, under writers on the controller: a new leader is elected on
/// another host, every acknowledged write is readable, and the old leader restarts on its data
/// and catches up. On hosts the admin API refuses calls without the run's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_leader_kill_across_namespace_hosts_loses_no_acknowledged_write() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let (c, leader) = host_cluster(&net).await;
    let client = http();

    let resp = client
        .get(format!("{}/status", c.url(leader)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "a host node answered /status without the token"
    );
    let body: ErrorBody = resp.json().await.unwrap();
    assert_eq!(body.error, "unauthorized");

    let writer = Writer::start(c.urls(), 4, 100_000, "hk");
    writer.wait_acked(200, Duration::from_secs(30)).await;
    // The hosts' samplers see the very processes: the pid in each pid file, and its memory as
    // this machine's /proc has it (the namespace hosts share its kernel).
    for (id, n) in c.nodes() {
        let sample = eventually(Duration::from_secs(10), "a CPU sample", || async {
            c.cpu_sample(*id).filter(|s| s.cpu_pct.is_some())
        })
        .await;
        let pid: u32 = std::fs::read_to_string(n.spec.data_dir.join("node.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(sample.pid, pid, "node {id}");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        let (seen, now) = (sample.rss_bytes as f64, (kib * 1024) as f64);
        assert!(
            (seen / now - 1.0).abs() < 0.5,
            "node {id}: sampled rss {seen} vs {now} now"
        );
    }
    let asked = Instant::now();
    c.kill(leader).await.unwrap();
    let killed = Instant::now();
    eprintln!("kill over SSH took {:?}", killed - asked);
    let new = other_leader(&c, leader, Duration::from_secs(20)).await;
    eprintln!(
        "leader {leader} killed over SSH; node {new} leads after {:?}",
        killed.elapsed()
    );
    let before = writer.acked();
    writer
        .wait_acked(before + 200, Duration::from_secs(30))
        .await;
    let log = writer.finish().await;
    let lost = missing(&client, &c.url(new), &log.acked, "linearizable").await;
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(!c.is_running_on_host(leader).await.unwrap());

    c.restart(leader).await.unwrap();
    assert!(c.is_running_on_host(leader).await.unwrap());
    let lost = missing(&client, &c.url(leader), &log.acked, "linearizable").await;
    assert!(
        lost.is_empty(),
        "the restarted node reads back short: {lost:?}"
    );

    let logs = tempfile::tempdir().unwrap();
    c.fetch_logs(logs.path()).await.unwrap();
    let first = std::fs::read_to_string(logs.path().join(format!("{leader}.log"))).unwrap();
    assert!(first.contains("node listening"), "fetched log: {first}");
    let errors = c.stop(Duration::from_secs(5)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!c.is_running_on_host(new).await.unwrap());
}

/// isolate-leader with iptables DROP: the isolated leader's client times out (no reset, no
/// refusal: its packets vanish), the others elect a leader, and after healing the old leader
/// follows the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_isolated_leader_times_out_and_the_rest_elect_a_leader() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let cap = LinkMode::Bandwidth {
        bytes_per_sec: 1 << 20,
    };
    let (c, leader) = host_cluster_with(&net, vec![cap]).await;
    c.isolate(leader).await.unwrap();

    let short = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = put(&short, &c.url(leader), "cut", "v")
        .await
        .expect_err("the isolated leader answered");
    assert!(err.is_timeout(), "expected a timeout, got {err:?}");

    let new = other_leader(&c, leader, Duration::from_secs(20)).await;
    let resp = put(&http(), &c.url(new), "after", "v").await.unwrap();
    assert_eq!(resp.status(), 200);

    c.heal_links().await.unwrap();
    let url = c.url(leader);
    let admin = c.admin().clone();
    eventually(Duration::from_secs(30), "the old leader follows", || {
        let (admin, url) = (admin.clone(), url.clone());
        async move {
            let s = admin.status(&url, Duration::from_secs(1)).await.ok()?;
            (s.role == Role::Follower && s.leader.is_some()).then_some(())
        }
    })
    .await;

    // The controller "crashes" with a cut and a tc cap in place: `hosts heal` stops every
    // node and removes raftdrill's rules and qdiscs.
    c.drop_from(leader, &[new]).await.unwrap();
    assert!(
        c.shapes((new, leader), &cap),
        "the namespace hosts have tbf"
    );
    c.set_links(&[(new, leader)], cap).await.unwrap();
    let qdiscs = ip(&[
        "netns",
        "exec",
        &format!("{}{new}", testnet::NS_PREFIX),
        "tc",
        "qdisc",
        "show",
    ]);
    assert!(qdiscs.contains("htb 5244:"), "{qdiscs}");
    assert!(qdiscs.contains("tbf"), "{qdiscs}");
    drop(c);
    let heal = Command::new(exe())
        .args(["hosts", "heal", "--hosts"])
        .arg(&net.hosts)
        .output()
        .unwrap();
    assert!(
        heal.status.success(),
        "{}",
        String::from_utf8_lossy(&heal.stderr)
    );
    assert_no_rule_or_node_left(&net, 3);
}

/// A read-heavy load from two load hosts on a store with the planted `unsafe_reads` bug,
/// its leader cut off from its peers by iptables for 6 s.
const STALE_FROM_HOSTS: &str = r#"name = "stale-from-hosts"
description = "the leader cut off from its peers, reads from two load hosts"
duration = "13s"

[cluster]
nodes = 3
unsafe_reads = true

[load]
workload = "b"
rate = 200
keys = 50
warmup = "1s"
timeout = "1s"
from = ["h4", "h5"]

[[fault]]
at = "4s"
action = "blackhole"
target = "leader"
for = "6s"

[thresholds]
success_rate = { warn = "99%", break = "50%" }
p99 = { warn = "800ms", break = "5s" }
"#;

/// As [`drill_on_hosts`], expecting exit `code` (0 when `None`), within 150 s.
async fn drill_on_hosts_expecting(
    net: &Testnet,
    text: &str,
    code: Option<i32>,
) -> (serde_json::Value, PathBuf, tempfile::TempDir) {
    run_on_hosts(net, text, Duration::from_secs(150), code.unwrap_or(0)).await
}

/// Runs the scenario `text` on `net`'s hosts (`raftdrill run --hosts`), which must pass
/// (exit 0); returns its summary, its folder and the temporary folder that holds it.
async fn drill_on_hosts(
    net: &Testnet,
    text: &str,
    limit: Duration,
) -> (serde_json::Value, PathBuf, tempfile::TempDir) {
    run_on_hosts(net, text, limit, 0).await
}

async fn run_on_hosts(
    net: &Testnet,
    text: &str,
    limit: Duration,
    code: i32,
) -> (serde_json::Value, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("run");
    let (f, o, h) = (
        file.display().to_string(),
        out.display().to_string(),
        net.hosts.display().to_string(),
    );
    let res = raftdrill(
        &["run", &f, "--hosts", &h, "--no-tui", "--out", &o],
        dir.path(),
        limit,
    )
    .await;
    let stderr = String::from_utf8_lossy(&res.stderr);
    let s = checked_summary(&out.join("summary.json"));
    assert_eq!(res.status.code(), Some(code), "{}\n{stderr}", s["reasons"]);
    (s, out, dir)
}

/// The first fault of a run, which must have fired and been healed: when it took effect and
/// was healed (run seconds), the node it hit, and the run's `timeline.csv`.
fn first_fault_and_timeline(s: &serde_json::Value, out: &Path) -> (f64, f64, String, String) {
    let fault = &s["faults"][0];
    assert!(fault["error"].is_null(), "{fault}");
    (
        fault["at_s"].as_f64().unwrap(),
        fault["healed_at_s"].as_f64().unwrap(),
        fault["resolved"][0].as_u64().unwrap().to_string(),
        std::fs::read_to_string(out.join("timeline.csv")).unwrap(),
    )
}

/// No host of `net` keeps raftdrill's chain, and no node of it runs.
fn assert_no_rule_or_node_left(net: &Testnet, hosts: u64) {
    for id in 1..=hosts {
        let ns = format!("{}{id}", testnet::NS_PREFIX);
        let rules = Command::new("ip")
            .args(["netns", "exec", &ns, "iptables", "-S"])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout);
        assert!(
            !rules.contains("RAFTDRILL"),
            "host {id} keeps rules: {rules}"
        );
        let qdiscs = Command::new("ip")
            .args(["netns", "exec", &ns, "tc", "qdisc", "show"])
            .output()
            .unwrap();
        let qdiscs = String::from_utf8_lossy(&qdiscs.stdout);
        assert!(
            !qdiscs.contains("htb 5244:"),
            "host {id} keeps raftdrill's tc root: {qdiscs}"
        );
        let links = ip(&["netns", "exec", &ns, "ip", "-o", "link"]);
        assert!(
            !links.contains("rdtc"),
            "host {id} keeps a probe pair: {links}"
        );
    }
    let nodes: Vec<String> = processes_mentioning(&net.dir)
        .into_iter()
        .filter(|p| p.contains(" node "))
        .collect();
    assert!(nodes.is_empty(), "nodes left running: {nodes:?}");
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}

/// `testnet down` after a run that left a node running and a DROP rule in place: no
/// namespace, bridge, rule, sshd, node or key is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_testnet_down_leaves_no_namespace_bridge_rule_or_process() {
    let _serial = serial().await;
    let net = Testnet::up(2);
    let (c, leader) = host_cluster(&net).await;
    let other = *c.nodes().keys().find(|id| **id != leader).unwrap();
    c.drop_from(leader, &[other]).await.unwrap();
    let rules = Command::new("ip")
        .args(["netns", "exec", &format!("{}{leader}", testnet::NS_PREFIX)])
        .args(["iptables", "-S"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&rules.stdout).contains("RAFTDRILL"));
    assert!(!processes_mentioning(&net.dir).is_empty());
    // The controller "crashes": nothing is stopped or healed before `down`.
    drop(c);

    let out = net.down();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        testnet::namespaces().is_empty(),
        "{:?}",
        testnet::namespaces()
    );
    assert!(
        !ip(&["link", "show"]).contains("rdnet"),
        "{}",
        ip(&["link", "show"])
    );
    assert!(!ip(&["-4", "addr", "show"]).contains("198.18."));
    let left = processes_mentioning(&net.dir);
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(
        !net.dir.exists(),
        "the keys are left in {}",
        net.dir.display()
    );
    assert!(!net.hosts.exists(), "the hosts file is left");
    let again = net.down();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to remove"));
}

/// `raftdrill run --hosts`: a drill on 3 namespace hosts, the leader killed over SSH and later
/// isolated by iptables, then a follower wiped (out of the membership, its data deleted on
/// its host, back in empty under its old id), under load from the controller. Nothing acknowledged is lost, both
/// faults recover, the summary names the hosts and their clocks, the node logs come back, CPU
/// (sampled on the hosts over SSH) is judged, and no rule or node is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_drill_run_kills_and_isolates_the_leader_and_loses_nothing() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let (s, out, _dir) = drill_on_hosts(
        &net,
        r#"name = "hosts-drill"
description = "kill, then isolate, the leader on hosts; wipe a follower"
duration = "18s"

[cluster]
nodes = 3

[load]
workload = "a"
rate = 100
keys = 1000
warmup = "1s"

[[fault]]
at = "4s"
action = "kill"
target = "leader"
for = "2s"

[[fault]]
at = "9s"
action = "isolate"
target = "leader"
for = "3s"

[[fault]]
at = "14s"
action = "wipe"
target = "follower"

[thresholds]
success_rate = { warn = "99%", break = "50%" }
p99 = { warn = "800ms", break = "5s" }

[checks]
lost_writes = true
"#,
        Duration::from_secs(120),
    )
    .await;
    crate::drills::assert_no_loss("hosts drill", &s);
    for (i, fault) in s["faults"].as_array().unwrap().iter().enumerate() {
        assert!(fault["error"].is_null(), "fault {i}: {fault}");
        assert!(
            i == 2 || fault["healed_at_s"].is_number(),
            "fault {i} was undone: {fault}"
        );
        let r = &s["recovery"][i];
        assert!(r["unrecovered"].as_array().unwrap().is_empty(), "{r}");
        if i < 2 {
            assert!(r["leader_elected_after_s"].is_number(), "{r}");
        }
    }
    // The wiped follower left the membership, lost its data and came back as a voter.
    let wiped = s["faults"][2]["resolved"][0].as_u64().unwrap();
    let log = std::fs::read_to_string(out.join(format!("nodes/{wiped}.log"))).unwrap();
    let last_start = log.lines().rfind(|l| l.contains("node listening"));
    assert!(
        log.matches("node listening").count() >= 2
            && last_start.is_some_and(|l| l.contains("last_log_index=None")),
        "node {wiped} started again empty after its wipe: {log}"
    );
    let hosts = s["cluster"]["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    for host in hosts {
        assert!(host["clock_rtt_ms"].as_f64().unwrap() > 0.0, "{host}");
    }
    let cpu = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["metric"] == "node_cpu")
        .expect("the default node_cpu threshold");
    // Sampled on the hosts: judged, with a figure a node under this load can have.
    assert_ne!(cpu["status"], "unchecked", "{cpu}");
    let busiest = cpu["observed"].as_f64().unwrap();
    assert!(busiest > 0.0 && busiest < 200.0, "{cpu}");
    let rows = std::fs::read_to_string(out.join("nodes.csv")).unwrap();
    for id in 1..=3 {
        let sampled = rows
            .lines()
            .skip(1)
            .map(|r| r.split(',').collect::<Vec<_>>())
            .filter(|c| c[1] == id.to_string())
            .filter(|c| {
                let (cpu, rss) = (c[3].parse::<f64>(), c[4].parse::<u64>());
                // A node that is down has no figures; one that is up has them.
                assert!(
                    c[2] != "down" || (cpu.is_err() && rss.is_err()),
                    "node {id} down with figures: {c:?}"
                );
                cpu.is_ok_and(|v| v >= 0.0) && rss.is_ok_and(|v| v > 1 << 20)
            })
            .count();
        assert!(sampled >= 10, "node {id}: {sampled} samples\n{rows}");
    }
    for id in 1..=3 {
        let log = std::fs::read_to_string(out.join(format!("nodes/{id}.log"))).unwrap();
        assert!(log.contains("node listening"), "node {id}: {log}");
    }
    assert_no_rule_or_node_left(&net, 3);
}

/// `[load] from`: the nodes on 3 namespace hosts, the load from 2 others, each at half the
/// rate, the leader killed meanwhile. The summary's op count is the sum of both generators'
/// own counts, and of what each wrote in its own interval log on its host; the merged log
/// holds the same. Nothing acknowledged by either generator is lost, and no generator or
/// node is left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_load_from_two_hosts_is_merged_and_loses_nothing() {
    let _serial = serial().await;
    let net = Testnet::up(5);
    let (s, out, _dir) = drill_on_hosts(
        &net,
        r#"name = "load-from-hosts"
description = "leader kill under load from two hosts"
duration = "12s"

[cluster]
nodes = 3

[load]
workload = "a"
rate = 120
keys = 1000
warmup = "0s"
from = ["h4", "h5"]

[[fault]]
at = "4s"
action = "kill"
target = "leader"
for = "3s"

[thresholds]
success_rate = { warn = "99%", break = "50%" }
p99 = { warn = "800ms", break = "5s" }
"#,
        Duration::from_secs(180),
    )
    .await;
    crate::drills::assert_no_loss("load from hosts", &s);
    assert_eq!(s["cluster"]["hosts"].as_array().unwrap().len(), 3);
    let gens = s["load"]["generators"].as_array().unwrap();
    assert_eq!(gens.len(), 2, "{gens:?}");
    let ops = s["totals"]["ops"].as_u64().unwrap();
    let mut from_generators = 0;
    let mut from_their_logs = 0;
    for g in gens {
        assert_eq!(g["share"].as_f64(), Some(60.0), "{g}");
        let own = g["ops"].as_u64().unwrap();
        assert!(own > 300, "each generator ran its share: {g}");
        from_generators += own;
        let host = g["host"].as_str().unwrap();
        let log =
            loadgen::output::hlog::read(&out.join(format!("load/{host}/latency.hlog"))).unwrap();
        let logged: u64 = log
            .iter()
            .filter(|e| e.tag.is_none())
            .map(|e| e.histogram.len())
            .sum();
        assert_eq!(logged, own, "{host}: its own log and its report agree");
        from_their_logs += logged;
    }
    assert_eq!(
        ops, from_generators,
        "the summary's ops are the generators' sum"
    );
    assert_eq!(ops, from_their_logs);
    let merged: u64 = loadgen::output::hlog::read(&out.join("latency.hlog"))
        .unwrap()
        .iter()
        .filter(|e| e.tag.is_none())
        .map(|e| e.histogram.len())
        .sum();
    assert_eq!(merged, ops, "the merged interval log holds every operation");
    let r = &s["recovery"][0];
    assert!(r["leader_elected_after_s"].is_number(), "{r}");
    // The generators' histories, merged on the controller's clock, are checked.
    let l = &s["checks"]["linearizability"];
    assert_eq!(l["status"], "ok", "{l}");
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    let parts: usize = gens
        .iter()
        .map(|g| {
            lines(&out.join(format!(
                "load/{}/history.jsonl",
                g["host"].as_str().unwrap()
            )))
        })
        .sum();
    assert!(
        parts as u64 >= ops / 2,
        "the generators' histories: {parts} of {ops} ops"
    );
    assert_eq!(
        lines(&out.join("history.jsonl")),
        parts,
        "the merge holds every record"
    );

    // The planted stale-read bug under load from the same hosts: the leader cut off from its
    // peers (not from its clients) keeps answering reads from its own state while the others
    // elect a leader and take writes; the merged history shows reads older than acknowledged
    // writes (exit 3).
    let (s, _out, _dir) = drill_on_hosts_expecting(&net, STALE_FROM_HOSTS, Some(3)).await;
    let l = &s["checks"]["linearizability"];
    assert_eq!(l["status"], "anomaly", "{l}\n{}", s["reasons"]);
    let left: Vec<String> = processes_mentioning(&net.dir)
        .into_iter()
        .filter(|p| p.contains(" load "))
        .collect();
    assert!(left.is_empty(), "generators left running: {left:?}");
    assert_no_rule_or_node_left(&net, 3);
}

/// A scenario with a fault the hosts cannot make is refused before anything starts: exit 2,
/// one line naming the fault. The hosts are never contacted (none exist at these addresses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_hosts_cannot_make_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.toml");
    let mut text = String::new();
    for i in 1..=3 {
        text.push_str(&format!(
            "[[host]]\nname = \"h{i}\"\naddr = \"198.18.0.{}\"\nssh = \"root@198.18.0.{}\"\ndata_dir = \"/srv/rd\"\n\n",
            10 + i,
            10 + i
        ));
    }
    std::fs::write(&hosts, text).unwrap();
    let h = hosts.display().to_string();
    let res = raftdrill(
        &["run", "disk-stall-leader", "--hosts", &h, "--no-tui"],
        dir.path(),
        Duration::from_secs(30),
    )
    .await;
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("fault 1 (disk-stall)"), "{stderr}");
    assert!(
        !dir.path().join("results").exists(),
        "nothing may be written"
    );
}

/// `[load] from` needs hosts, and hosts enough for both the nodes and the load: each mistake
/// is one line and exit 2 before anything starts (no host exists at these addresses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_from_without_its_hosts_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"lf\"\nduration = \"5s\"\n[cluster]\nnodes = 3\n[load]\nworkload = \"a\"\nrate = 50\nfrom = [\"h3\"]\n",
    )
    .unwrap();
    let hosts = dir.path().join("hosts.toml");
    let mut text = String::new();
    for i in 1..=3 {
        text.push_str(&format!(
            "[[host]]\nname = \"h{i}\"\naddr = \"198.18.0.{}\"\nssh = \"root@198.18.0.{}\"\ndata_dir = \"/srv/rd\"\n\n",
            10 + i,
            10 + i
        ));
    }
    std::fs::write(&hosts, text).unwrap();
    let (s, h) = (scenario.display().to_string(), hosts.display().to_string());
    let no_hosts = raftdrill(
        &["run", &s, "--no-tui"],
        dir.path(),
        Duration::from_secs(30),
    )
    .await;
    let stderr = String::from_utf8_lossy(&no_hosts.stderr);
    assert_eq!(no_hosts.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[load] from names hosts (h3)"), "{stderr}");

    let too_few = raftdrill(
        &["run", &s, "--hosts", &h, "--no-tui"],
        dir.path(),
        Duration::from_secs(30),
    )
    .await;
    let stderr = String::from_utf8_lossy(&too_few.stderr);
    assert_eq!(too_few.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("3 nodes and the hosts file 2 hosts that do not run the load (h3)"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        !dir.path().join("results").exists(),
        "nothing may be written"
    );
}

/// `raftdrill capacity --hosts`: the nodes on 3 namespace hosts with a planted knee
/// (`apply_delay = "10ms"`: at most ≈ 98 entries a second), each step's load from a fourth
/// host. The search finds a rate below the knee and above the first step, each step keeps its
/// generator's interval log, and nothing is left running on the hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_capacity_finds_the_planted_knee_with_load_from_a_host() {
    let _serial = serial().await;
    let net = Testnet::up(4);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("knee.toml");
    std::fs::write(
        &file,
        r#"name = "knee-hosts"
description = "a planted capacity limit, the load from a host"
duration = "10s"

[cluster]
nodes = 3
apply_delay = "10ms"

[load]
workload = "w"
rate = 100
keys = 1000
from = ["h4"]
"#,
    )
    .unwrap();
    let out = dir.path().join("cap");
    let (f, o, h) = (
        file.display().to_string(),
        out.display().to_string(),
        net.hosts.display().to_string(),
    );
    let args = [
        "capacity",
        &f,
        "--hosts",
        &h,
        "--slo",
        "p99<300ms",
        "--start-rate",
        "40",
        "--resolution",
        "50%",
        "--step-duration",
        "2s",
        "--step-warmup",
        "1s",
        "--no-tui",
        "--out",
        &o,
    ];
    let res = raftdrill(&args, dir.path(), Duration::from_secs(300)).await;
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert_eq!(
        res.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let cap: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("capacity.json")).unwrap()).unwrap();
    let answer = cap["answer_rate"].as_f64().unwrap();
    assert!(
        (40.0..100.0).contains(&answer),
        "the answer lies between the first step and the knee: {answer}\n{stdout}"
    );
    let first = out.join("step-01-40/load/h4/latency.hlog");
    let logged: u64 = loadgen::output::hlog::read(&first)
        .unwrap()
        .iter()
        .filter(|e| e.tag.is_none())
        .map(|e| e.histogram.len())
        .sum();
    assert!(
        logged >= 120,
        "the first step's generator logged its ops: {logged}"
    );
    let left: Vec<String> = processes_mentioning(&net.dir)
        .into_iter()
        .filter(|p| p.contains(" load ") || p.contains(" node "))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_no_rule_or_node_left(&net, 3);
}

/// A delay on hosts, made by link proxies on the sending hosts (`raftdrill proxy`, started
/// over SSH because the scenario has a delay and this machine's kernel has no netem; where
/// the probe finds netem, tc makes it and no proxy runs): while the leader's links are delayed by 50 ms
/// each way, every write needs a replication round trip through them, so each second of the
/// fault with that leader has a median latency of at least 100 ms. (The heartbeat is 300 ms:
/// openraft 0.9 times out an AppendEntries after one heartbeat interval, so with the default
/// 50 ms a 100 ms round trip replicates nothing.) After the heal the links
/// pass again, nothing acknowledged is lost, and no proxy, node or rule is left on the hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_delay_is_made_by_proxies_on_the_sending_hosts() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let (s, out, _dir) = drill_on_hosts(
        &net,
        r#"name = "hosts-delay"
description = "the leader's links delayed by proxies on the hosts"
duration = "12s"

[cluster]
nodes = 3
# openraft 0.9 gives each AppendEntries the heartbeat interval as its timeout: a round trip
# must fit in it, and elections are slowed to match.
heartbeat = "300ms"
election_timeout = "1500ms..3000ms"

[load]
workload = "w"
rate = 60
keys = 1000
warmup = "1s"

[[fault]]
at = "4s"
action = "delay"
target = "leader"
latency = "50ms"
for = "5s"

[thresholds]
success_rate = { warn = "99%", break = "50%" }
p99 = { warn = "800ms", break = "5s" }
"#,
        Duration::from_secs(150),
    )
    .await;
    for h in s["cluster"]["hosts"].as_array().unwrap() {
        // Proxies make the delay where the probe found no netem (this machine's kernel has
        // none), tc where it found it.
        let netem = h["tc"]["netem"].as_bool().unwrap();
        assert_eq!(h["link_proxy"], !netem, "{h}");
    }
    crate::drills::assert_no_loss("hosts delay", &s);
    let (from, to, leader, csv) = first_fault_and_timeline(&s, &out);
    let mut inside = 0;
    for row in csv.lines().skip(1) {
        let cols: Vec<&str> = row.split(',').collect();
        let t: f64 = cols[0].parse().unwrap();
        // Seconds wholly inside the fault, while the delayed node led.
        if t - 1.0 >= from && t <= to && cols[7] == leader {
            inside += 1;
            let p50: f64 = cols[4].parse().unwrap();
            assert!(
                p50 >= 100.0,
                "second {t}: p50 {p50} ms under a 50 ms delay each way\n{csv}"
            );
        }
    }
    assert!(
        inside >= 2,
        "seconds of the fault under that leader: {inside}\n{csv}"
    );
    let left = processes_mentioning(&net.dir);
    assert!(
        !left.iter().any(|p| p.contains(" proxy ")),
        "proxies left running: {left:?}"
    );
    assert_no_rule_or_node_left(&net, 3);
}

/// A bandwidth cap on hosts, made by tc on the sending hosts: the namespace hosts' kernel has
/// tbf (and no netem), so the probe finds it, no link proxy runs, and the leader's outgoing
/// links get a tbf qdisc under raftdrill's htb root. Each write carries 8 KiB to a follower,
/// so a 64 KiB/s cap lets at most ~8 writes a second commit where 40 are offered: every second
/// of the fault while that node leads commits at most 16, against at least 30 before it.
/// After the heal the links pass again, nothing acknowledged is lost, and no qdisc, rule,
/// proxy or node is left on the hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_bandwidth_is_made_by_tbf_on_the_sending_hosts() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let (s, out, _dir) = drill_on_hosts(
        &net,
        r#"name = "hosts-bandwidth"
description = "the leader's outgoing links capped by tc on its host"
duration = "13s"

[cluster]
nodes = 3
# Queued heartbeats must not depose the capped leader (see the delay test).
heartbeat = "300ms"
election_timeout = "1500ms..3000ms"

[load]
workload = "w"
rate = 40
keys = 1000
value_size = 8192
warmup = "1s"

[[fault]]
at = "5s"
action = "bandwidth"
target = "leader"
direction = "out"
rate = "64KiB/s"
for = "5s"

[thresholds]
success_rate = { warn = "99%", break = "10%" }
p99 = { warn = "800ms", break = "30s" }
"#,
        Duration::from_secs(150),
    )
    .await;
    for h in s["cluster"]["hosts"].as_array().unwrap() {
        assert_eq!(h["tc"]["tbf"], true, "{h}");
        assert_eq!(h["tc"]["classes"], true, "{h}");
        assert_eq!(h["link_proxy"], false, "tc made the cap, no proxy: {h}");
    }
    crate::drills::assert_no_loss("hosts bandwidth", &s);
    let (from, to, leader, csv) = first_fault_and_timeline(&s, &out);
    let (mut inside, mut before) = (0, 0);
    for row in csv.lines().skip(1) {
        let cols: Vec<&str> = row.split(',').collect();
        let t: f64 = cols[0].parse().unwrap();
        let ok: f64 = cols[2].parse().unwrap();
        // Seconds wholly inside the fault, while the capped node led.
        if t - 1.0 >= from && t <= to && cols[7] == leader {
            inside += 1;
            assert!(
                ok <= 16.0,
                "second {t}: {ok} writes under a 64 KiB/s cap\n{csv}"
            );
        }
        if t >= 2.0 && t < from {
            before += 1;
            assert!(ok >= 30.0, "second {t}: {ok} writes before the cap\n{csv}");
        }
    }
    assert!(
        inside >= 2,
        "seconds of the fault under that leader: {inside}\n{csv}"
    );
    assert!(before >= 2, "seconds before the fault: {before}\n{csv}");
    assert_no_rule_or_node_left(&net, 3);
}

/// The tc lines raftdrill sends, run by the real `tc` in a namespace of the test's own on a
/// veth pair: the tbf cap goes in and comes out again; the netem delay is accepted by `tc`
/// (where the kernel lacks netem, as here, only the kernel refuses it: "qdisc kind is
/// unknown", never a usage error), so the netem path is checked as far as this kernel allows.
#[test]
#[ignore = "needs root and iproute2's tc: .ci/run runs it as root"]
fn hosts_tc_takes_the_lines_raftdrill_sends() {
    use drills::hosts::shaping::{Route, clean_line, clear_line, set_line};
    let ns = "rdtc-e2e";
    let sh = |line: &str| {
        Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", line])
            .output()
            .unwrap()
    };
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
    assert!(ip(&["netns", "add", ns]).is_empty());
    let made = sh("ip link add rdv0 type veth peer name rdv1 && ip link set rdv0 up && echo ok");
    let route = Route {
        dev: "rdv0".into(),
        mtu: 1500,
        root_free: true,
    };
    let peer = "198.18.0.3".parse().unwrap();
    let cap = set_line(
        3,
        peer,
        &route,
        &LinkMode::Bandwidth {
            bytes_per_sec: 65536,
        },
    )
    .unwrap();
    let capped = sh(&cap);
    let shown = sh("tc qdisc show dev rdv0; tc filter show dev rdv0");
    let cleared = sh(&format!(
        "{} && tc class show dev rdv0",
        clear_line(3, &route)
    ));
    let delay = LinkMode::Delay {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(5),
    };
    let delayed = sh(&set_line(2, peer, &route, &delay).unwrap());
    let cleaned = sh(&format!("{} && tc qdisc show dev rdv0", clean_line()));
    let _ = Command::new("ip").args(["netns", "del", ns]).output();

    assert_eq!(String::from_utf8_lossy(&made.stdout).trim(), "ok");
    assert!(
        capped.status.success(),
        "{}",
        String::from_utf8_lossy(&capped.stderr)
    );
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("qdisc tbf 5303: parent 5244:3 rate 524288bit"),
        "{shown}"
    );
    assert!(shown.contains("flowid 5244:3"), "{shown}");
    assert!(shown.contains("match c6120003/ffffffff at 16"), "{shown}");
    let classes = String::from_utf8_lossy(&cleared.stdout);
    assert!(!classes.contains("5244:3"), "the class is gone: {classes}");
    let why = String::from_utf8_lossy(&delayed.stderr);
    assert!(
        delayed.status.success() || why.contains("qdisc kind is unknown"),
        "tc refused the netem line itself: {why}"
    );
    let left = String::from_utf8_lossy(&cleaned.stdout);
    assert!(
        cleaned.status.success() && !left.contains("5244:"),
        "{left}"
    );
}

/// etcd on hosts: the hosts run etcd from their PATH (no raftdrill binary needed there), the
/// leader is killed over SSH and comes back, and nothing acknowledged is lost; the members'
/// logs come back and no etcd is left running. Needs Debian's etcd-server too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server, iptables and etcd-server: .ci/run installs them"]
async fn hosts_etcd_leader_kill_across_namespace_hosts_loses_nothing() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let (s, out, _dir) = drill_on_hosts(
        &net,
        r#"name = "hosts-etcd"
description = "etcd on hosts: kill the leader"
duration = "14s"

[cluster]
nodes = 3
target = "etcd"

[load]
workload = "a"
rate = 60
keys = 1000
warmup = "1s"

[[fault]]
at = "4s"
action = "kill"
target = "leader"
for = "3s"

[thresholds]
success_rate = { warn = "99%", break = "50%" }
p99 = { warn = "800ms", break = "5s" }
"#,
        Duration::from_secs(150),
    )
    .await;
    assert_eq!(s["cluster"]["target"], "etcd");
    crate::drills::assert_no_loss("etcd on hosts", &s);
    let fault = &s["faults"][0];
    assert!(fault["error"].is_null(), "{fault}");
    let r = &s["recovery"][0];
    assert!(r["leader_elected_after_s"].is_number(), "{r}");
    assert!(r["unrecovered"].as_array().unwrap().is_empty(), "{r}");
    for id in 1..=3 {
        let log = std::fs::read_to_string(out.join(format!("nodes/{id}.log"))).unwrap();
        assert!(
            log.contains(&format!("m{id}")),
            "member {id}'s own log: {log}"
        );
    }
    let left: Vec<String> = processes_mentioning(&net.dir)
        .into_iter()
        .filter(|p| p.starts_with("etcd "))
        .collect();
    assert!(left.is_empty(), "etcd left running: {left:?}");
    assert_no_rule_or_node_left(&net, 3);
}

/// A node on a host that dies on its own (killed there from outside raftdrill) is seen from its
/// host by its sampler: the run is inconclusive and names the node, with the end of its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_a_node_that_dies_on_its_own_is_inconclusive() {
    use tokio::io::AsyncBufReadExt;
    let _serial = serial().await;
    let net = Testnet::up(3);
    let file = HostsFile::load(&net.hosts).unwrap();
    let pid_file = file.host[2].data_dir.join("node.pid");
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"hosts-dies\"\nduration = \"14s\"\n[load]\nworkload = \"a\"\nrate = 100\n\
         keys = 500\nwarmup = \"1s\"\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let (f, o, h) = (
        scenario.display().to_string(),
        out.display().to_string(),
        net.hosts.display().to_string(),
    );
    let mut child = crate::harness::spawn_raftdrill(
        &["run", &f, "--hosts", &h, "--no-tui", "--out", &o],
        dir.path(),
        std::process::Stdio::piped(),
        false,
    );
    // Its progress lines say when the judged load runs; they are read to the end, so the
    // pipe never fills.
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, mut loaded) = tokio::sync::mpsc::channel::<()>(1);
    let reader = tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("[load]") {
                let _ = tx.try_send(());
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(90), loaded.recv())
        .await
        .expect("the judged load starts");
    // The hosts share this machine's files: the third node's pid is in its pid file.
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: the node process of this test's own namespace host.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = tokio::time::timeout(Duration::from_secs(150), child.wait())
        .await
        .expect("the run ends")
        .unwrap();
    let _ = reader.await;
    let s = checked_summary(&out.join("summary.json"));
    assert_eq!(status.code(), Some(5), "{}", s["reasons"]);
    assert_eq!(s["node_exits"][0]["node"], 3, "{}", s["node_exits"]);
    assert!(
        s["reasons"]
            .to_string()
            .contains("node 3 exited on its own"),
        "{}",
        s["reasons"]
    );
}

/// The library's loss scenario keeps its claims on namespace hosts (the library test leaves it
/// out: it runs on this machine, where loss is refused): its fault fires and heals, nothing
/// is lost, the verdict is no worse than documented, and no rule is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_the_loss_builtin_keeps_its_claims() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let dir = tempfile::tempdir().unwrap();
    let scenario = drills::scenario::builtin("lossy-follower")
        .unwrap()
        .unwrap();
    let hosts = net.hosts.display().to_string();
    let s = crate::library::run_builtin_with(
        "lossy-follower",
        &scenario,
        &dir.path().join("run"),
        dir.path(),
        &["--hosts", &hosts],
    )
    .await;
    assert_eq!(s["faults"][0]["action"], "loss", "{}", s["faults"]);
    assert!(s["faults"][0]["healed_at_s"].is_number(), "{}", s["faults"]);
    let verdict = s["verdict"].as_str().unwrap();
    assert!(
        ["pass", "warn"].contains(&verdict),
        "{verdict}: {}",
        s["reasons"]
    );
    assert_no_rule_or_node_left(&net, 3);
}

/// Packet loss, a reset and a limping node on namespace hosts, each without a proxy hop:
/// `loss` drops a share of a follower's packets with iptables' `statistic` match, `reset`
/// rejects the leader's peer traffic with TCP resets, and `cpu-limit` holds a follower to a CPU
/// quota on its host. Each fires and heals, nothing is lost, and no proxy ran. Last, `corrupt`
/// zeroes a range of a follower's log over SSH (`dd` on its host), and the node refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, openssh-server and iptables: .ci/run installs them"]
async fn hosts_loss_reset_and_a_limping_node_need_no_proxy() {
    let _serial = serial().await;
    let net = Testnet::up(3);
    let (s, _out, _dir) = drill_on_hosts(
        &net,
        r#"name = "hosts-filters"
duration = "24s"

[load]
workload = "a"
rate = 100
keys = 1000
warmup = "1s"

[[fault]]
at = "3s"
action = "loss"
target = "follower"
probability = 0.3
for = "3s"

[[fault]]
at = "8s"
action = "reset"
target = "leader"
for = "2s"

[[fault]]
at = "13s"
action = "cpu-limit"
target = "follower"
share = 0.1
for = "3s"

[[fault]]
at = "17s"
action = "corrupt"
target = "follower"
how = "zero"
bytes = 64

[thresholds]
success_rate = { warn = "99%", break = "50%" }
p99 = { warn = "800ms", break = "5s" }
"#,
        Duration::from_secs(120),
    )
    .await;
    crate::drills::assert_no_loss("hosts filters", &s);
    let faults = s["faults"].as_array().unwrap();
    for (i, fault) in faults.iter().enumerate() {
        assert!(fault["error"].is_null(), "fault {i}: {fault}");
        assert!(
            i == 3 || fault["healed_at_s"].is_number(),
            "fault {i} was undone: {fault}"
        );
    }
    assert!(s["recovery"][2]["limp"].is_object(), "{}", s["recovery"][2]);
    let c = &faults[3]["corruption"][0];
    assert_eq!(c["len"], 64, "{c}");
    assert_eq!(
        c["outcome"], "refused-start",
        "the sealed log is refused: {c}"
    );
    assert!(c["detail"].as_str().unwrap().contains("is damaged"), "{c}");
    for h in s["cluster"]["hosts"].as_array().unwrap() {
        assert_eq!(h["link_proxy"], false, "iptables made them, no proxy: {h}");
    }
    assert_no_rule_or_node_left(&net, 3);
    // The hosts share this machine's control groups: the quota's group is gone.
    for root in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup"] {
        let left: Vec<String> = std::fs::read_dir(root)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("raftdrill-h"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "CPU groups left in {root}: {left:?}");
    }
}
