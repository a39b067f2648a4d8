//! The results folder: `summary.json` (checked against `results/summary.schema.json`),
//! `report.md`, `timeline.csv` and `latency*.hgrm`. Node logs are already in `nodes/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use loadgen::metrics::Counts;
use loadgen::output::{LoadSummary, TimelineRow, TimelineWriter, write_hgrm_files};
use serde::Serialize;

use std::collections::BTreeMap;

use raftdrill_wire::CommitTimes;

use super::disk_probe::DiskProbe;
use super::faults::FaultRecord;
use super::judge::{Inputs, RecoveryEntry, Verdict};
use crate::check::{LinearSummary, LostWriteReport};

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// UTC start, RFC 3339.
    pub started_at: String,
    /// Load phase length, warmup included.
    pub duration_s: f64,
    /// Warmup, left out of the judged figures.
    pub warmup_s: f64,
    /// The seed of the workload.
    pub seed: u64,
    /// The cluster.
    pub cluster: ClusterInfo,
    /// A load-only run: the endpoints it drove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
    /// The load.
    pub load: LoadInfo,
    /// Totals, latency and thresholds of the judged part of the run.
    #[serde(flatten)]
    pub measured: LoadSummary,
    /// Every count, errors by class included.
    pub counts: Counts,
    /// The faults as they fired.
    pub faults: Vec<FaultRecord>,
    /// Recovery per fault.
    pub recovery: Vec<RecoveryEntry>,
    /// The data checks.
    pub checks: ChecksInfo,
    /// Mean CPU of the busiest node over the judged part, percent of one core.
    pub busiest_node_cpu_pct: Option<f64>,
    /// Elections (term changes) during the load; absent when raftdrill watched no nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elections: Option<u64>,
    /// The disk under the nodes' data: fdatasync latency over the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskProbe>,
    /// Each node's durable log commit times at the end of the run.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub log_commits: BTreeMap<String, CommitTimes>,
    /// `pass`, `warn`, `fail` or `aborted`.
    pub verdict: String,
    /// Why it is not `pass`.
    pub reasons: Vec<String>,
    /// raftdrill's exit code.
    pub exit_code: u8,
}

/// `cluster` of summary.json.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    /// Initial voters.
    pub nodes: u64,
    /// The system under test.
    pub target: String,
    /// `disk` or `memory` (absent when raftdrill did not start the nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// `always` or `never` (absent when raftdrill did not start the nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsync: Option<String>,
    /// The Raft timing the nodes ran with (absent when raftdrill did not start them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

/// Heartbeat and election timeout as the nodes got them: the scenario's, or the store's own
/// defaults (reference 50 ms and 150–300 ms; etcd 100 ms and 1000 ms, which etcd spreads over
/// 1×–2× itself).
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Heartbeat interval, ms.
    pub heartbeat_ms: f64,
    /// Election timeout, ms: the range the reference node draws from, or etcd's one value.
    pub election_timeout_ms: Vec<f64>,
    /// Whether these are the store's defaults (nothing set in the scenario).
    pub defaults: bool,
}

impl Timing {
    fn of(c: &crate::scenario::ClusterSpec) -> Timing {
        use loadgen::target::TargetKind;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let defaults = c.heartbeat.is_none() && c.election_timeout.is_none();
        match c.target {
            TargetKind::Reference => Timing {
                heartbeat_ms: c.heartbeat.map_or(50.0, ms),
                election_timeout_ms: c
                    .election_timeout
                    .map_or(vec![150.0, 300.0], |(a, b)| vec![ms(a), ms(b)]),
                defaults,
            },
            TargetKind::Etcd => Timing {
                heartbeat_ms: c.heartbeat.map_or(100.0, ms),
                election_timeout_ms: vec![c.election_timeout.map_or(1000.0, |(a, _)| ms(a))],
                defaults,
            },
        }
    }
}

/// What raftdrill knows of the target beyond the scenario.
#[derive(Debug, Clone, Default)]
pub struct TargetInfo {
    /// For a load-only run: the endpoints it drove (raftdrill started no nodes).
    pub endpoints: Option<Vec<String>>,
}

/// `load` of summary.json.
#[derive(Debug, Clone, Serialize)]
pub struct LoadInfo {
    /// YCSB workload letter.
    pub workload: String,
    /// `open` or `closed`.
    pub model: String,
    /// Open loop: target ops/s.
    pub rate: Option<f64>,
    /// Closed loop: users.
    pub users: Option<u32>,
    /// Key space.
    pub keys: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Read consistency.
    pub consistency: String,
    /// Open loop: operations that started late.
    pub late: u64,
    /// Open loop: planned operations never started.
    pub dropped: u64,
    /// Open loop: operations the plan held.
    pub planned: Option<u64>,
}

/// `checks` of summary.json.
#[derive(Debug, Clone, Serialize)]
pub struct ChecksInfo {
    /// The lost-write check, when it ran.
    pub lost_writes: Option<LostWriteReport>,
    /// The linearizability check of the whole history.
    pub linearizability: LinearSummary,
    /// The recovery limit, when set.
    pub recovery_within_s: Option<f64>,
}

impl Summary {
    /// Assembles the summary.
    pub fn build(
        i: &Inputs<'_>,
        v: &Verdict,
        started_at: std::time::SystemTime,
        seed: u64,
        target: TargetInfo,
    ) -> Self {
        let s = i.scenario;
        let started_nodes = target.endpoints.is_none();
        Summary {
            scenario: s.name.clone(),
            description: s.description.clone(),
            started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
            duration_s: s.duration.as_secs_f64(),
            warmup_s: s.load.warmup.as_secs_f64(),
            seed,
            cluster: ClusterInfo {
                nodes: target
                    .endpoints
                    .as_ref()
                    .map_or(s.cluster.nodes, |e| e.len() as u64),
                target: s.cluster.target.as_str().into(),
                store: started_nodes.then(|| s.cluster.store.as_str().into()),
                fsync: started_nodes.then(|| s.cluster.fsync.as_str().into()),
                timing: started_nodes.then(|| Timing::of(&s.cluster)),
            },
            endpoints: target.endpoints,
            load: LoadInfo {
                workload: s.load.workload.as_str().into(),
                model: s.load.model.name().into(),
                rate: s.load.model.rate(),
                users: s.load.model.users().map(|u| u as u32),
                keys: s.load.keys,
                value_size: s.load.value_size,
                consistency: s.load.consistency.as_str().into(),
                late: i.report.counts().late,
                dropped: i.report.dropped,
                planned: i.report.planned,
            },
            measured: LoadSummary::new(i.report, v.thresholds.clone()),
            counts: *i.report.counts(),
            faults: i.faults.to_vec(),
            recovery: v.recovery.clone(),
            checks: ChecksInfo {
                lost_writes: i.lost.cloned(),
                linearizability: i.linear.clone(),
                recovery_within_s: s.checks.recovery_within.map(|d| d.as_secs_f64()),
            },
            busiest_node_cpu_pct: i.poll.busiest_cpu(),
            elections: i.watched_nodes.then(|| i.poll.elections()),
            disk: i.disk.cloned(),
            log_commits: i
                .poll
                .last_status
                .iter()
                .filter_map(|(id, s)| s.log_commits.clone().map(|c| (id.to_string(), c)))
                .collect(),
            verdict: v.verdict.into(),
            reasons: v.reasons.clone(),
            exit_code: v.exit as u8,
        }
    }
}

type WriteError = (PathBuf, std::io::Error);

fn write(path: PathBuf, data: &[u8]) -> Result<(), WriteError> {
    std::fs::write(&path, data).map_err(|e| (path, e))
}

/// Writes every file of the results folder.
pub fn write_all(dir: &Path, summary: &Summary, i: &Inputs<'_>) -> Result<(), WriteError> {
    let json = serde_json::to_vec_pretty(summary).expect("the summary serializes");
    write(dir.join("summary.json"), &json)?;
    write(dir.join("report.md"), report_md(summary).as_bytes())?;
    write(
        dir.join("timeline.csv"),
        &timeline(i).map_err(|e| (dir.join("timeline.csv"), e))?,
    )?;
    write_hgrm_files(dir, &i.report.totals).map_err(|e| (dir.join("latency.hgrm"), e))
}

/// `timeline.csv`: one row per second, with the leader at the end of the second and the
/// fault and leader events that happened in it.
fn timeline(i: &Inputs<'_>) -> std::io::Result<Vec<u8>> {
    let mut w = TimelineWriter::new(Vec::new())?;
    let mut prev_t = 0.0;
    for s in i.snapshots {
        let mut row = TimelineRow::from(s);
        row.leader = i
            .poll
            .leaders
            .iter()
            .take_while(|(t, _)| *t <= s.t)
            .last()
            .and_then(|(_, l)| *l);
        let mut events = Vec::new();
        for f in i.faults {
            if f.at_s > prev_t && f.at_s <= s.t {
                let nodes: Vec<String> = f.resolved.iter().map(u64::to_string).collect();
                events.push(format!("{} {} [{}]", f.action, f.target, nodes.join(" ")));
            }
            if f.healed_at_s.is_some_and(|h| h > prev_t && h <= s.t) {
                events.push(format!("healed {}", f.action));
            }
        }
        for (t, l) in &i.poll.leaders {
            if *t > prev_t && *t <= s.t {
                events.push(l.map_or("no leader".into(), |l| format!("leader {l}")));
            }
        }
        row.event = (!events.is_empty()).then(|| events.join("; "));
        w.write(&row)?;
        prev_t = s.t;
    }
    w.finish()
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.2}{unit}"))
}

/// A recovery figure for a table: its time, "never" when it applied and never came, "–" when
/// it does not apply.
fn figure(
    r: Option<&RecoveryEntry>,
    name: &str,
    get: impl Fn(&crate::check::Recovery) -> Option<f64>,
) -> String {
    match r {
        Some(r) if r.figures.unrecovered.contains(&name) => "never".into(),
        Some(r) => opt(get(&r.figures), "s"),
        None => "–".into(),
    }
}

/// `report.md`: the same as summary.json, for a person.
pub fn report_md(s: &Summary) -> String {
    let mut o = String::new();
    let mark = match s.verdict.as_str() {
        "pass" => "✓",
        "warn" => "⚠",
        _ => "✗",
    };
    let _ = writeln!(o, "# raftdrill: {}\n\n{}\n", s.scenario, s.description);
    let _ = writeln!(
        o,
        "**Verdict: {mark} {}** (exit code {})\n",
        s.verdict, s.exit_code
    );
    for r in &s.reasons {
        let _ = writeln!(o, "- {r}");
    }
    let load = match (s.load.rate, s.load.users) {
        (Some(r), _) => format!("open loop, {r} ops/s"),
        (_, Some(u)) => format!("closed loop, {u} users"),
        _ => "-".into(),
    };
    let nodes = match (&s.cluster.store, &s.cluster.fsync, &s.endpoints) {
        (Some(store), Some(fsync), _) => {
            format!("{} nodes ({store} store, fsync {fsync})", s.cluster.nodes)
        }
        (_, _, Some(e)) => format!("endpoints {}", e.join(", ")),
        _ => format!("{} nodes", s.cluster.nodes),
    };
    let _ = writeln!(
        o,
        "\nStarted {}; {:.0} s ({:.0} s warmup); {nodes}; workload {}, {load}; seed {}.\n",
        s.started_at, s.duration_s, s.warmup_s, s.load.workload, s.seed
    );
    let _ = writeln!(
        o,
        "## Thresholds\n\n| metric | warn | break | observed | status |\n|---|---|---|---|---|"
    );
    for t in &s.measured.thresholds {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            t.metric.as_str(),
            opt(t.warn, ""),
            opt(t.brk, ""),
            opt(t.observed, ""),
            t.status.mark()
        );
    }
    let tot = &s.measured.totals;
    let l = &s.measured.latency_ms.overall;
    let _ = writeln!(
        o,
        "\n## Load\n\n{} operations, {} ok, {} errors, {:.1} ops/s; late {}, dropped {}.\n\nLatency (ms, from the intended start): p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}.",
        tot.ops,
        tot.ok,
        tot.errors,
        tot.tps,
        s.load.late,
        s.load.dropped,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max
    );
    let e = &s.counts.errors;
    let _ = writeln!(
        o,
        "\nErrors by class: timeout {}, connect {}, reset {}, no_leader {}, 5xx {}, 4xx {}.",
        e.timeout, e.connect, e.reset, e.no_leader, e.http_5xx, e.http_4xx
    );
    if let Some(n) = s.elections {
        let _ = writeln!(o, "\nElections (term changes) during the load: {n}.");
    }
    if let Some(d) = &s.disk {
        let _ = writeln!(
            o,
            "\nDisk under the nodes: 4 KiB fdatasync p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples).",
            d.fdatasync_p50_ms, d.fdatasync_p99_ms, d.fdatasync_max_ms, d.samples
        );
    }
    for (id, c) in &s.log_commits {
        let _ = writeln!(
            o,
            "Node {id} log commits: {} ({} writes), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms.",
            c.commits, c.jobs, c.p50_ms, c.p99_ms, c.max_ms
        );
    }
    let _ = writeln!(o, "\n## Faults and recovery\n");
    if s.faults.is_empty() {
        let _ = writeln!(o, "No faults.");
    } else {
        let _ = writeln!(
            o,
            "| at | action | target | nodes | healed | new leader | first success | 90 % TPS | status |\n|---|---|---|---|---|---|---|---|---|"
        );
        for (n, f) in s.faults.iter().enumerate() {
            let r = s.recovery.iter().find(|r| r.fault == n);
            let nodes: Vec<String> = f.resolved.iter().map(u64::to_string).collect();
            let status = match (r, &f.error) {
                (_, Some(e)) => format!("✗ {e}"),
                (Some(r), None) => r.status.mark().to_string(),
                (None, None) => "–".into(),
            };
            let _ = writeln!(
                o,
                "| {:.1}s | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.at_s,
                f.action,
                f.target,
                nodes.join(","),
                opt(f.healed_at_s, "s"),
                figure(r, "leader_elected_after_s", |f| f.leader_elected_after_s),
                figure(r, "first_success_after_s", |f| f.first_success_after_s),
                figure(r, "tps_90pct_after_s", |f| f.tps_90pct_after_s),
                status
            );
        }
    }
    let _ = writeln!(o, "\n## Lost writes\n");
    match &s.checks.lost_writes {
        None => {
            let _ = writeln!(o, "Not checked.");
        }
        Some(lw) => {
            let status = match lw.status {
                crate::check::CheckStatus::Ok => "✓ no acknowledged write lost",
                crate::check::CheckStatus::Lost => "✗ acknowledged writes lost",
                crate::check::CheckStatus::Unknown => {
                    "? not established: keys could not be read back"
                }
            };
            let _ = writeln!(
                o,
                "**{status}.** {} acknowledged writes ({} unknown) over {} keys: {} verified, {} lost, {} unreadable.",
                lw.acked, lw.unknown, lw.keys_checked, lw.verified, lw.lost, lw.unreadable
            );
            for k in &lw.lost_keys {
                let _ = writeln!(
                    o,
                    "- `{}`: {:?}; expected {:?} (index {:?}), found {:?}",
                    k.key, k.kind, k.expected, k.expected_index, k.found
                );
            }
        }
    }
    let _ = writeln!(o, "\n## Linearizability\n");
    let l = &s.checks.linearizability;
    use crate::check::linear::SummaryStatus;
    match l.status {
        SummaryStatus::Ok => {
            let _ = writeln!(
                o,
                "✓ The history is linearizable: {} keys, {} operations, checked in {:.1} s.",
                l.keys, l.ops, l.elapsed_s
            );
        }
        SummaryStatus::Anomaly => {
            let _ = writeln!(
                o,
                "✗ **Not linearizable** on {} of {} keys ({} operations, {:.1} s). Each picture shows one lane per worker; the operation that cannot be placed is red.\n",
                l.anomalies.len(),
                l.keys,
                l.ops,
                l.elapsed_s
            );
            for a in &l.anomalies {
                let _ = writeln!(
                    o,
                    "- `{}`: operations {:?} — [{}]({})",
                    a.key, a.op_ids, a.file, a.file
                );
            }
        }
        SummaryStatus::Unknown => {
            let _ = writeln!(
                o,
                "? Not established: {} ({} keys undecided).",
                l.reason.as_deref().unwrap_or("time limit"),
                l.undecided
            );
        }
        SummaryStatus::Skipped => {
            let _ = writeln!(
                o,
                "Not checked: {}.",
                l.reason.as_deref().unwrap_or("skipped")
            );
        }
    }
    o
}
