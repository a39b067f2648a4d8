//! The conductor of one drill: start the cluster behind its link proxies, drive the load, fire
//! the faults, watch the cluster, then heal, check, judge and write the results folder.
//!
//! # Layout
//! - this file: [`Drill`] (prepare), [`RunOptions`], [`DrillError`], [`Phase`], how the
//!   scenario's nodes are started ([`nodes_spec`])
//! - [`run`](mod@run): the run itself, from the first operation to the verdict
//! - [`track`]: the operation stream, the phases and the checks' notes
//! - [`plan`]: nodes and load on hosts, checked before anything starts
//! - [`poller`]: `/status`, CPU and RSS of every node, 6–7 times a second
//! - [`read_back`]: the final reads after the load (lost writes, and the history's last reads)
//! - [`consistency`]: the linearizability check of the whole history
//! - [`judge`]: thresholds, recovery, the checks' outcomes and the verdict
//! - [`results`]: writes `summary.json`, `timeline.csv`, `nodes.csv`, `latency.hgrm`, then the
//!   pages and pictures through [`crate::report`]
//! - [`progress`]: the one-line-per-second progress on stderr
//! - [`disk_probe`]: fdatasync latency of the disk under the nodes, over the run
//! - [`remote_load`]: the load run by generators on hosts

pub mod consistency;
pub mod disk_probe;
pub mod judge;
pub mod plan;
pub mod poller;
pub mod progress;
pub mod read_back;
pub mod remote_load;
pub mod results;
pub mod run;
pub mod track;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::history::OpRecord;
use loadgen::{LoadReport, LoadRun, RunClock, Snapshot};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use self::plan::HostPlan;
use self::poller::ClusterView;
use crate::exit::Exit;
use crate::fault::{FaultRecord, Records, Rig};
use crate::nodes::{NodesSpec, Where};
use crate::proxy::ProxyError;
use crate::scenario::Scenario;

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
    /// The nodes did not start.
    #[error("the cluster did not start: {0}")]
    Nodes(#[from] crate::nodes::NodesError),
    /// A link proxy did not start.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The load could not be configured or run.
    #[error("the load could not run: {0}")]
    Load(#[from] loadgen::LoadError),
    /// The fault-injecting disks cannot be mounted here, or libfaketime is missing.
    #[error("{0}")]
    Disk(String),
    /// The load hosts could not be readied.
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
pub(crate) enum Load {
    Local(LoadRun),
    Remote(remote_load::RemoteLoad),
}

impl Load {
    pub(crate) fn clock(&self) -> Arc<RunClock> {
        match self {
            Load::Local(l) => l.clock(),
            Load::Remote(r) => r.clock(),
        }
    }

    pub(crate) fn snapshots(&self) -> watch::Receiver<Snapshot> {
        match self {
            Load::Local(l) => l.snapshots(),
            Load::Remote(r) => r.snapshots(),
        }
    }

    pub(crate) fn take_ops(&mut self) -> Option<mpsc::UnboundedReceiver<OpRecord>> {
        match self {
            Load::Local(l) => l.take_ops(),
            Load::Remote(r) => r.take_ops(),
        }
    }

    /// Runs it; for load on hosts, also each generator's own figures.
    pub(crate) async fn run(
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
    /// Every phase, in the order a run goes through them.
    pub const ALL: [Phase; 6] = [
        Phase::Starting,
        Phase::Warmup,
        Phase::Load,
        Phase::Healing,
        Phase::FinalChecks,
        Phase::Done,
    ];

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
    pub(crate) scenario: Scenario,
    pub(crate) opts: RunOptions,
    pub(crate) dir: PathBuf,
    pub(crate) started_at: std::time::SystemTime,
    pub(crate) rig: Option<Arc<Rig>>,
    pub(crate) endpoints: Vec<String>,
    pub(crate) load: Option<Load>,
    /// The load's clock and snapshots, kept apart so the live view can follow the run.
    pub(crate) clock: Arc<RunClock>,
    pub(crate) snapshots: watch::Receiver<Snapshot>,
    pub(crate) ops: Option<mpsc::UnboundedReceiver<OpRecord>>,
    pub(crate) views: watch::Sender<ClusterView>,
    pub(crate) phase: watch::Sender<Phase>,
    pub(crate) faults: Records,
    pub(crate) notes: watch::Sender<Vec<String>>,
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
        let nodes = nodes_spec(&scenario, &NodeStart::of(&opts), &dir)?
            .start()
            .await?;
        let endpoints = nodes.urls();
        let load = match load_hosts {
            Some(hosts) => {
                remote_load::RemoteLoad::new(&scenario, &endpoints, hosts, dir.clone(), opts.seed)
                    .map(Load::Remote)
                    .map_err(DrillError::LoadHosts)
            }
            None => LoadRun::new(scenario.load_config(endpoints.clone(), Some(&dir), opts.seed))
                .map(Load::Local)
                .map_err(DrillError::Load),
        };
        let load = match load {
            Ok(l) => l,
            Err(e) => {
                // Nodes on hosts outlive a dropped handle: stop them before giving up.
                nodes.shutdown(run::STOP_GRACE).await;
                return Err(e);
            }
        };
        let rig = Arc::new(Rig {
            nodes,
            clock: load.clock(),
        });
        let folder = (dir, started_at);
        Ok(Self::assemble(
            scenario,
            opts,
            folder,
            Some(rig),
            endpoints,
            load,
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
            scenario,
            opts,
            (dir, started_at),
            None,
            endpoints,
            load,
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

    /// The drill of `scenario` in `folder` (its path and start), with its load and, for a
    /// drill on nodes it started, the rig. The operation stream is always followed: a
    /// load-only run has no lost-write check, but the validity floor counts what the load
    /// carried out of its plan.
    fn assemble(
        scenario: Scenario,
        opts: RunOptions,
        folder: (PathBuf, std::time::SystemTime),
        rig: Option<Arc<Rig>>,
        endpoints: Vec<String>,
        mut load: Load,
    ) -> Drill {
        let ops = load.take_ops();
        Drill {
            scenario,
            opts,
            dir: folder.0,
            started_at: folder.1,
            rig,
            endpoints,
            clock: load.clock(),
            snapshots: load.snapshots(),
            load: Some(load),
            ops,
            views: watch::channel(ClusterView::default()).0,
            phase: watch::channel(Phase::Starting).0,
            faults: Records::default(),
            notes: watch::channel(Vec::new()).0,
        }
    }

    /// The channels a live view reads.
    pub fn watch(&self) -> DrillWatch {
        DrillWatch {
            snapshots: self.snapshots.clone(),
            cluster: self.views.subscribe(),
            phase: self.phase.subscribe(),
            faults: self.faults.clone(),
            clock: self.clock.clone(),
            notes: self.notes.subscribe(),
        }
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
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
    /// Nodes on hosts over SSH.
    pub hosts: Option<HostPlan>,
}

impl NodeStart {
    /// The node start of a drill's options.
    pub fn of(opts: &RunOptions) -> Self {
        NodeStart {
            exe: opts.exe.clone(),
            etcd_bin: opts.etcd_bin.clone(),
            direct_links: opts.direct_links,
            hosts: opts.hosts.clone(),
        }
    }
}

/// How the scenario's nodes start: its store, on this machine (behind link proxies unless
/// wired directly, on fault-injecting disks when a fault needs them: exit 4 where FUSE cannot
/// be mounted) or on hosts; logs in `dir/nodes`.
pub fn nodes_spec(
    scenario: &Scenario,
    start: &NodeStart,
    dir: &std::path::Path,
) -> Result<NodesSpec, DrillError> {
    let at = match &start.hosts {
        Some(plan) => {
            let (file, _) = plan
                .file
                .split(&scenario.load_from)
                .map_err(DrillError::LoadHosts)?;
            Where::Hosts {
                file,
                port: plan.port,
                link_modes: crate::fault::support::link_modes(scenario),
                clocks: scenario.uses_clock_faults(),
            }
        }
        None => {
            let disks = scenario.uses_disk_faults();
            if disks {
                crate::placement::disks::check_available().map_err(DrillError::Disk)?;
            }
            let clocks = scenario.uses_clock_faults();
            if clocks {
                crate::placement::clock::libfaketime().map_err(DrillError::Disk)?;
            }
            Where::Local {
                base_port: None,
                data_dir: None,
                link_proxies: !start.direct_links,
                disks,
                clocks,
                token: None,
            }
        }
    };
    Ok(NodesSpec {
        cluster: scenario.cluster.clone(),
        at,
        exe: start.exe.clone(),
        etcd_bin: start.etcd_bin.clone(),
        log_dir: Some(dir.join("nodes")),
    })
}

/// `20261126T192346Z` for a results folder name.
pub fn folder_stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}
