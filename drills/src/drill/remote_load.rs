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
use loadgen::stream::{EndWire, Line, Merger, merged_report};
use loadgen::{LoadModel, LoadReport, RunClock, Snapshot, unix_us_now};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::sync::{mpsc, watch};
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
    /// Per generator: `raftdrill load` flags (without the start moment) and its share.
    plans: Vec<(Vec<String>, f64)>,
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

/// The flags of generator `g` of `n` and its share (ops/s or users): the scenario's load
/// at rate / n (users split as evenly as whole users allow), its own seed so that no two
/// generators write the same value.
pub fn generator_flags(
    scenario: &Scenario,
    endpoints: &[String],
    g: usize,
    n: usize,
    seed: u64,
) -> Result<(Vec<String>, f64), String> {
    let l = &scenario.load;
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut f: Vec<String> = vec![
        "--endpoints".into(),
        endpoints.join(","),
        "--workload".into(),
        l.workload.as_str().into(),
        "--duration".into(),
        ms(scenario.duration),
        "--warmup".into(),
        ms(l.warmup),
        "--keys".into(),
        l.keys.to_string(),
        "--value-size".into(),
        l.value_size.to_string(),
        "--consistency".into(),
        l.consistency.as_str().into(),
        "--timeout".into(),
        ms(l.timeout),
        "--engine".into(),
        l.engine.as_str().into(),
        "--seed".into(),
        seed.wrapping_mul(1_000_003)
            .wrapping_add(g as u64 + 1)
            .to_string(),
        "--out".into(),
        "load".into(),
        "--no-tui".into(),
        "--stream".into(),
    ];
    if l.history {
        f.push("--history".into());
    }
    if let Some(d) = l.distribution {
        f.extend(["--distribution".into(), d.as_str().into()]);
    }
    let share = match &l.model {
        LoadModel::Open {
            rate,
            max_in_flight,
        } => {
            let r = rate / n as f64;
            f.extend(["--rate".into(), format!("{r}")]);
            f.extend([
                "--max-in-flight".into(),
                max_in_flight.div_ceil(n).to_string(),
            ]);
            r
        }
        LoadModel::Closed { users, think } => {
            let u = users / n + usize::from(g < users % n);
            if u == 0 {
                return Err(format!(
                    "{users} users cannot be shared by {n} load hosts (at least one each)"
                ));
            }
            f.extend(["--users".into(), u.to_string()]);
            if let Some(t) = think {
                f.extend(["--think-time".into(), ms(*t)]);
            }
            u as f64
        }
    };
    Ok((f, share))
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
        let plans = (0..n)
            .map(|g| generator_flags(scenario, endpoints, g, n, seed))
            .collect::<Result<Vec<_>, _>>()?;
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        Ok(Self {
            hosts,
            plans,
            limit: LEAD + scenario.duration + scenario.load.timeout * 2 + Duration::from_secs(30),
            clock: Arc::new(RunClock::new()),
            snapshots: watch::channel(Snapshot::default()).0,
            ops_tx,
            ops_rx: Some(ops_rx),
            dir,
            history: scenario.load.history,
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
        let hosts = self.hosts.hosts();
        let n = hosts.len();
        let start_unix_us = unix_us_now() + LEAD.as_micros() as u64;
        let start = Instant::now() + LEAD;
        let (tx, mut events) = mpsc::unbounded_channel::<(usize, Event)>();
        let mut stdins = Vec::new();
        let mut children = Vec::new();
        let mut stderrs = Vec::new();
        for (g, (flags, _)) in self.plans.iter().enumerate() {
            let host_start = start_unix_us as f64 + hosts[g].clock_offset_s * 1e6;
            let mut flags = flags.clone();
            flags.extend([
                "--start-at-unix-us".into(),
                format!("{}", host_start as u64),
            ]);
            let fail = |detail: String| RemoteLoadError {
                host: hosts[g].spec.name.clone(),
                detail,
            };
            let mut child = self
                .hosts
                .spawn(g, &flags)
                .map_err(|e| fail(e.to_string()))?;
            stdins.push(child.stdin.take());
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| fail("no stdout".into()))?;
            let stderr = child
                .stderr
                .take()
                .ok_or_else(|| fail("no stderr".into()))?;
            tokio::spawn(read_lines(g, stdout, tx.clone()));
            stderrs.push(tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.take(16 * 1024).read_to_string(&mut text).await;
                text
            }));
            children.push(child);
        }
        drop(tx);
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

        let mut merger = Merger::new(n);
        let mut ends: Vec<Option<EndWire>> = vec![None; n];
        let mut shift_us = vec![0i64; n];
        let mut bad: Vec<Option<String>> = vec![None; n];
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
                    for (g, b) in bad.iter_mut().enumerate() {
                        if ends[g].is_none() {
                            *b = Some(format!("no end within {:?}", self.limit));
                        }
                    }
                    break;
                }
                e = events.recv() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            let published = match event {
                Event::Line(Line::Origin { unix_us }) => {
                    let on_ours = unix_us as f64 - hosts[g].clock_offset_s * 1e6;
                    shift_us[g] = (on_ours - start_unix_us as f64) as i64;
                    merger.set_shift(g, shift_us[g] as f64 / 1e6);
                    Vec::new()
                }
                Event::Line(Line::Op(op)) => {
                    let _ = self.ops_tx.send(op.record(shift_us[g]));
                    Vec::new()
                }
                Event::Line(Line::Interval(w)) => match merger.push(g, &w) {
                    Ok(p) => p,
                    Err(e) => {
                        bad[g] = bad[g].take().or(Some(e.to_string()));
                        Vec::new()
                    }
                },
                Event::Line(Line::End(e)) => {
                    ends[g] = Some(e);
                    // Its stdin closing lets it exit: it reads stdin until then.
                    drop(stdins[g].take());
                    Vec::new()
                }
                Event::Garbled(line) => {
                    bad[g] = bad[g].take().or(Some(format!("a line it sent: {line}")));
                    Vec::new()
                }
                Event::Closed => {
                    open -= 1;
                    merger.end(g)
                }
            };
            for i in published {
                self.snapshots.send_replace(i.snapshot.clone());
                if let Some(tx) = &hlog_tx {
                    let _ = tx.send(i);
                }
            }
        }
        tracing::debug!("the generators' streams ended");
        drop(stdins);
        starter.abort();
        for mut c in children {
            if tokio::time::timeout(Duration::from_secs(5), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
        tracing::debug!("the generators exited");
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
        for (g, h) in hosts.iter().enumerate() {
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
            match self.merge_histories(&shift_us).await {
                Ok(ops) => tracing::info!(ops, "the generators' histories were merged"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "the generators' histories were not merged: no linearizability check"
                ),
            }
        }
        let mut errs = Vec::new();
        for h in stderrs {
            errs.push(h.await.unwrap_or_default());
        }
        for (g, end) in ends.iter().enumerate() {
            let why = match (&bad[g], end) {
                (Some(b), _) => b.clone(),
                (None, None) => "it ended without its report".into(),
                (None, Some(_)) => continue,
            };
            let said = errs[g].trim().lines().last().unwrap_or("").to_string();
            return Err(RemoteLoadError {
                host: hosts[g].spec.name.clone(),
                detail: if said.is_empty() {
                    why
                } else {
                    format!("{why} ({said})")
                },
            });
        }
        let ends: Vec<EndWire> = ends.into_iter().flatten().collect();
        let generators = hosts
            .iter()
            .zip(&ends)
            .zip(&self.plans)
            .map(|((h, e), (_, share))| GeneratorInfo {
                host: h.spec.name.clone(),
                addr: h.spec.addr.clone(),
                clock_offset_ms: h.clock_offset_s * 1000.0,
                clock_rtt_ms: h.clock_rtt_s * 1000.0,
                share: *share,
                ops: e.totals.ops,
                ok: e.totals.ok,
                dropped: e.dropped,
            })
            .collect();
        Ok((merged_report(&ends, totals, record), generators))
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
