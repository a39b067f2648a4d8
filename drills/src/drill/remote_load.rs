//! The load of a drill run by generators on hosts (`[load] from`), merged here into the one
//! run the drill judges: the same snapshots on a watch channel, the same stream of completed
//! operations (for the lost-write check and the recovery figures) and the same report as a
//! load on this machine.
//!
//! Every generator is told one moment to start its clock (this machine's start moment moved
//! to the host's clock by its measured offset), so their seconds line up. Each reports its
//! clock's origin; its operations' times are moved onto this machine's clock by the
//! difference. A second is published once every generator still running has sent it. A
//! generator that ends without its report makes the run fail (exit 4): what it measured is
//! not known, so the run is not judged on part of its load.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use loadgen::history::OpRecord;
use loadgen::stream::{EndWire, Interval, Line, Merger, merged_report};
use loadgen::target::TargetKind;
use loadgen::{LoadReport, LoadSpec, RunClock, Snapshot, unix_us_now};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::results::GeneratorInfo;
use crate::hosts::LoadHosts;
use crate::scenario::Scenario;

/// How long before their start the generators are launched: SSH, the process, the pool.
const LEAD: Duration = Duration::from_secs(3);

/// The drill's load, run on hosts.
pub struct RemoteLoad {
    hosts: Arc<LoadHosts>,
    /// Per generator: its share of the load.
    shares: Vec<LoadSpec>,
    /// What every generator drives: the endpoints and the store behind them.
    endpoints: Vec<String>,
    target: TargetKind,
    /// The run's seed; each generator's own comes from it ([`LoadSpec::generator_seed`]).
    seed: u64,
    /// How long a generator may take at the most: the run, its start, its timeouts.
    limit: Duration,
    clock: Arc<RunClock>,
    snapshots: watch::Sender<Snapshot>,
    ops_tx: mpsc::UnboundedSender<OpRecord>,
    ops_rx: Option<mpsc::UnboundedReceiver<OpRecord>>,
    dir: PathBuf,
    /// The generators record their histories, to be merged for the consistency checks.
    history: bool,
}

/// The load on hosts failed.
#[derive(Debug, thiserror::Error)]
#[error("the load on host {host} failed: {detail}")]
pub struct RemoteLoadError {
    /// The host.
    pub host: String,
    /// What happened.
    pub detail: String,
}

/// The generators while they run.
struct Generators {
    /// Each one's stdin: closing it is its stop.
    stdins: Vec<Option<tokio::process::ChildStdin>>,
    children: Vec<Child>,
    /// The last of what each wrote to stderr.
    stderrs: Vec<JoinHandle<String>>,
}

/// What the generators' streams brought, merged as it comes.
struct Gathered {
    merger: Merger,
    /// Each one's end report.
    ends: Vec<Option<EndWire>>,
    /// How far each one's clock origin stands from the run's start, µs.
    shift_us: Vec<i64>,
    /// What went wrong with each, first thing first.
    bad: Vec<Option<String>>,
}

impl RemoteLoad {
    /// The load of `scenario` against `endpoints`, on `hosts`; the merged interval log goes
    /// to `dir/latency.hlog`, each generator's own to `dir/load/<host>/latency.hlog`.
    pub fn new(
        scenario: &Scenario,
        endpoints: &[String],
        hosts: Arc<LoadHosts>,
        dir: PathBuf,
        seed: u64,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let n = hosts.hosts().len();
        let spec = &scenario.load;
        let shares = (0..n)
            .map(|g| spec.share(g, n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        Ok(Self {
            hosts,
            shares,
            endpoints: endpoints.to_vec(),
            target: scenario.cluster.target,
            seed,
            limit: LEAD + spec.duration + spec.timeout * 2 + Duration::from_secs(30),
            clock: Arc::new(RunClock::new()),
            snapshots: watch::channel(Snapshot::default()).0,
            ops_tx,
            ops_rx: Some(ops_rx),
            dir,
            history: spec.history,
        })
    }

    /// The run's clock on this machine: it starts at the moment the generators were given.
    pub fn clock(&self) -> Arc<RunClock> {
        self.clock.clone()
    }

    /// The merged once-a-second snapshots.
    pub fn snapshots(&self) -> watch::Receiver<Snapshot> {
        self.snapshots.subscribe()
    }

    /// Every generator's completed operations, on this machine's clock (once).
    pub fn take_ops(&mut self) -> Option<mpsc::UnboundedReceiver<OpRecord>> {
        self.ops_rx.take()
    }

    /// Runs every generator to its end, or until `stop` (their stdin closes and they end
    /// early, reporting what they measured). Returns the merged report and, per generator,
    /// its host and its own counts.
    pub async fn run(
        self,
        stop: CancellationToken,
    ) -> Result<(LoadReport, Vec<GeneratorInfo>), RemoteLoadError> {
        let start_unix_us = unix_us_now() + LEAD.as_micros() as u64;
        let start = Instant::now() + LEAD;
        let (tx, events) = mpsc::unbounded_channel::<(usize, Event)>();
        let mut generators = self.launch(start_unix_us, tx).await?;
        let clock = self.clock.clone();
        let starter = tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            clock.start_at(start, start_unix_us);
        });
        let hlog = self.dir.join("latency.hlog");
        let (hlog_tx, hlog_task) =
            match loadgen::output::hlog::spawn_writer(&hlog, self.clock.clone()) {
                Ok((tx, task)) => (Some(tx), Some(task)),
                Err(e) => {
                    tracing::warn!(error = %e, "no merged interval log");
                    (None, None)
                }
            };
        let publish = |i: Interval| {
            self.snapshots.send_replace(i.snapshot.clone());
            if let Some(tx) = &hlog_tx {
                let _ = tx.send(i);
            }
        };
        let gathered = self
            .gather(events, &mut generators.stdins, start_unix_us, stop, publish)
            .await;
        tracing::debug!("the generators' streams ended");
        starter.abort();
        generators.stop().await;
        tracing::debug!("the generators exited");
        let Gathered {
            merger,
            ends,
            shift_us,
            bad,
        } = gathered;
        let (totals, record) = merger.finish();
        // Readers wait for the last snapshot; a run whose generators broke off has it only now.
        if let Some(last) = record.last()
            && !self.snapshots.borrow().last
        {
            self.snapshots.send_replace(last.clone());
        }
        drop(hlog_tx);
        if let Some(task) = hlog_task
            && let Ok(Err(e)) = task.await
        {
            tracing::warn!(error = %e, "the merged interval log is incomplete");
        }
        self.fetch_files(&shift_us).await;
        let errs = generators.stderr().await;
        let ends = self.judge_ends(ends, &bad, &errs)?;
        let generators = self.infos(&ends);
        Ok((merged_report(&ends, totals, record), generators))
    }

    /// Starts every generator with its share, all told to start their clocks at
    /// `start_unix_us` (moved to each host's clock); their lines go to `tx`.
    async fn launch(
        &self,
        start_unix_us: u64,
        tx: mpsc::UnboundedSender<(usize, Event)>,
    ) -> Result<Generators, RemoteLoadError> {
        let hosts = self.hosts.hosts();
        let mut running = Generators {
            stdins: Vec::new(),
            children: Vec::new(),
            stderrs: Vec::new(),
        };
        for (g, share) in self.shares.iter().enumerate() {
            let fail = |detail: String| RemoteLoadError {
                host: hosts[g].spec.name.clone(),
                detail,
            };
            let host_start = start_unix_us as f64 + hosts[g].clock_offset_s * 1e6;
            let args = [
                "--endpoints".to_string(),
                self.endpoints.join(","),
                "--target".into(),
                self.target.as_str().into(),
                "--seed".into(),
                LoadSpec::generator_seed(self.seed, g).to_string(),
                "--start-at-unix-us".into(),
                format!("{}", host_start as u64),
            ];
            let mut child = self
                .hosts
                .start(g, &args, share)
                .await
                .map_err(|e| fail(e.to_string()))?;
            running.stdins.push(child.stdin.take());
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| fail("no stdout".into()))?;
            let stderr = child
                .stderr
                .take()
                .ok_or_else(|| fail("no stderr".into()))?;
            tokio::spawn(read_lines(g, stdout, tx.clone()));
            running.stderrs.push(tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.take(16 * 1024).read_to_string(&mut text).await;
                text
            }));
            running.children.push(child);
        }
        Ok(running)
    }

    /// Reads every generator's lines until all have closed (or the time is up), merging
    /// their seconds into ones `publish`ed as they complete; `stop` closes their stdins.
    async fn gather(
        &self,
        mut events: mpsc::UnboundedReceiver<(usize, Event)>,
        stdins: &mut [Option<tokio::process::ChildStdin>],
        start_unix_us: u64,
        stop: CancellationToken,
        publish: impl Fn(Interval),
    ) -> Gathered {
        let n = stdins.len();
        let mut gathered = Gathered {
            merger: Merger::new(n),
            ends: vec![None; n],
            shift_us: vec![0; n],
            bad: vec![None; n],
        };
        let mut open = n;
        let deadline = tokio::time::sleep(self.limit);
        tokio::pin!(deadline);
        let mut stopping = false;
        while open > 0 {
            let (g, event) = tokio::select! {
                _ = stop.cancelled(), if !stopping => {
                    // Closing a generator's stdin is its stop.
                    stopping = true;
                    stdins.iter_mut().for_each(|s| drop(s.take()));
                    continue;
                }
                _ = &mut deadline => {
                    gathered.time_up(self.limit);
                    break;
                }
                e = events.recv() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            if matches!(event, Event::Closed) {
                open -= 1;
            }
            if matches!(event, Event::Line(Line::End(_))) {
                // Its stdin closing lets it exit: it reads stdin until then.
                drop(stdins[g].take());
            }
            let offset_s = self.hosts.hosts()[g].clock_offset_s;
            for i in gathered.take(g, event, offset_s, start_unix_us, &self.ops_tx) {
                publish(i);
            }
        }
        gathered
    }

    /// Fetches every generator's interval log and, when they kept them, merges their
    /// histories; what cannot be had is said, not fatal.
    async fn fetch_files(&self, shift_us: &[i64]) {
        for (g, h) in self.hosts.hosts().iter().enumerate() {
            let to = self
                .dir
                .join("load")
                .join(&h.spec.name)
                .join("latency.hlog");
            if let Err(e) = self.hosts.fetch(g, "latency.hlog", &to).await {
                tracing::warn!(host = %h.spec.name, error = %e, "its interval log was not fetched");
            }
        }
        tracing::debug!("the interval logs were fetched");
        if self.history {
            match self.merge_histories(shift_us).await {
                Ok(ops) => tracing::info!(ops, "the generators' histories were merged"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "the generators' histories were not merged: no linearizability check"
                ),
            }
        }
    }

    /// Every generator's end report; the first generator without one (or that sent
    /// something wrong) fails the run, with the last line it wrote to stderr.
    fn judge_ends(
        &self,
        ends: Vec<Option<EndWire>>,
        bad: &[Option<String>],
        errs: &[String],
    ) -> Result<Vec<EndWire>, RemoteLoadError> {
        for (g, end) in ends.iter().enumerate() {
            let why = match (&bad[g], end) {
                (Some(b), _) => b.clone(),
                (None, None) => "it ended without its report".into(),
                (None, Some(_)) => continue,
            };
            let said = errs[g].trim().lines().last().unwrap_or("").to_string();
            return Err(RemoteLoadError {
                host: self.hosts.hosts()[g].spec.name.clone(),
                detail: if said.is_empty() {
                    why
                } else {
                    format!("{why} ({said})")
                },
            });
        }
        Ok(ends.into_iter().flatten().collect())
    }

    /// `load.generators` of summary.json: each generator's host, clock, share and counts.
    fn infos(&self, ends: &[EndWire]) -> Vec<GeneratorInfo> {
        self.hosts
            .hosts()
            .iter()
            .zip(ends)
            .zip(&self.shares)
            .map(|((h, e), share)| GeneratorInfo {
                host: h.spec.name.clone(),
                addr: h.spec.addr.clone(),
                clock_offset_ms: h.clock_offset_s * 1000.0,
                clock_rtt_ms: h.clock_rtt_s * 1000.0,
                share: share.model.level(),
                ops: e.totals.ops,
                ok: e.totals.ok,
                dropped: e.dropped,
            })
            .collect()
    }
}

impl Generators {
    /// Closes every stdin and waits for each generator to exit (killing one that does not
    /// within 5 s).
    async fn stop(&mut self) {
        self.stdins.clear();
        for c in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(5), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
    }

    /// What each wrote to stderr.
    async fn stderr(self) -> Vec<String> {
        let mut errs = Vec::new();
        for h in self.stderrs {
            errs.push(h.await.unwrap_or_default());
        }
        errs
    }
}

impl Gathered {
    /// Takes generator `g`'s `event` (its host's clock `offset_s` from this machine's, the
    /// run started at `start_unix_us`): operations go on to `ops`; returns the seconds it
    /// completed.
    fn take(
        &mut self,
        g: usize,
        event: Event,
        offset_s: f64,
        start_unix_us: u64,
        ops: &mpsc::UnboundedSender<OpRecord>,
    ) -> Vec<Interval> {
        match event {
            Event::Line(Line::Origin { unix_us }) => {
                let on_ours = unix_us as f64 - offset_s * 1e6;
                self.shift_us[g] = (on_ours - start_unix_us as f64) as i64;
                self.merger.set_shift(g, self.shift_us[g] as f64 / 1e6);
                Vec::new()
            }
            Event::Line(Line::Op(op)) => {
                let _ = ops.send(op.record(self.shift_us[g]));
                Vec::new()
            }
            Event::Line(Line::Interval(w)) => match self.merger.push(g, &w) {
                Ok(p) => p,
                Err(e) => {
                    self.note(g, e.to_string());
                    Vec::new()
                }
            },
            Event::Line(Line::End(e)) => {
                self.ends[g] = Some(e);
                Vec::new()
            }
            Event::Garbled(line) => {
                self.note(g, format!("a line it sent: {line}"));
                Vec::new()
            }
            Event::Closed => self.merger.end(g),
        }
    }

    /// Notes what went wrong with generator `g`, unless something did before.
    fn note(&mut self, g: usize, what: String) {
        self.bad[g] = self.bad[g].take().or(Some(what));
    }

    /// Every generator without its end report by `limit` failed.
    fn time_up(&mut self, limit: Duration) {
        for (g, b) in self.bad.iter_mut().enumerate() {
            if self.ends[g].is_none() {
                *b = Some(format!("no end within {limit:?}"));
            }
        }
    }
}

impl RemoteLoad {
    /// Fetches every generator's `history.jsonl` (into `load/<host>/`) and writes their merge
    /// to the run's own `history.jsonl`, on this machine's clock, each operation's interval
    /// widened by its host's clock uncertainty (half the round trip its offset was measured
    /// in, plus [`CLOCK_MARGIN`]); see [`loadgen::history::merge_generators`]. Nothing is
    /// written unless every part was read. Returns the number of operations.
    async fn merge_histories(&self, shift_us: &[i64]) -> Result<usize, String> {
        let mut parts = Vec::new();
        for (g, h) in self.hosts.hosts().iter().enumerate() {
            let to = self
                .dir
                .join("load")
                .join(&h.spec.name)
                .join("history.jsonl");
            self.hosts
                .fetch(g, "history.jsonl", &to)
                .await
                .map_err(|e| e.to_string())?;
            let records = loadgen::history::read_history(&to).map_err(|e| e.to_string())?;
            parts.push(loadgen::history::GeneratorHistory {
                records,
                shift_us: shift_us[g],
                slack_us: (h.clock_rtt_s / 2.0 * 1e6) as u64 + CLOCK_MARGIN.as_micros() as u64,
            });
        }
        let merged = loadgen::history::merge_generators(parts);
        loadgen::history::write_history(&self.dir.join("history.jsonl"), &merged)
            .map_err(|e| e.to_string())?;
        Ok(merged.len())
    }
}

/// Added to every load host's clock uncertainty when histories are merged: what the clocks
/// may drift apart during a run after their offsets were measured.
pub const CLOCK_MARGIN: Duration = Duration::from_millis(1);

/// What a generator's session brought.
enum Event {
    Line(Line),
    /// A line that is not a stream line.
    Garbled(String),
    /// Its stdout closed.
    Closed,
}

async fn read_lines(
    g: usize,
    stdout: tokio::process::ChildStdout,
    tx: mpsc::UnboundedSender<(usize, Event)>,
) {
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let event = match serde_json::from_str::<Line>(&line) {
            Ok(l) => Event::Line(l),
            Err(_) => Event::Garbled(line.chars().take(120).collect()),
        };
        if tx.send((g, event)).is_err() {
            return;
        }
    }
    let _ = tx.send((g, Event::Closed));
}
