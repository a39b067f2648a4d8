//! The conductor of one drill: start the cluster behind its link proxies, drive the load, fire
//! the faults, watch the cluster, then heal, check, judge and write the results folder.
//!
//! # Layout
//! - this file: [`Drill`] (prepare, then run), [`RunOptions`], [`DrillError`], [`Phase`]
//! - [`rig`]: the cluster and links shared by the poller and the fault executor
//! - [`links`]: one proxy per directed link, and the link faults built from them
//! - [`poller`]: `/status`, CPU and RSS of every node, 6–7 times a second
//! - [`faults`]: target resolution, apply, undo, the final heal
//! - [`judge`]: final reads, thresholds, recovery and the verdict
//! - [`results`]: writes `summary.json`, `timeline.csv`, `nodes.csv`, `latency.hgrm`, then the
//!   pages and pictures through [`crate::report`]
//! - [`progress`]: the one-line-per-second progress on stderr
//! - [`disk_probe`]: fdatasync latency of the disk under the nodes, over the run

pub mod disk_probe;
pub mod faults;
pub mod judge;
pub mod links;
pub mod poller;
pub mod progress;
pub mod results;
pub mod rig;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::history::WriteRecord;
use loadgen::{LoadRun, RunClock, Snapshot};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::faults::FaultRecord;
use self::links::LinkTable;
use self::poller::{ClusterView, PollLog};
use self::rig::Rig;
use crate::admin::AdminClient;
use crate::check::WriteTracker;
use crate::exit::Exit;
use crate::local_cluster::{ClusterError, ClusterOptions, LocalCluster};
use crate::proxy::ProxyError;
use crate::scenario::Scenario;

/// How long the first leader election may take.
const ELECTION_DEADLINE: Duration = Duration::from_secs(20);

/// Where results folders go unless `--out` says otherwise: the one place this is set.
pub const RESULTS_ROOT: &str = "results";

/// The folder of a run: `out` when given, else `results/<UTC timestamp>-<label>/`.
pub fn results_dir(
    out: Option<&std::path::Path>,
    label: &str,
    at: std::time::SystemTime,
) -> PathBuf {
    match out {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from(RESULTS_ROOT).join(format!("{}-{label}", folder_stamp(at))),
    }
}

/// How to run a drill.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The results folder to write; default `results/<UTC timestamp>-<name>/`.
    pub out: Option<PathBuf>,
    /// Seed of the workload and of `any` targets.
    pub seed: u64,
    /// Overrides the scenario's duration.
    pub duration: Option<Duration>,
    /// The raftdrill binary that runs nodes.
    pub exe: PathBuf,
    /// Wire nodes to each other directly, without proxies (to measure what proxies cost).
    pub direct_links: bool,
    /// Print one progress line per second on stderr.
    pub progress: bool,
}

/// A drill could not be carried out (exit code 4).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The results folder could not be created or written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The cluster did not start.
    #[error("the cluster did not start: {0}")]
    Cluster(#[from] ClusterError),
    /// A link proxy did not start.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The load could not be configured or run.
    #[error("the load could not run: {0}")]
    Load(#[from] loadgen::LoadError),
}

/// Where a drill is, for the live view and the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Starting nodes and proxies, electing a first leader.
    #[default]
    Starting,
    /// Load runs; its figures are not judged yet.
    Warmup,
    /// Load runs and is judged.
    Load,
    /// Healing every fault and restarting nodes after the load.
    Healing,
    /// Reading every written key back.
    FinalChecks,
    /// Finished.
    Done,
}

impl Phase {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Warmup => "warmup",
            Phase::Load => "load",
            Phase::Healing => "healing",
            Phase::FinalChecks => "final checks",
            Phase::Done => "done",
        }
    }
}

/// The channels a live view reads while a drill runs. Every one is drained by the reader at its
/// own pace; nothing on the load path waits for it.
#[derive(Clone)]
pub struct DrillWatch {
    /// Once-a-second load snapshots.
    pub snapshots: watch::Receiver<Snapshot>,
    /// The cluster at each poll (stays empty for a load-only run).
    pub cluster: watch::Receiver<ClusterView>,
    /// The drill's phase.
    pub phase: watch::Receiver<Phase>,
    /// Faults fired so far.
    pub faults: Arc<Mutex<Vec<FaultRecord>>>,
    /// The run's clock.
    pub clock: Arc<RunClock>,
}

/// What a finished drill produced.
#[derive(Debug)]
pub struct DrillOutcome {
    /// The results folder.
    pub dir: PathBuf,
    /// The summary written to `summary.json`.
    pub summary: results::Summary,
    /// How raftdrill should exit.
    pub exit: Exit,
}

/// A drill ready to run: either on a cluster it started (with faults, the poller and the
/// lost-write check), or a load-only run against endpoints someone else runs (`raftdrill
/// load`). Both share the load, the snapshot collector, the verdict and the results writer.
pub struct Drill {
    scenario: Scenario,
    opts: RunOptions,
    dir: PathBuf,
    started_at: std::time::SystemTime,
    rig: Option<Arc<Rig>>,
    endpoints: Vec<String>,
    load: LoadRun,
    writes: Option<mpsc::UnboundedReceiver<WriteRecord>>,
    views: watch::Sender<ClusterView>,
    phase: watch::Sender<Phase>,
    faults: Arc<Mutex<Vec<FaultRecord>>>,
}

impl Drill {
    /// Creates the results folder, starts the proxies and the nodes, and waits for a leader.
    pub async fn prepare(scenario: Scenario, opts: RunOptions) -> Result<Drill, DrillError> {
        let (scenario, dir, started_at) = Self::folder(scenario, &opts)?;
        let copts = ClusterOptions {
            nodes: scenario.cluster.nodes,
            base_port: None,
            data_dir: None,
            log_dir: Some(dir.join("nodes")),
            exe: opts.exe.clone(),
            node_flags: scenario.cluster.node_flags(),
        };
        let mut cluster = LocalCluster::prepare(&copts)?;
        let links = if opts.direct_links {
            None
        } else {
            let addrs = cluster
                .nodes()
                .iter()
                .map(|(id, i)| (*id, i.addr))
                .collect();
            let table = LinkTable::build(&addrs).await?;
            for link in table.links().collect::<Vec<_>>() {
                let addr = table.addr(link).expect("listed").to_string();
                cluster.set_peer_addr(link.0, link.1, addr);
            }
            Some(table)
        };
        cluster.start_all()?;
        cluster.wait_for_leader(ELECTION_DEADLINE).await?;
        let endpoints = cluster.urls();
        let mut load =
            LoadRun::new(scenario.load_config(endpoints.clone(), Some(&dir), opts.seed))?;
        let writes = load.take_writes();
        let rig = Arc::new(Rig {
            cluster: tokio::sync::Mutex::new(cluster),
            links: tokio::sync::Mutex::new(links),
            removed: Mutex::new(Default::default()),
            admin: AdminClient::new(),
            http: reqwest::Client::builder()
                .build()
                .map_err(|e| DrillError::Load(loadgen::LoadError::Config(e.to_string())))?,
            clock: load.clock(),
        });
        Ok(Self::assemble(
            scenario,
            opts,
            dir,
            started_at,
            Some(rig),
            endpoints,
            load,
            writes,
        ))
    }

    /// A load-only run against `endpoints` of a cluster raftdrill does not run: no faults, no
    /// poller, no lost-write check.
    pub fn attach(
        mut scenario: Scenario,
        endpoints: Vec<String>,
        opts: RunOptions,
    ) -> Result<Drill, DrillError> {
        scenario.faults.clear();
        scenario.checks.lost_writes = false;
        let (scenario, dir, started_at) = Self::folder(scenario, &opts)?;
        let load = LoadRun::new(scenario.load_config(endpoints.clone(), Some(&dir), opts.seed))?;
        Ok(Self::assemble(
            scenario, opts, dir, started_at, None, endpoints, load, None,
        ))
    }

    /// Applies `--duration` and creates the results folder (with `nodes/`).
    fn folder(
        mut scenario: Scenario,
        opts: &RunOptions,
    ) -> Result<(Scenario, PathBuf, std::time::SystemTime), DrillError> {
        if let Some(d) = opts.duration {
            scenario.duration = d;
            scenario.load.warmup = scenario.load.warmup.min(d / 4);
        }
        let started_at = std::time::SystemTime::now();
        let dir = results_dir(opts.out.as_deref(), &scenario.name, started_at);
        let nodes_dir = dir.join("nodes");
        std::fs::create_dir_all(&nodes_dir).map_err(|source| DrillError::Io {
            path: nodes_dir.clone(),
            source,
        })?;
        Ok((scenario, dir, started_at))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        scenario: Scenario,
        opts: RunOptions,
        dir: PathBuf,
        started_at: std::time::SystemTime,
        rig: Option<Arc<Rig>>,
        endpoints: Vec<String>,
        load: LoadRun,
        writes: Option<mpsc::UnboundedReceiver<WriteRecord>>,
    ) -> Drill {
        Drill {
            scenario,
            opts,
            dir,
            started_at,
            rig,
            endpoints,
            load,
            writes,
            views: watch::channel(ClusterView::default()).0,
            phase: watch::channel(Phase::Starting).0,
            faults: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The channels a live view reads.
    pub fn watch(&self) -> DrillWatch {
        DrillWatch {
            snapshots: self.load.snapshots(),
            cluster: self.views.subscribe(),
            phase: self.phase.subscribe(),
            faults: self.faults.clone(),
            clock: self.load.clock(),
        }
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Runs the drill to its end, or until `stop` (then the verdict is `aborted`).
    pub async fn run(self, stop: CancellationToken) -> Result<DrillOutcome, DrillError> {
        let progress_watch = self.watch();
        let Drill {
            scenario,
            opts,
            dir,
            started_at,
            rig,
            endpoints,
            load,
            writes,
            views,
            phase,
            faults,
        } = self;
        let clock = load.clock();
        let background = CancellationToken::new();
        let warmup_s = scenario.load.warmup.as_secs_f64();
        let poll_log = Arc::new(Mutex::new(PollLog::default()));
        let cluster_views = views.subscribe();
        let probe = match &rig {
            Some(rig) => {
                let root = rig.cluster.lock().await.root().clone();
                disk_probe::Prober::start(&root)
                    .map_err(|e| tracing::warn!(error = %e, "the disk probe cannot run"))
                    .ok()
            }
            None => None,
        };
        let poller = rig.clone().map(|rig| {
            tokio::spawn(poller::run(
                rig,
                views,
                poll_log.clone(),
                warmup_s,
                background.clone(),
            ))
        });

        // Writes are tracked off the request path: the load only sends on a channel.
        let tracker = writes.map(|mut rx| {
            let clock = clock.clone();
            tokio::spawn(async move {
                let mut t = WriteTracker::new();
                let mut acked_at = Vec::new();
                while let Some(w) = rx.recv().await {
                    if w.status == loadgen::history::WriteStatus::Acked {
                        acked_at.push(clock.now_s());
                    }
                    t.observe(&w);
                }
                (t, acked_at)
            })
        });
        let phases = tokio::spawn(follow_phase(
            load.snapshots(),
            phase.clone(),
            scenario.load.warmup,
        ));
        let progress = opts.progress.then(|| {
            tokio::spawn(progress::run(
                scenario.faults.clone(),
                progress_watch,
                background.clone(),
            ))
        });
        let schedule = rig.clone().map(|rig| {
            tokio::spawn(faults::run_schedule(
                rig,
                scenario.faults.clone(),
                cluster_views.clone(),
                faults.clone(),
                opts.seed,
                background.clone(),
            ))
        });

        let report = load.run(stop.clone()).await;
        // The load generator also hears SIGINT itself and may stop before `stop` is cancelled.
        let aborted = stop.is_cancelled() || report.as_ref().is_ok_and(|r| r.canceled);
        background.cancel();
        if let Some(s) = schedule {
            let _ = s.await;
        }
        phase.send_replace(Phase::Healing);
        if let Some(rig) = &rig {
            faults::heal_everything(rig, &faults).await;
        }
        phases.abort();
        if let Some(p) = progress {
            let _ = p.await;
        }
        let report = report?;
        let (tracker, acked_at) = match tracker {
            Some(t) => t.await.unwrap_or_default(),
            None => (WriteTracker::new(), Vec::new()),
        };

        phase.send_replace(Phase::FinalChecks);
        let lost = match &rig {
            Some(rig) if scenario.checks.lost_writes && !aborted => {
                Some(judge::final_reads(rig, &tracker).await)
            }
            _ => None,
        };
        if let Some(p) = poller {
            let _ = p.await;
        }
        let disk = probe.and_then(disk_probe::Prober::finish);
        let poll = std::mem::take(&mut *poll_log.lock().expect("poll log lock"));
        let fault_records = faults.lock().expect("fault records lock").clone();
        let inputs = judge::Inputs {
            scenario: &scenario,
            report: &report,
            snapshots: &report.snapshots,
            poll: &poll,
            acked_at: &acked_at,
            faults: &fault_records,
            lost: lost.as_ref(),
            aborted,
            watched_nodes: rig.is_some(),
            disk: disk.as_ref(),
        };
        let verdict = judge::judge(&inputs);
        let target = results::TargetInfo {
            endpoints: rig.is_none().then_some(endpoints),
        };
        let summary = results::Summary::build(&inputs, &verdict, started_at, opts.seed, target);
        results::write_all(&dir, &summary, &inputs)
            .map_err(|(path, source)| DrillError::Io { path, source })?;

        if let Some(rig) = rig {
            stop_rig(rig).await;
        }
        phase.send_replace(Phase::Done);
        Ok(DrillOutcome {
            dir,
            summary,
            exit: verdict.exit,
        })
    }
}

/// Moves the phase from warmup to load when the first judged snapshot arrives, until the
/// load's last snapshot. (The record of every snapshot comes with the load's report.)
async fn follow_phase(
    mut snaps: watch::Receiver<Snapshot>,
    phase: watch::Sender<Phase>,
    warmup: Duration,
) {
    phase.send_replace(if warmup.is_zero() {
        Phase::Load
    } else {
        Phase::Warmup
    });
    while snaps.changed().await.is_ok() {
        let (judged, last) = {
            let s = snaps.borrow_and_update();
            (!s.warmup, s.last)
        };
        if judged {
            phase.send_if_modified(|p| (*p == Phase::Warmup).then(|| *p = Phase::Load).is_some());
        }
        if last {
            break;
        }
    }
}

/// Stops every node and proxy.
async fn stop_rig(rig: Arc<Rig>) {
    rig.cluster.lock().await.stop(Duration::from_secs(5)).await;
    if let Some(links) = rig.links.lock().await.take() {
        links.shutdown().await;
    }
}

/// `20261126T192346Z` for a results folder name.
pub fn folder_stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}
