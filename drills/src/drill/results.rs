//! The results folder: `summary.json` (checked against `results/summary.schema.json`),
//! `timeline.csv`, `nodes.csv` and `latency*.hgrm`; then `report.md`, `report.html` and the
//! SVGs, rendered from those files by [`crate::report`]. Node logs are already in `nodes/`.

use std::path::{Path, PathBuf};

use loadgen::metrics::Counts;
use loadgen::output::{LoadSummary, TimelineRow, TimelineWriter, write_hgrm_files};
use loadgen::{LoadModel, LoadReport, LoadSpec};
use serde::Serialize;

use std::collections::BTreeMap;

use raftdrill_wire::CommitTimes;

use super::disk_probe::DiskProbe;
use super::judge::{Inputs, RecoveryEntry, Verdict};
use crate::check::{LinearSummary, LostWriteReport, SessionSummary};
use crate::fault::FaultRecord;

/// `summary.json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// UTC start, RFC 3339.
    #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"))]
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
    /// Node processes that exited without the drill's doing.
    pub node_exits: Vec<super::poller::NodeExit>,
    /// Whether the load reached its planned rate outside the fault windows.
    pub validity: super::judge::Validity,
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
    /// `pass`, `warn`, `fail`, `inconclusive` or `aborted`.
    #[schemars(extend("enum" = ["pass", "warn", "fail", "inconclusive", "aborted"]))]
    pub verdict: String,
    /// Why it is not `pass`.
    pub reasons: Vec<String>,
    /// raftdrill's exit code.
    #[schemars(extend("enum" = [0, 1, 3, 4, 5]))]
    pub exit_code: u8,
}

/// `cluster` of summary.json.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClusterInfo {
    /// Initial voters.
    pub nodes: u64,
    /// The system under test.
    pub target: String,
    /// `disk` or `memory` (absent when raftdrill did not start the nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["disk", "memory"]))]
    pub store: Option<String>,
    /// `always` or `never` (absent when raftdrill did not start the nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["always", "never"]))]
    pub fsync: Option<String>,
    /// The Raft timing the nodes ran with (absent when raftdrill did not start them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// The hosts the nodes ran on, with their clocks (only for a run with `--hosts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<HostInfo>>,
}

/// One host of a run with `--hosts`. Every figure of the run uses the controller's clock; the
/// offset says how far the host's own clock (in its node log) was from it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HostInfo {
    /// The node it ran.
    pub node: u64,
    /// Its name in the hosts file.
    pub name: String,
    /// The address the node listened on.
    pub addr: String,
    /// The host's clock less the controller's, ms (midpoint of an SSH round trip).
    pub clock_offset_ms: f64,
    /// The round trip the offset was measured in, ms; the offset is within half of it.
    pub clock_rtt_ms: f64,
    /// What tc could do there (probed only for a scenario with delays or bandwidth caps):
    /// such faults on the links this host sends are made by tc where it can, else by
    /// `raftdrill proxy` on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tc: Option<crate::hosts::shaping::TcSupport>,
    /// Whether link proxies ran on the host (every peer link then takes their hop).
    pub link_proxy: bool,
}

/// Heartbeat and election timeout as the nodes got them: the scenario's, or the store's own
/// defaults (reference 50 ms and 150–300 ms; etcd 100 ms and 1000 ms, which etcd spreads over
/// 1×–2× itself).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
    /// For a run on hosts: the hosts.
    pub hosts: Option<Vec<HostInfo>>,
    /// For load from hosts (`[load] from`): each generator's host and its own counts.
    pub generators: Option<Vec<GeneratorInfo>>,
}

/// One load generator on a host (`[load] from`), as `load.generators` of summary.json. Its
/// counts are those it reported itself; the run's totals are their merge.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GeneratorInfo {
    /// Its host's name in the hosts file.
    pub host: String,
    /// The host's address.
    pub addr: String,
    /// The host's clock less the controller's, ms.
    pub clock_offset_ms: f64,
    /// The round trip the offset was measured in, ms.
    pub clock_rtt_ms: f64,
    /// Its share: ops/s (open loop) or users (closed loop).
    pub share: f64,
    /// Operations it completed in the judged part of the run.
    pub ops: u64,
    /// Of those, ok.
    pub ok: u64,
    /// Open loop: planned operations it never started.
    pub dropped: u64,
}

/// `load` of summary.json: the run's [`LoadSpec`] (its duration, warmup and thresholds stand
/// at the top of the summary) and what the load itself counted.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LoadInfo {
    /// YCSB workload letter.
    #[schemars(extend("enum" = ["a", "b", "c", "d", "f", "w"]))]
    pub workload: String,
    /// `open` or `closed`.
    #[schemars(extend("enum" = ["open", "closed"]))]
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
    /// The key distribution in force (the workload's own unless the spec overrides it).
    #[schemars(extend("enum" = ["uniform", "zipfian", "latest"]))]
    pub distribution: String,
    /// Open loop: the most operations in flight at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Closed loop: each user's pause after an operation, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think_time_ms: Option<f64>,
    /// `constant`, `ramp` or `steps`.
    #[schemars(extend("enum" = ["constant", "ramp", "steps"]))]
    pub plan: String,
    /// Per-request timeout, ms.
    pub timeout_ms: f64,
    /// Whether every operation was recorded to `history.jsonl`.
    pub history: bool,
    /// `goose` or `tasks`.
    #[schemars(extend("enum" = ["goose", "tasks"]))]
    pub engine: String,
    /// Open loop: operations that started late.
    pub late: u64,
    /// Open loop: planned operations never started.
    pub dropped: u64,
    /// Open loop: operations the plan held.
    pub planned: Option<u64>,
    /// Load from hosts: the generators, each with its own counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generators: Option<Vec<GeneratorInfo>>,
}

impl LoadInfo {
    /// The load `spec` as it ran: its `report`'s counts, and its `generators` when hosts ran
    /// it.
    pub fn new(
        spec: &LoadSpec,
        report: &LoadReport,
        generators: Option<Vec<GeneratorInfo>>,
    ) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let (max_in_flight, think_time_ms) = match &spec.model {
            LoadModel::Open { max_in_flight, .. } => (Some(*max_in_flight), None),
            LoadModel::Closed { think, .. } => (None, think.map(ms)),
        };
        LoadInfo {
            workload: spec.workload.as_str().into(),
            model: spec.model.name().into(),
            rate: spec.model.rate(),
            users: spec.model.users().map(|u| u as u32),
            keys: spec.keys,
            value_size: spec.value_size,
            consistency: spec.consistency.as_str().into(),
            distribution: spec.distribution().as_str().into(),
            max_in_flight,
            think_time_ms,
            plan: spec.plan.name().into(),
            timeout_ms: ms(spec.timeout),
            history: spec.history,
            engine: spec.engine.as_str().into(),
            late: report.counts().late,
            dropped: report.dropped,
            planned: report.planned,
            generators,
        }
    }
}

/// `checks` of summary.json.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChecksInfo {
    /// The lost-write check, when it ran.
    pub lost_writes: Option<LostWriteReport>,
    /// The linearizability check of the whole history.
    pub linearizability: LinearSummary,
    /// The session check (session reads with a history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSummary>,
    /// The recovery limit, when set.
    pub recovery_within_s: Option<f64>,
    /// How soon a fault undone during the load must recover after its undo: the scenario's
    /// `recovery_within`, or the default. `None` for a run without faults (`raftdrill load`).
    pub recovery_after_undo_within_s: Option<f64>,
    /// Nodes whose exit on their own does not make the run inconclusive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub may_stay_down: Vec<u64>,
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
            duration_s: s.load.duration.as_secs_f64(),
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
                hosts: target.hosts,
            },
            endpoints: target.endpoints,
            load: LoadInfo::new(&s.load, i.report, target.generators.clone()),
            measured: LoadSummary::new(i.report, v.thresholds.clone()),
            counts: *i.report.counts(),
            faults: i.faults.to_vec(),
            recovery: v.recovery.clone(),
            checks: ChecksInfo {
                lost_writes: i.lost.cloned(),
                linearizability: i.linear.clone(),
                session: i.session.cloned(),
                recovery_within_s: s.checks.recovery_within.map(|d| d.as_secs_f64()),
                recovery_after_undo_within_s: i.watched_nodes.then(|| {
                    s.checks
                        .recovery_within
                        .unwrap_or(crate::scenario::DEFAULT_RECOVERY_WITHIN)
                        .as_secs_f64()
                }),
                may_stay_down: s.checks.may_stay_down.clone(),
            },
            node_exits: i.poll.exits.clone(),
            validity: v.validity.clone(),
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
    let json = crate::versioned::to_json(summary, crate::versioned::schema::SUMMARY);
    write(dir.join("summary.json"), &json)?;
    write(
        dir.join("timeline.csv"),
        &timeline(i).map_err(|e| (dir.join("timeline.csv"), e))?,
    )?;
    if i.watched_nodes {
        let csv = crate::report::series::nodes_csv(&i.poll.nodes.samples());
        write(dir.join("nodes.csv"), csv.as_bytes())?;
    }
    write_hgrm_files(dir, &i.report.totals).map_err(|e| (dir.join("latency.hgrm"), e))?;
    // The pages and pictures come from the files just written, as `raftdrill report` makes
    // them. They are views of the verdict, not part of it: one that cannot be drawn is said,
    // and `raftdrill report DIR` can draw it again, but the run keeps its exit code.
    if let Err(e) = crate::report::render_run(dir) {
        tracing::warn!(error = %e, "report.md, report.html or an SVG could not be written");
    }
    Ok(())
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
