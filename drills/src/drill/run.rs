//! One drill from the first operation to the verdict: the watchers and the fault schedule run
//! beside the load; after it come the heal, the final reads, the checks, the verdict and the
//! results folder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::LoadReport;
use loadgen::history::HistoryRecord;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::poller::PollLog;
use super::track::{Tracked, follow_phase, linear_note, panic_text, track_ops};
use super::{
    Drill, DrillError, DrillOutcome, Phase, consistency, disk_probe, judge, poller, progress,
    read_back, remote_load, results,
};
use crate::check::{LinearSummary, LostWriteReport, SessionSummary};
use crate::fault::{Rig, heal_everything, run_schedule};

/// How long nodes get to stop after SIGTERM at the end of a drill.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// The tasks that run beside the load.
struct Watchers {
    background: CancellationToken,
    poll_log: Arc<Mutex<PollLog>>,
    probe: Option<disk_probe::Prober>,
    poller: Option<JoinHandle<()>>,
    tracker: Option<JoinHandle<Tracked>>,
    phases: JoinHandle<()>,
    progress: Option<JoinHandle<()>>,
    schedule: Option<JoinHandle<()>>,
}

/// What the load and the watchers measured.
struct Measured {
    report: LoadReport,
    generators: Option<Vec<results::GeneratorInfo>>,
    tracked: Tracked,
    poll: PollLog,
    disk: Option<disk_probe::DiskProbe>,
    aborted: bool,
}

/// What the checks after the load found.
struct Checked {
    lost: Option<LostWriteReport>,
    linear: LinearSummary,
    session: Option<SessionSummary>,
    /// The nodes expected up that were not up and caught up at the end, one line each.
    behind: Vec<String>,
    /// Checking tasks that panicked, with their message.
    panics: Vec<String>,
}

impl Drill {
    /// Runs the drill to its end, or until `stop` (then the verdict is `aborted`).
    pub async fn run(mut self, stop: CancellationToken) -> Result<DrillOutcome, DrillError> {
        let w = self.start_watchers();
        let load = self.load.take().expect("a drill runs once");
        let remote = matches!(load, super::Load::Remote(_));
        let report = load.run(stop.clone()).await;
        // The load generator also hears SIGINT itself and may stop before `stop` is cancelled.
        let aborted = stop.is_cancelled() || report.as_ref().is_ok_and(|(r, _)| r.canceled);
        w.background.cancel();
        if let Some(s) = w.schedule {
            let _ = s.await;
        }
        self.phase.send_replace(Phase::Healing);
        if let Some(rig) = &self.rig {
            heal_everything(rig, &self.faults).await;
        }
        w.phases.abort();
        if let Some(p) = w.progress {
            let _ = p.await;
        }
        let (report, generators) = match report {
            Ok(r) => r,
            Err(e) => {
                if let Some(rig) = self.rig.take() {
                    stop_rig(rig).await;
                }
                return Err(e);
            }
        };
        let mut panics = Vec::new();
        let tracked = match w.tracker {
            Some(t) => match t.await {
                Ok(t) => Some(t),
                Err(e) => {
                    panics.push(format!("the operation tracker: {}", panic_text(e)));
                    None
                }
            },
            None => Some(Tracked::default()),
        };
        self.phase.send_replace(Phase::FinalChecks);
        let mut checked = self.check(tracked.as_ref(), aborted, remote).await;
        checked.panics.splice(0..0, panics);
        if let Some(p) = w.poller {
            let _ = p.await;
        }
        if let Some(rig) = &self.rig
            && !aborted
        {
            checked.behind = self.settle(rig, &w.poll_log).await;
        }
        let tracked = tracked.unwrap_or_default();
        let measured = Measured {
            report,
            generators,
            tracked,
            poll: std::mem::take(&mut *w.poll_log.lock().unwrap_or_else(|e| e.into_inner())),
            disk: w.probe.and_then(disk_probe::Prober::finish),
            aborted,
        };
        let outcome = self.judge_and_write(measured, &checked);
        if let Some(rig) = self.rig.take() {
            stop_rig(rig).await;
        }
        self.phase.send_replace(Phase::Done);
        outcome
    }

    /// Starts the poller, the operation tracker, the phase follower, the progress line and
    /// the fault schedule.
    fn start_watchers(&mut self) -> Watchers {
        let background = CancellationToken::new();
        let poll_log = Arc::new(Mutex::new(PollLog::default()));
        // Nodes on hosts keep their data on disks this machine cannot probe.
        let probe = self
            .rig
            .as_ref()
            .and_then(|rig| rig.nodes.placement().root())
            .and_then(|root| {
                disk_probe::Prober::start(&root)
                    .map_err(|e| tracing::warn!(error = %e, "the disk probe cannot run"))
                    .ok()
            });
        let warmup = self.scenario.load.warmup;
        let poller = self.rig.clone().map(|rig| {
            let views = self.views.clone();
            tokio::spawn(poller::run(
                rig,
                views,
                poll_log.clone(),
                warmup.as_secs_f64(),
                background.clone(),
            ))
        });
        // Operations are tracked off the request path: the load only sends on a channel.
        let tracker = self.ops.take().map(|rx| tokio::spawn(track_ops(rx)));
        let phases = tokio::spawn(follow_phase(
            self.snapshots.clone(),
            self.phase.clone(),
            warmup,
        ));
        let progress = self.opts.progress.then(|| {
            tokio::spawn(progress::run(
                self.scenario.faults.clone(),
                self.watch(),
                background.clone(),
            ))
        });
        let schedule = self.rig.clone().map(|rig| {
            tokio::spawn(run_schedule(
                rig,
                self.scenario.faults.clone(),
                self.views.subscribe(),
                self.faults.clone(),
                self.opts.seed,
                background.clone(),
            ))
        });
        Watchers {
            background,
            poll_log,
            probe,
            poller,
            tracker,
            phases,
            progress,
            schedule,
        }
    }

    /// The read-back and the consistency checks, as the scenario asks for them. Without the
    /// operation tracker's record (it panicked) there is nothing to read back: the panic is
    /// the reason the check is missing.
    async fn check(&self, tracked: Option<&Tracked>, aborted: bool, remote: bool) -> Checked {
        let s = &self.scenario;
        let mut panics = Vec::new();
        let (lost, final_reads): (_, Vec<HistoryRecord>) = match (&self.rig, tracked) {
            (Some(rig), Some(tracked)) if s.checks.lost_writes && !aborted => {
                let back = read_back::final_reads(rig, &tracked.writes).await;
                panics.extend(back.panics);
                (Some(back.report), back.history)
            }
            _ => (None, Vec::new()),
        };
        let (linear, session) = if !s.checks.linearizability {
            let off = "turned off in the scenario's [checks]";
            (LinearSummary::skipped(off), None)
        } else if aborted {
            let stopped = "the run was stopped before its end";
            (LinearSummary::skipped(stopped), None)
        } else if remote && s.load.history && !self.dir.join("history.jsonl").exists() {
            let why = "the load hosts' histories could not be fetched and merged (see the log)";
            (LinearSummary::skipped(why), None)
        } else {
            let limit = s.checks.check_time_limit;
            let reads = s.load.consistency;
            let (mut linear, session) =
                consistency::check(&self.dir, final_reads, limit, reads).await;
            if remote && linear.reason.is_none() {
                linear.reason = Some(format!(
                    "the histories of the load hosts were merged on the controller's clock, \
                     each operation widened by its host's clock uncertainty (half the \
                     offset's round trip + {} ms)",
                    remote_load::CLOCK_MARGIN.as_millis()
                ));
            }
            (linear, session)
        };
        self.notes.send_modify(|n| n.push(linear_note(&linear)));
        if let Some(s) = &session {
            self.notes.send_modify(|n| n.push(s.line()));
        }
        Checked {
            lost,
            linear,
            session,
            behind: Vec::new(),
            panics,
        }
    }

    /// The end of the run: every node the scenario expects up must be up and caught up with
    /// the leader. Exits seen now (a node restarted by the final heal that would not stay up)
    /// join the poll log; returns one line per node that is not there.
    async fn settle(&self, rig: &Rig, poll_log: &Mutex<PollLog>) -> Vec<String> {
        let n = &rig.nodes;
        let may = &self.scenario.checks.may_stay_down;
        let expected: Vec<u64> = n
            .ids()
            .into_iter()
            .filter(|id| !n.is_removed(*id) && !may.contains(id))
            .collect();
        let behind = n.caught_up(&expected, CATCH_UP_DEADLINE).await;
        let exits = n.placement().take_exits().await;
        let at_s = rig.now_s();
        let mut log = poll_log.lock().unwrap_or_else(|e| e.into_inner());
        for (node, status, log_tail) in exits {
            log.exits.push(poller::NodeExit {
                node,
                at_s,
                status,
                log_tail,
            });
        }
        behind
    }

    /// Judges the run and writes the results folder.
    fn judge_and_write(&self, m: Measured, checked: &Checked) -> Result<DrillOutcome, DrillError> {
        let fault_records = self
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let inputs = judge::Inputs {
            scenario: &self.scenario,
            report: &m.report,
            snapshots: &m.report.snapshots,
            poll: &m.poll,
            acked: &m.tracked.acked,
            ok_invoked: &m.tracked.ok_invoked,
            faults: &fault_records,
            lost: checked.lost.as_ref(),
            aborted: m.aborted,
            watched_nodes: self.rig.is_some(),
            disk: m.disk.as_ref(),
            linear: &checked.linear,
            session: checked.session.as_ref(),
            done_intended: &m.tracked.done_intended,
            behind: &checked.behind,
            panics: &checked.panics,
        };
        let verdict = judge::judge(&inputs);
        let target = results::TargetInfo {
            endpoints: self.rig.is_none().then(|| self.endpoints.clone()),
            hosts: self.rig.as_ref().and_then(|rig| host_info(rig)),
            generators: m.generators,
        };
        let summary =
            results::Summary::build(&inputs, &verdict, self.started_at, self.opts.seed, target);
        results::write_all(&self.dir, &summary, &inputs)
            .map_err(|(path, source)| DrillError::Io { path, source })?;
        Ok(DrillOutcome {
            dir: self.dir.clone(),
            summary,
            exit: verdict.exit,
        })
    }
}

/// How long the nodes get, after the final reads, to be up and caught up with the leader.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(15);

/// The hosts of a drill on hosts, for the summary.
fn host_info(rig: &Rig) -> Option<Vec<results::HostInfo>> {
    let h = rig.nodes.placement().hosts()?;
    Some(
        h.nodes()
            .values()
            .map(|n| results::HostInfo {
                node: n.id,
                name: n.spec.name.clone(),
                addr: n.addr.to_string(),
                clock_offset_ms: n.clock_offset_s * 1000.0,
                clock_rtt_ms: n.clock_rtt_s * 1000.0,
                tc: n.shaping.as_ref().map(|p| p.support),
                link_proxy: h.has_link_proxies(),
            })
            .collect(),
    )
}

/// Stops every node and proxy, then detaches the nodes' fault-injecting disks, so that the
/// cluster's temporary folder can be removed whole (the logs of nodes on hosts are fetched
/// into the run's `nodes/` first).
async fn stop_rig(rig: Arc<Rig>) {
    rig.nodes.shutdown(STOP_GRACE).await;
}
