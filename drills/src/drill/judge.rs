//! After the load: read every written key back, evaluate thresholds and recovery, and decide
//! the verdict and the exit code.

use std::collections::BTreeMap;
use std::time::Duration;

use loadgen::thresholds::{Observed, Status, ThresholdResult, worst};
use loadgen::{LoadReport, Snapshot};
use raftdrill_wire::GetResponse;
use serde::Serialize;

use super::faults::FaultRecord;
use super::poller::PollLog;
use super::rig::Rig;
use crate::check::{LostWriteReport, Observations, Recovery, WriteTracker, measure};
use crate::exit::Exit;
use crate::scenario::Scenario;

/// How long the cluster gets to elect a leader after the final heal.
const SETTLE_DEADLINE: Duration = Duration::from_secs(20);
/// Final reads in flight at once.
const READ_CONCURRENCY: usize = 32;
/// Attempts per final read before the key counts as unreadable.
const READ_ATTEMPTS: u32 = 8;

/// Everything the verdict is made from.
pub struct Inputs<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// What the load measured (after warmup).
    pub report: &'a LoadReport,
    /// Every once-a-second snapshot.
    pub snapshots: &'a [Snapshot],
    /// Leader changes and CPU.
    pub poll: &'a PollLog,
    /// Completion times of acknowledged writes.
    pub acked_at: &'a [f64],
    /// The faults as they happened.
    pub faults: &'a [FaultRecord],
    /// The lost-write check, when it ran.
    pub lost: Option<&'a LostWriteReport>,
    /// Whether the run was stopped early.
    pub aborted: bool,
    /// Whether raftdrill watched the nodes (a drill), or only drove endpoints (`load`).
    pub watched_nodes: bool,
    /// The disk probe's figures, when it ran.
    pub disk: Option<&'a super::disk_probe::DiskProbe>,
}

/// Recovery of one fault, judged against `recovery_within`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryEntry {
    /// Index into `faults`.
    pub fault: usize,
    /// Its action.
    pub action: String,
    /// When it fired.
    pub at_s: f64,
    /// The figures.
    #[serde(flatten)]
    pub figures: Recovery,
    /// The limit, when the scenario sets one.
    pub within_s: Option<f64>,
    /// `ok`, or `break` when a figure exceeds the limit.
    pub status: Status,
}

/// The verdict and what it rests on.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `pass`, `warn`, `fail` or `aborted`.
    pub verdict: &'static str,
    /// How raftdrill exits.
    pub exit: Exit,
    /// The thresholds over the judged part of the run.
    pub thresholds: Vec<ThresholdResult>,
    /// Recovery per fault that fired.
    pub recovery: Vec<RecoveryEntry>,
    /// Why the verdict is not `pass`, one line each.
    pub reasons: Vec<String>,
}

/// Judges a run.
pub fn judge(i: &Inputs<'_>) -> Verdict {
    let mut observed = Observed::from_load(i.report.counts(), &i.report.latency(), i.report.tps());
    observed.node_cpu = i.poll.busiest_cpu();
    let thresholds = i.scenario.thresholds.evaluate(&observed);
    let tps: Vec<(f64, f64)> = i.snapshots.iter().map(|s| (s.t, s.tps)).collect();
    let within = i.scenario.checks.recovery_within.map(|d| d.as_secs_f64());
    let recovery: Vec<RecoveryEntry> = i
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.error.is_none())
        .map(|(n, f)| {
            let obs = Observations {
                leaders: &i.poll.leaders,
                acked_at: i.acked_at,
                tps: &tps,
            };
            let figures = measure(f.at_s, f.hit_leader, obs);
            let over = within.map(|w| figures.over(w)).unwrap_or_default();
            let status = if over.is_empty() {
                Status::Ok
            } else {
                Status::Break
            };
            RecoveryEntry {
                fault: n,
                action: f.action.clone(),
                at_s: f.at_s,
                figures,
                within_s: within,
                status,
            }
        })
        .collect();

    let mut reasons = Vec::new();
    for t in thresholds.iter().filter(|t| t.status != Status::Ok) {
        let level = if t.status == Status::Break {
            "break"
        } else {
            "warn"
        };
        reasons.push(format!(
            "{} = {} is past its {level} level",
            t.metric.as_str(),
            show(t.observed)
        ));
    }
    for r in recovery.iter().filter(|r| r.status == Status::Break) {
        let over = r
            .figures
            .over(r.within_s.unwrap_or(f64::INFINITY))
            .join(", ");
        reasons.push(format!(
            "{} at {:.1}s: {over} over {:.1}s",
            r.action,
            r.at_s,
            r.within_s.unwrap_or(0.0)
        ));
    }
    for f in i.faults.iter().filter(|f| f.error.is_some()) {
        reasons.push(format!(
            "{} {} could not fire: {}",
            f.action,
            f.target,
            f.error.as_deref().unwrap_or("")
        ));
    }
    if let Some(l) = i.lost {
        if l.lost > 0 {
            reasons.push(format!(
                "{} of {} written keys lost acknowledged writes",
                l.lost, l.keys_checked
            ));
        }
        if l.unreadable > 0 {
            reasons.push(format!("{} keys could not be read back", l.unreadable));
        }
    }

    let broken =
        worst(&thresholds) == Status::Break || recovery.iter().any(|r| r.status == Status::Break);
    let warned = worst(&thresholds) == Status::Warn
        || i.faults.iter().any(|f| f.error.is_some())
        || i.lost.is_some_and(|l| l.unreadable > 0);
    let (verdict, exit) = if i.lost.is_some_and(|l| l.lost > 0) {
        ("fail", Exit::DataAnomaly)
    } else if i.aborted {
        reasons.insert(0, "stopped before the end (Ctrl-C or SIGTERM)".into());
        ("aborted", Exit::CannotRun)
    } else if broken {
        ("fail", Exit::ThresholdBroken)
    } else if warned {
        ("warn", Exit::Pass)
    } else {
        ("pass", Exit::Pass)
    };
    Verdict {
        verdict,
        exit,
        thresholds,
        recovery,
        reasons,
    }
}

fn show(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// Reads every key a write may have changed, linearizably, and runs the lost-write check.
pub async fn final_reads(rig: &Rig, tracker: &WriteTracker) -> LostWriteReport {
    let leader = rig.wait_for_leader(SETTLE_DEADLINE).await;
    let urls: Vec<String> = {
        let c = rig.cluster.lock().await;
        let mut ids: Vec<u64> = c
            .nodes()
            .keys()
            .copied()
            .filter(|id| !rig.is_removed(*id))
            .collect();
        // The leader first: a read there needs no forwarding.
        ids.sort_by_key(|id| Some(*id) != leader);
        ids.into_iter().map(|id| c.url(id)).collect()
    };
    let keys = tracker.keys_to_check();
    let mut reads: BTreeMap<String, Result<Option<String>, String>> = BTreeMap::new();
    let mut pending = keys.into_iter();
    let mut set = tokio::task::JoinSet::new();
    loop {
        while set.len() < READ_CONCURRENCY {
            let Some(key) = pending.next() else { break };
            let (http, urls) = (rig.http.clone(), urls.clone());
            set.spawn(async move {
                let res = read_key(&http, &urls, &key).await;
                (key, res)
            });
        }
        match set.join_next().await {
            Some(Ok((key, res))) => {
                reads.insert(key, res);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "final read task failed"),
            None => break,
        }
    }
    tracker.report(&reads)
}

async fn read_key(
    http: &reqwest::Client,
    urls: &[String],
    key: &str,
) -> Result<Option<String>, String> {
    let mut last = String::from("no node to read from");
    for attempt in 0..READ_ATTEMPTS {
        let Some(url) = urls.get(attempt as usize % urls.len().max(1)) else {
            break;
        };
        let resp = http
            .get(format!(
                "{url}/kv/{}?consistency=linearizable",
                loadgen::reference::encode_key(key)
            ))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == 200 => match r.json::<GetResponse>().await {
                Ok(g) => return Ok(Some(g.value)),
                Err(e) => last = e.to_string(),
            },
            Ok(r) if r.status() == 404 => return Ok(None),
            Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt + 1))).await;
    }
    Err(last)
}
