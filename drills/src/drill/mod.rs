//! The conductor of one drill: start the cluster behind its link proxies, drive the load, fire
//! the faults, watch the cluster, then heal, check, judge and write the results folder.
//!
//! # Layout
//! - this file: [`Drill`] (prepare, then run), [`RunOptions`], [`DrillError`], [`Phase`]
//! - [`rig`]: the nodes and links shared by the poller and the fault executor
//! - [`nodes`]: the nodes under test, reference or etcd, behind one interface
//! - [`links`]: one proxy per directed link, and the link faults built from them
//! - [`poller`]: `/status`, CPU and RSS of every node, 6–7 times a second
//! - [`faults`]: target resolution, apply, undo, the final heal
//! - [`read_back`]: the final reads after the load (lost writes, and the history's last reads)
//! - [`consistency`]: the linearizability check of the whole history
//! - [`judge`]: thresholds, recovery, the checks' outcomes and the verdict
//! - [`results`]: writes `summary.json`, `timeline.csv`, `nodes.csv`, `latency.hgrm`, then the
//!   pages and pictures through [`crate::report`]
//! - [`progress`]: the one-line-per-second progress on stderr
//! - [`disk_probe`]: fdatasync latency of the disk under the nodes, over the run
//! - [`disks`]: the fault-injecting filesystems under the nodes' data, for disk faults

pub mod consistency;
pub mod disk_probe;
pub mod disks;
pub mod faults;
pub mod judge;
pub mod links;
pub mod nodes;
pub mod on_hosts;
pub mod poller;
pub mod progress;
pub mod read_back;
pub mod remote_load;
pub mod results;
pub mod rig;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::history::OpRecord;
use loadgen::{LoadReport, LoadRun, RunClock, Snapshot};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::disks::Disks;
use self::faults::FaultRecord;
use self::links::LinkTable;
use self::nodes::{Nodes, ReferenceNodes};
use self::poller::{ClusterView, PollLog};
use self::rig::Rig;
use crate::check::WriteTracker;
use crate::etcd::{EtcdError, EtcdOptions, LocalEtcd};
use crate::exit::Exit;
use crate::local_cluster::{ClusterError, ClusterOptions, LocalCluster};
use crate::proxy::ProxyError;
use crate::scenario::Scenario;
use loadgen::target::TargetKind;

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
    /// The etcd binary, when the target is etcd (default: `etcd` on PATH).
    pub etcd_bin: Option<PathBuf>,
    /// Run the nodes on these hosts over SSH.
    pub hosts: Option<HostPlan>,
}

/// Nodes on hosts: the hosts file and the port every node listens on.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// The hosts.
    pub file: crate::hosts::HostsFile,
    /// The node port at each host's address.
    pub port: u16,
}

impl HostPlan {
    /// Why `scenario` cannot run on these hosts, one line each (empty when it can).
    pub fn refusals(&self, scenario: &Scenario) -> Vec<String> {
        let mut out = on_hosts::unsupported(scenario);
        if scenario.cluster.target == TargetKind::Etcd
            && on_hosts::link_modes(scenario).contains(&crate::proxy::LinkMode::Reset)
        {
            out.push(
                "reset on hosts is made by link proxies, and etcd's peer links cannot go \
                 through them (delays and bandwidth caps can, by tc, where the hosts have it)"
                    .into(),
            );
        }
        match self.file.split(&scenario.load_from) {
            Err(e) => out.insert(0, e),
            Ok((nodes, load)) => {
                if let Some(Err(e)) = (!load.is_empty()).then(|| scenario.load.share(0, load.len()))
                {
                    out.push(e.to_string());
                }
                let hosts = nodes.host.len() as u64;
                if scenario.cluster.nodes != hosts {
                    let load = if scenario.load_from.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " that do not run the load ({})",
                            scenario.load_from.join(", ")
                        )
                    };
                    out.insert(
                        0,
                        format!(
                            "the scenario has {} nodes and the hosts file {hosts} hosts{load} (one node per host)",
                            scenario.cluster.nodes
                        ),
                    );
                }
            }
        }
        out
    }
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
    /// etcd could not be started.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The fault-injecting disks could not be set up.
    #[error("{0}")]
    Disk(String),
    /// The hosts could not be readied or their nodes did not start.
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostsError),
    /// The load on hosts (`[load] from`) failed.
    #[error(transparent)]
    RemoteLoad(#[from] remote_load::RemoteLoadError),
    /// The load on hosts could not be set up.
    #[error("{0}")]
    LoadHosts(String),
}

/// The drill's load: on this machine, or on hosts (`[load] from`).
enum Load {
    Local(LoadRun),
    Remote(remote_load::RemoteLoad),
}

impl Load {
    fn clock(&self) -> Arc<RunClock> {
        match self {
            Load::Local(l) => l.clock(),
            Load::Remote(r) => r.clock(),
        }
    }

    fn snapshots(&self) -> watch::Receiver<Snapshot> {
        match self {
            Load::Local(l) => l.snapshots(),
            Load::Remote(r) => r.snapshots(),
        }
    }

    fn take_ops(&mut self) -> Option<mpsc::UnboundedReceiver<OpRecord>> {
        match self {
            Load::Local(l) => l.take_ops(),
            Load::Remote(r) => r.take_ops(),
        }
    }

    /// Runs it; for load on hosts, also each generator's own figures.
    async fn run(
        self,
        stop: CancellationToken,
    ) -> Result<(LoadReport, Option<Vec<results::GeneratorInfo>>), DrillError> {
        match self {
            Load::Local(l) => Ok((l.run(stop).await?, None)),
            Load::Remote(r) => {
                let (report, generators) = r.run(stop).await?;
                Ok((report, Some(generators)))
            }
        }
    }
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
    /// One line per check as it finishes (the linearizability check, say), for the event log.
    pub notes: watch::Receiver<Vec<String>>,
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
    load: Load,
    ops: Option<mpsc::UnboundedReceiver<OpRecord>>,
    views: watch::Sender<ClusterView>,
    phase: watch::Sender<Phase>,
    faults: Arc<Mutex<Vec<FaultRecord>>>,
    notes: watch::Sender<Vec<String>>,
}

impl Drill {
    /// Creates the results folder, starts the proxies and the nodes, and waits for a leader.
    pub async fn prepare(scenario: Scenario, opts: RunOptions) -> Result<Drill, DrillError> {
        let (scenario, dir, started_at) = Self::folder(scenario, &opts)?;
        // Load hosts are readied before any node starts: a host unfit for either is an error
        // before anything runs.
        let load_hosts = match &opts.hosts {
            Some(plan) if !scenario.load_from.is_empty() => {
                let (_, specs) = plan
                    .file
                    .split(&scenario.load_from)
                    .map_err(DrillError::LoadHosts)?;
                Some(Arc::new(
                    crate::hosts::LoadHosts::prepare(&specs, &opts.exe).await?,
                ))
            }
            _ => None,
        };
        let start = NodeStart {
            exe: opts.exe.clone(),
            etcd_bin: opts.etcd_bin.clone(),
            direct_links: opts.direct_links,
            hosts: opts.hosts.clone(),
        };
        let (nodes, disks) = start_nodes(&scenario, &start, &dir).await?;
        // Nodes on hosts answer admin calls only with the run's token.
        let admin = nodes.hosts().map(|h| h.admin().clone()).unwrap_or_default();
        let endpoints = nodes.client_urls();
        let mut load = match load_hosts {
            Some(hosts) => Load::Remote(
                remote_load::RemoteLoad::new(&scenario, &endpoints, hosts, dir.clone(), opts.seed)
                    .map_err(DrillError::LoadHosts)?,
            ),
            None => Load::Local(LoadRun::new(scenario.load_config(
                endpoints.clone(),
                Some(&dir),
                opts.seed,
            ))?),
        };
        let ops = load.take_ops();
        let rig = Arc::new(Rig {
            nodes: tokio::sync::Mutex::new(nodes),
            removed: Mutex::new(Default::default()),
            admin,
            clock: load.clock(),
            disks: tokio::sync::Mutex::new(disks),
        });
        Ok(Self::assemble(
            scenario,
            opts,
            dir,
            started_at,
            Some(rig),
            endpoints,
            load,
            ops,
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
        let load = Load::Local(LoadRun::new(scenario.load_config(
            endpoints.clone(),
            Some(&dir),
            opts.seed,
        ))?);
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
            scenario = scenario.fit_to(d);
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
        load: Load,
        ops: Option<mpsc::UnboundedReceiver<OpRecord>>,
    ) -> Drill {
        Drill {
            scenario,
            opts,
            dir,
            started_at,
            rig,
            endpoints,
            load,
            ops,
            views: watch::channel(ClusterView::default()).0,
            phase: watch::channel(Phase::Starting).0,
            faults: Arc::new(Mutex::new(Vec::new())),
            notes: watch::channel(Vec::new()).0,
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
            notes: self.notes.subscribe(),
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
            ops,
            views,
            phase,
            faults,
            notes,
        } = self;
        let background = CancellationToken::new();
        let warmup_s = scenario.load.warmup.as_secs_f64();
        let poll_log = Arc::new(Mutex::new(PollLog::default()));
        let cluster_views = views.subscribe();
        let probe = match &rig {
            // Nodes on hosts keep their data on disks this machine cannot probe.
            Some(rig) => match rig.nodes.lock().await.root() {
                Some(root) => disk_probe::Prober::start(&root)
                    .map_err(|e| tracing::warn!(error = %e, "the disk probe cannot run"))
                    .ok(),
                None => None,
            },
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

        // Operations are tracked off the request path: the load only sends on a channel.
        let tracker = ops.map(|rx| tokio::spawn(track_ops(rx)));
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

        let remote = matches!(load, Load::Remote(_));
        let report = load.run(stop.clone()).await;
        // The load generator also hears SIGINT itself and may stop before `stop` is cancelled.
        let aborted = stop.is_cancelled() || report.as_ref().is_ok_and(|(r, _)| r.canceled);
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
        let (report, generators) = match report {
            Ok(r) => r,
            Err(e) => {
                if let Some(rig) = rig {
                    stop_rig(rig).await;
                }
                return Err(e);
            }
        };
        let tracked = match tracker {
            Some(t) => t.await.unwrap_or_default(),
            None => Tracked::default(),
        };

        phase.send_replace(Phase::FinalChecks);
        let (lost, final_reads) = match &rig {
            Some(rig) if scenario.checks.lost_writes && !aborted => {
                let (report, reads) = read_back::final_reads(rig, &tracked.writes).await;
                (Some(report), reads)
            }
            _ => (None, Vec::new()),
        };
        let (linear, session) = if !scenario.checks.linearizability {
            let off = "turned off in the scenario's [checks]";
            (crate::check::LinearSummary::skipped(off), None)
        } else if aborted {
            let stopped = "the run was stopped before its end";
            (crate::check::LinearSummary::skipped(stopped), None)
        } else if remote && scenario.load.history && !dir.join("history.jsonl").exists() {
            let why = "the load hosts' histories could not be fetched and merged (see the log)";
            (crate::check::LinearSummary::skipped(why), None)
        } else {
            let limit = scenario.checks.check_time_limit;
            let reads = scenario.load.consistency;
            let (mut linear, session) = consistency::check(&dir, final_reads, limit, reads).await;
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
        notes.send_modify(|n| n.push(linear_note(&linear)));
        if let Some(s) = &session {
            notes.send_modify(|n| n.push(s.line()));
        }
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
            acked: &tracked.acked,
            ok_invoked: &tracked.ok_invoked,
            faults: &fault_records,
            lost: lost.as_ref(),
            aborted,
            watched_nodes: rig.is_some(),
            disk: disk.as_ref(),
            linear: &linear,
            session: session.as_ref(),
        };
        let verdict = judge::judge(&inputs);
        let hosts = match &rig {
            Some(rig) => rig.hosts().await.map(|h| {
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
                    .collect()
            }),
            None => None,
        };
        let target = results::TargetInfo {
            endpoints: rig.is_none().then_some(endpoints),
            hosts,
            generators,
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

/// The event line of the linearizability check.
fn linear_note(l: &crate::check::LinearSummary) -> String {
    use crate::check::linear::SummaryStatus;
    match l.status {
        SummaryStatus::Ok => format!(
            "linearizable: {} keys, {} ops checked in {:.1}s",
            l.keys, l.ops, l.elapsed_s
        ),
        SummaryStatus::Anomaly => format!(
            "NOT linearizable: {} of {} keys (see anomaly-*.svg)",
            l.anomalies.len(),
            l.keys
        ),
        SummaryStatus::Unknown => format!(
            "linearizability undecided: {}",
            l.reason
                .clone()
                .unwrap_or_else(|| format!("{} keys past the time limit", l.undecided))
        ),
        SummaryStatus::Skipped => format!(
            "linearizability not checked: {}",
            l.reason.as_deref().unwrap_or("skipped")
        ),
    }
}

/// What the drill learns from the stream of completed operations.
#[derive(Default)]
struct Tracked {
    /// Every write, for the lost-write check.
    writes: WriteTracker,
    /// Acknowledged writes as (invoke, complete) seconds, in completion order.
    acked: Vec<(f64, f64)>,
    /// Intended start times of the operations that completed ok, sorted (the actual start in
    /// closed loop): an open loop's intended starts are evenly spread whatever the scheduler
    /// did, so a window of them measures the store, not this machine's jitter.
    ok_invoked: Vec<f64>,
}

/// Folds the load's operation stream until it ends.
async fn track_ops(mut rx: mpsc::UnboundedReceiver<OpRecord>) -> Tracked {
    let secs = |us: u64| us as f64 / 1e6;
    let mut t = Tracked::default();
    while let Some(op) = rx.recv().await {
        if op.outcome == loadgen::outcome::Outcome::Ok {
            t.ok_invoked.push(secs(op.intended_us));
        }
        if let Some(w) = &op.write {
            if w.status == loadgen::history::WriteStatus::Acked {
                t.acked.push((secs(op.invoke_us), secs(op.complete_us)));
            }
            t.writes.observe(w);
        }
    }
    t.ok_invoked.sort_by(f64::total_cmp);
    t
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

/// Stops every node and proxy, then detaches the nodes' fault-injecting disks, so that the
/// cluster's temporary folder can be removed whole (a mount point still attached refuses its
/// removal, and empty node folders were left in the temp dir).
async fn stop_rig(rig: Arc<Rig>) {
    rig.nodes
        .lock()
        .await
        .shutdown(Duration::from_secs(5))
        .await;
    let disks = rig.disks.lock().await.take();
    if let Some(disks) = disks {
        disks.stop().await;
    }
}

/// How to start the nodes of a scenario.
#[derive(Debug, Clone)]
pub struct NodeStart {
    /// The raftdrill binary (reference nodes run as `raftdrill node`).
    pub exe: PathBuf,
    /// The etcd binary, for the etcd target (default: on PATH).
    pub etcd_bin: Option<PathBuf>,
    /// Reference nodes without link proxies.
    pub direct_links: bool,
    /// Reference nodes on hosts over SSH.
    pub hosts: Option<HostPlan>,
}

/// Starts the scenario's nodes on its target store, logs in `dir/nodes`, and waits for a
/// leader. A scenario with disk faults gets a fault-injecting filesystem under each node's
/// data first (exit 4 where FUSE cannot be mounted).
pub async fn start_nodes(
    scenario: &Scenario,
    start: &NodeStart,
    dir: &std::path::Path,
) -> Result<(Nodes, Option<Disks>), DrillError> {
    if let Some(plan) = &start.hosts {
        return Ok((start_on_hosts(scenario, plan, start, dir).await?, None));
    }
    let disk_root = if scenario.uses_disk_faults() {
        disks::check_available().map_err(DrillError::Disk)?;
        Some(Disks::root().map_err(DrillError::Disk)?)
    } else {
        None
    };
    Ok(match scenario.cluster.target {
        TargetKind::Reference => {
            let (nodes, disks) = start_reference(scenario, start, dir, disk_root).await?;
            (Nodes::Reference(nodes), disks)
        }
        TargetKind::Etcd => {
            let (etcd, disks) = start_etcd(scenario, start, dir, disk_root).await?;
            (Nodes::Etcd(etcd), disks)
        }
    })
}

/// Readies the hosts, starts one reference node on each, and waits for a leader. The node
/// logs are fetched into `dir/nodes` when the nodes stop.
async fn start_on_hosts(
    scenario: &Scenario,
    plan: &HostPlan,
    start: &NodeStart,
    dir: &std::path::Path,
) -> Result<Nodes, DrillError> {
    use crate::hosts::{HostCluster, HostOptions, HostsError};
    let token = crate::local_cluster::new_token()
        .map_err(|e| HostsError::Local(format!("a token for the run: {e}")))?;
    let opts = HostOptions {
        exe: start.exe.clone(),
        port: plan.port,
        node_flags: scenario.cluster.node_flags(),
        token,
        link_modes: on_hosts::link_modes(scenario),
        store: match scenario.cluster.target {
            TargetKind::Reference => crate::hosts::HostStore::Reference,
            TargetKind::Etcd => crate::hosts::HostStore::Etcd {
                heartbeat: scenario.cluster.heartbeat,
                // etcd takes one election timeout and spreads it over [1×, 2×] itself.
                election_timeout: scenario.cluster.election_timeout.map(|(min, _)| min),
            },
        },
    };
    let (file, _) = plan
        .file
        .split(&scenario.load_from)
        .map_err(HostsError::Local)?;
    let cluster = HostCluster::prepare(&file, opts).await?;
    let started = async {
        cluster.start_all().await?;
        cluster.wait_for_leader(Duration::from_secs(30)).await
    };
    if let Err(e) = started.await {
        let _ = cluster.fetch_logs(&dir.join("nodes")).await;
        for e in cluster.stop(Duration::from_secs(5)).await {
            tracing::warn!(error = %e, "a host was not cleaned; run `raftdrill hosts heal`");
        }
        return Err(e.into());
    }
    Ok(Nodes::Hosts(nodes::HostNodes {
        cluster: Arc::new(cluster),
        log_dir: dir.join("nodes"),
    }))
}

/// Starts the reference nodes behind one proxy per directed link (or wired directly), and
/// waits for a leader.
async fn start_reference(
    scenario: &Scenario,
    opts: &NodeStart,
    dir: &std::path::Path,
    disk_root: Option<tempfile::TempDir>,
) -> Result<(ReferenceNodes, Option<Disks>), DrillError> {
    let copts = ClusterOptions {
        nodes: scenario.cluster.nodes,
        base_port: None,
        data_dir: None,
        log_dir: Some(dir.join("nodes")),
        exe: opts.exe.clone(),
        node_flags: scenario.cluster.node_flags(),
        token: None,
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
    let disks = match disk_root {
        Some(root) => {
            let data: Vec<_> = cluster
                .nodes()
                .iter()
                .map(|(id, i)| (*id, i.data_dir.clone()))
                .collect();
            let d = Disks::mount(&opts.exe, root, &data, &dir.join("nodes"))
                .await
                .map_err(DrillError::Disk)?;
            Some(d)
        }
        None => None,
    };
    cluster.start_all()?;
    cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    Ok((ReferenceNodes { cluster, links }, disks))
}

/// Starts etcd members behind their peer proxies and waits for a leader.
async fn start_etcd(
    scenario: &Scenario,
    opts: &NodeStart,
    dir: &std::path::Path,
    disk_root: Option<tempfile::TempDir>,
) -> Result<(LocalEtcd, Option<Disks>), DrillError> {
    let c = &scenario.cluster;
    // With disk faults each member's WAL lives on a fault-injecting disk of its own, and its
    // database on the real one: faultfs cannot serve bbolt's shared memory map. The WAL is
    // what etcd syncs before it acknowledges, so a slow, stalled, failing or full WAL disk is
    // what its clients feel.
    let (wal_root, disks) = match disk_root {
        Some(root) => {
            let wal_root = root.path().join("etcd-wal");
            let homes: Vec<_> = (1..=c.nodes)
                .map(|id| (id, wal_root.join(format!("member-{id}"))))
                .collect();
            let d = Disks::mount(&opts.exe, root, &homes, &dir.join("nodes"))
                .await
                .map_err(DrillError::Disk)?;
            (Some(wal_root), Some(d))
        }
        None => (None, None),
    };
    let eopts = EtcdOptions {
        members: c.nodes,
        binary: opts.etcd_bin.clone(),
        data_dir: None,
        log_dir: Some(dir.join("nodes")),
        wal_root,
        heartbeat: c.heartbeat,
        // etcd takes one election timeout and spreads it over [1×, 2×] itself.
        election_timeout: c.election_timeout.map(|(min, _)| min),
        extra_flags: Vec::new(),
    };
    let mut etcd = LocalEtcd::start(&eopts).await?;
    etcd.wait_for_leader(ELECTION_DEADLINE).await?;
    Ok((etcd, disks))
}

/// `20261126T192346Z` for a results folder name.
pub fn folder_stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}
