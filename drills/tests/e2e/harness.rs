//! Shared helpers: a cluster of real node processes, a writer that records what was
//! acknowledged, and polling with deadlines (never fixed sleeps).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use drills::local_cluster::{ClusterOptions, LocalCluster};
use raftdrill_wire::{GetResponse, Status, WriteResponse};
use tokio::sync::Mutex;

/// Cluster tests run one at a time: each starts several node processes, and the machine has
/// two cores. Parallel clusters would only make elections flaky.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Takes the serial lock for the duration of a test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

pub fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_raftdrill").into()
}

/// Starts `n` nodes with extra flags and waits for a leader.
pub async fn start(n: u64, flags: &[&str]) -> (LocalCluster, u64) {
    let opts = ClusterOptions {
        nodes: n,
        base_port: None,
        data_dir: None,
        log_dir: None,
        exe: exe(),
        node_flags: flags.iter().map(|s| s.to_string()).collect(),
        token: None,
    };
    let mut c = LocalCluster::start(&opts).expect("cluster starts");
    let leader = c
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader is elected");
    (c, leader)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn put(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    value: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .put(format!("{url}/kv/{key}"))
        .json(&serde_json::json!({ "value": value }))
        .send()
        .await
}

/// A linearizable read; `None` for 404.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    consistency: &str,
) -> Option<String> {
    let resp = client
        .get(format!("{url}/kv/{key}?consistency={consistency}"))
        .send()
        .await
        .expect("read answers");
    match resp.status().as_u16() {
        200 => Some(resp.json::<GetResponse>().await.unwrap().value),
        404 => None,
        other => panic!(
            "read of {key} at {url} answered {other}: {}",
            resp.text().await.unwrap_or_default()
        ),
    }
}

pub async fn status(client: &reqwest::Client, url: &str) -> Option<Status> {
    client
        .get(format!("{url}/status"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// What a writer saw: keys whose write was answered 200, and how the others ended.
#[derive(Debug, Default)]
pub struct WriterLog {
    pub acked: BTreeMap<String, String>,
    pub failed: u64,
    pub unknown: u64,
}

/// Writers that put `key-N = value-N` (each key once) over all endpoints until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    pub acked_count: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<WriterLog>>,
}

impl Writer {
    /// Starts `concurrency` writer tasks; at most `limit` writes are attempted in all.
    pub fn start(urls: Vec<String>, concurrency: usize, limit: u64, prefix: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let acked_count = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let tasks = (0..concurrency)
            .map(|w| {
                let (stop, next, acked_count) = (stop.clone(), next.clone(), acked_count.clone());
                let (client, urls, prefix) = (client.clone(), urls.clone(), prefix.to_string());
                tokio::spawn(async move {
                    let mut log = WriterLog::default();
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= limit {
                            break;
                        }
                        let (key, value) = (format!("{prefix}-{n}"), format!("value-{n}"));
                        let url = &urls[(n as usize + w) % urls.len()];
                        match put(&client, url, &key, &value).await {
                            Ok(r) if r.status() == 200 => {
                                r.json::<WriteResponse>()
                                    .await
                                    .expect("write response parses");
                                log.acked.insert(key, value);
                                acked_count.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) if matches!(r.status().as_u16(), 503 | 400..=499) => {
                                log.failed += 1
                            }
                            Ok(r) if r.status() == 502 => {
                                let body = r.text().await.unwrap_or_default();
                                if body.contains("forward_failed") {
                                    log.failed += 1
                                } else {
                                    log.unknown += 1
                                }
                            }
                            Ok(_) => log.unknown += 1,
                            Err(e) if e.is_connect() => {
                                log.failed += 1;
                                // A dead endpoint answers at once; do not spin on it.
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Err(_) => log.unknown += 1,
                        }
                    }
                    log
                })
            })
            .collect();
        Self {
            stop,
            acked_count,
            tasks,
        }
    }

    pub fn acked(&self) -> u64 {
        self.acked_count.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` writes were acknowledged in all.
    pub async fn wait_acked(&self, n: u64, timeout: Duration) {
        let c = self.acked_count.clone();
        eventually(timeout, &format!("{n} acknowledged writes"), || {
            let c = c.clone();
            async move { (c.load(Ordering::Relaxed) >= n).then_some(()) }
        })
        .await
    }

    /// Stops the writers and merges what they saw.
    pub async fn finish(self) -> WriterLog {
        self.stop.store(true, Ordering::Relaxed);
        self.join().await
    }

    /// Waits for the writers to use up their limit, and merges what they saw.
    pub async fn join(self) -> WriterLog {
        let mut all = WriterLog::default();
        for t in self.tasks {
            let log = t.await.expect("writer task");
            all.acked.extend(log.acked);
            all.failed += log.failed;
            all.unknown += log.unknown;
        }
        all
    }
}

/// Reads every acknowledged key from `url` and returns those whose value is missing or wrong.
/// A read that waits out a cluster still settling after a restart: 503 (no leader yet: a
/// restored leader has not heard from a quorum) and 504 are retried for up to 20 s; the value,
/// or `None` for 404.
pub async fn read_settled(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    consistency: &str,
) -> Option<String> {
    let read = format!("{url}/kv/{key}?consistency={consistency}");
    eventually(Duration::from_secs(20), "a settled read", || {
        let (client, read) = (client.clone(), read.clone());
        async move {
            let resp = client.get(&read).send().await.ok()?;
            match resp.status().as_u16() {
                200 => Some(Some(resp.json::<GetResponse>().await.ok()?.value)),
                404 => Some(None),
                503 | 504 => None,
                other => panic!(
                    "read of {read} answered {other}: {}",
                    resp.text().await.unwrap_or_default()
                ),
            }
        }
    })
    .await
}

pub async fn missing(
    client: &reqwest::Client,
    url: &str,
    acked: &BTreeMap<String, String>,
    consistency: &str,
) -> Vec<String> {
    let mut lost = Vec::new();
    for (k, v) in acked {
        if read_settled(client, url, k, consistency).await.as_deref() != Some(v.as_str()) {
            lost.push(k.clone());
        }
    }
    lost
}

/// Waits for a leader other than `not` and returns it.
pub async fn new_leader(c: &LocalCluster, not: Option<u64>, timeout: Duration) -> u64 {
    let client = http();
    let urls: Vec<(u64, String)> = c.nodes().keys().map(|id| (*id, c.url(*id))).collect();
    eventually(timeout, "a new leader", || {
        let (client, urls) = (client.clone(), urls.clone());
        async move {
            for (id, url) in &urls {
                if Some(*id) == not {
                    continue;
                }
                if let Some(s) = status(&client, url).await
                    && s.role == raftdrill_wire::Role::Leader
                {
                    return Some(s.id);
                }
            }
            None
        }
    })
    .await
}

/// Starts `raftdrill ARGS` in `cwd` (killed when dropped), with stdout piped or discarded.
pub fn spawn_raftdrill(
    args: &[&str],
    cwd: &std::path::Path,
    stderr: std::process::Stdio,
    pipe_stdout: bool,
) -> tokio::process::Child {
    let stdout = if pipe_stdout {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    };
    tokio::process::Command::new(exe())
        .args(args)
        .current_dir(cwd)
        // Its temp folders (the cluster's data, the disks' mounts) land in the test's own
        // folder, so even a SIGKILLed run leaves nothing behind in /tmp.
        .env("TMPDIR", cwd)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("raftdrill starts")
}

/// Runs `raftdrill ARGS` in `cwd`, killing it if it outlives `deadline`.
pub async fn raftdrill(
    args: &[&str],
    cwd: &std::path::Path,
    deadline: Duration,
) -> std::process::Output {
    let child = spawn_raftdrill(args, cwd, std::process::Stdio::piped(), true);
    tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("raftdrill {args:?} ran past {deadline:?}"))
        .expect("raftdrill output")
}

/// What a `raftdrill run` of a scenario file left when it ended.
pub struct Ran {
    /// Its exit code (the summary's, checked).
    pub code: Option<i32>,
    /// Its summary.json, checked against the schema.
    pub summary: serde_json::Value,
    /// Its results folder.
    pub out: std::path::PathBuf,
}

/// Writes scenario `text` to `dir/<name>.toml` and runs it to its end (`--no-tui`, killed
/// past `deadline`), its results in `dir/run-<name>`; the exit code must be the summary's.
pub async fn run_scenario(
    dir: &std::path::Path,
    name: &str,
    text: &str,
    deadline: Duration,
) -> Ran {
    run_scenario_with(dir, name, text, deadline, &[]).await
}

/// As [`run_scenario`], with `extra` arguments to `raftdrill run` (`--hosts FILE`, say).
pub async fn run_scenario_with(
    dir: &std::path::Path,
    name: &str,
    text: &str,
    deadline: Duration,
    extra: &[&str],
) -> Ran {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = dir.join(format!("run-{name}"));
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let mut args = vec!["run", f.as_str(), "--no-tui", "--out", o.as_str()];
    args.extend_from_slice(extra);
    let res = raftdrill(&args, dir, deadline).await;
    let summary = checked_summary(&out.join("summary.json"));
    assert_eq!(
        res.status.code().map(i64::from),
        summary["exit_code"].as_i64(),
        "{name}: the exit code is the summary's\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    Ran {
        code: res.status.code(),
        summary,
        out,
    }
}

/// Every fault of summary `s` fired.
pub fn assert_faults_fired(s: &serde_json::Value) {
    for f in s["faults"].as_array().unwrap() {
        assert!(f["error"].is_null(), "every fault fired: {f}");
    }
}

/// Checks a summary.json against the checked-in schema and returns it.
pub fn checked_summary(path: &std::path::Path) -> serde_json::Value {
    let schema_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/summary.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&summary)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not match the schema: {errors:#?}",
        path.display()
    );
    summary
}

/// Live processes started by the raftdrill whose pid is `pid`, whatever their parent is now
/// (an orphan is re-parented): every node and every faultfs server carries that pid in its
/// environment.
pub fn started_by(pid: u32) -> Vec<u32> {
    let node = format!("{}={pid}", drills::supervisor::PARENT_ENV);
    let faultfs = format!("{}={pid}", raftdrill_faultfs::serve::PARENT_ENV);
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{p}/environ")) else {
            continue;
        };
        let ours = env
            .split(|b| *b == 0)
            .any(|kv| kv == node.as_bytes() || kv == faultfs.as_bytes());
        let zombie = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .ok()
            .flatten()
            .unwrap_or(true);
        if ours && !zombie {
            out.push(p);
        }
    }
    out
}

/// Waits until no process started by raftdrill `pid` is left.
pub async fn none_left_by(pid: u32) {
    eventually(
        Duration::from_secs(30),
        "every process raftdrill started to exit",
        || async move { started_by(pid).is_empty().then_some(()) },
    )
    .await;
}
