//! CPU and memory of the nodes on hosts, sampled over one SSH session per host: the controller
//! sends a line every [`EVERY`], the host answers with its clock, the node's pid (from its pid
//! file) and the fields of `/proc/<pid>/stat` after the command name. CPU is the node's
//! user + system ticks between two answers for the same pid over the host's own clock between
//! them, so neither the SSH round trip nor the controller's scheduling enters it. The session's
//! shell reads stdin, so it ends when the controller closes it or goes away; the controller
//! closes it rather than kill it (see [`CpuWatch::stop`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use target_cluster::typ::NodeId;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ssh::{Ssh, quote};

/// How often each host is asked.
pub const EVERY: Duration = Duration::from_millis(500);
/// A sample older than this is not shown (the host stopped answering).
const STALE: Duration = Duration::from_secs(3);

/// The last sample of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeSample {
    /// Its pid on its host.
    pub pid: u32,
    /// CPU since the sample before, % of one core (none for the first sample of a pid).
    pub cpu_pct: Option<f64>,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
}

/// One answer of a host, as read.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Answer {
    /// The host's clock, seconds.
    at: f64,
    pid: u32,
    /// utime + stime, ticks.
    ticks: u64,
    rss_pages: u64,
}

/// Reads an answer: `<unix seconds> <pid> <stat fields after the command>`; `None` when the
/// node has no live process (no pid file, or its process is gone).
fn parse(line: &str) -> Option<Answer> {
    let mut f = line.split_whitespace();
    let at = f.next()?.parse().ok()?;
    let pid = f.next()?.parse().ok()?;
    let rest: Vec<&str> = f.collect();
    // After the command: state(0) ... utime(11) stime(12) ... rss(21).
    if rest.first() == Some(&"Z") {
        return None;
    }
    let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(Answer {
        at,
        pid,
        ticks,
        rss_pages: rest.get(21)?.parse().ok()?,
    })
}

/// The CPU % between two answers for the same process.
fn cpu_pct(prev: &Answer, now: &Answer, hz: f64) -> Option<f64> {
    let secs = now.at - prev.at;
    (prev.pid == now.pid && secs > 1e-3)
        .then(|| now.ticks.saturating_sub(prev.ticks) as f64 / hz / secs * 100.0)
}

type Samples = Arc<Mutex<BTreeMap<NodeId, (NodeSample, Instant)>>>;

/// Per node, since when its host has answered that it has no live process (cleared by an
/// answer with one).
/// Per node with no live process: since when its host has said so, and when it last did.
type Absent = Arc<Mutex<BTreeMap<NodeId, (Instant, Instant)>>>;

/// The samplers of every host.
pub struct CpuWatch {
    samples: Samples,
    absent: Absent,
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

impl CpuWatch {
    /// Starts one sampler per node: `(id, ssh, pid file)`.
    pub fn start(nodes: Vec<(NodeId, Ssh, String)>) -> Self {
        let samples: Samples = Arc::default();
        let absent: Absent = Arc::default();
        let stop = CancellationToken::new();
        let tasks = nodes
            .into_iter()
            .map(|(id, ssh, pid_file)| {
                let seen = Seen {
                    samples: samples.clone(),
                    absent: absent.clone(),
                };
                tokio::spawn(sample_host(id, ssh, pid_file, seen, stop.clone()))
            })
            .collect();
        Self {
            samples,
            absent,
            tasks,
            stop,
        }
    }

    /// Since when node `id`'s host has answered that the node has no live process, and when
    /// it last did, if it has (the node's exit seen from its host). The last answer tells a
    /// node that died at once after a restart from one its host has not looked at since.
    pub fn absent(&self, id: NodeId) -> Option<(Instant, Instant)> {
        let absent = self.absent.lock().unwrap_or_else(|e| e.into_inner());
        absent.get(&id).copied()
    }

    /// Node `id`'s last sample, unless it is stale.
    pub fn sample(&self, id: NodeId) -> Option<NodeSample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples
            .get(&id)
            .filter(|(_, at)| at.elapsed() < STALE)
            .map(|(s, _)| *s)
    }

    /// Stops every sampler: each closes its session's stdin and waits for the remote shell to
    /// end by itself (a shell killed while its login scripts run can leave their locks
    /// behind on the host), killed only after `END`.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for CpuWatch {
    /// Without [`CpuWatch::stop`]: the samplers are told to end and left to do so.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How long a sampler's session gets to end once its stdin is closed.
const END: Duration = Duration::from_secs(5);

/// Asks one host every [`EVERY`] until `stop` or the session breaks; then ends its session
/// by closing stdin, and kills it only if it is still there after [`END`].
/// What a sampler records: the samples, and when a node was first seen without a process.
struct Seen {
    samples: Samples,
    absent: Absent,
}

async fn sample_host(id: NodeId, ssh: Ssh, pid_file: String, seen: Seen, stop: CancellationToken) {
    let pid_file = quote(&pid_file);
    let line = format!(
        "echo \"$(getconf CLK_TCK) $(getconf PAGESIZE)\"; while read -r _; do p=\"$(cat {pid_file} 2>/dev/null)\"; \
         s=\"$(cat /proc/$p/stat 2>/dev/null)\"; echo \"$(date +%s.%N) $p ${{s##*) }}\"; done"
    );
    let Ok(mut child) = ssh.spawn(&line) else {
        tracing::warn!(node = id, "cannot sample the node's CPU on its host");
        return;
    };
    if let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) {
        tokio::select! {
            () = ask(id, stdin, stdout, &seen) => {}
            () = stop.cancelled() => {}
        }
    }
    seen.samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    // stdin is closed (dropped with `ask`): the remote loop reads its end and exits.
    if tokio::time::timeout(END, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
    tracing::debug!(node = id, "the CPU sampler of the node's host ended");
}

/// The conversation with one host's sampler: a line out, an answer back, every [`EVERY`].
async fn ask(
    id: NodeId,
    mut stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    seen: &Seen,
) {
    let mut lines = BufReader::new(stdout).lines();
    // The host's login scripts run first; give them a while.
    let first = match tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await {
        Ok(Ok(Some(l))) => l,
        _ => {
            tracing::warn!(node = id, "the node's host did not start its CPU sampler");
            return;
        }
    };
    let mut units = first.split_whitespace().map(|v| v.parse::<u64>().ok());
    let (Some(Some(hz)), Some(Some(page))) = (units.next(), units.next()) else {
        tracing::warn!(node = id, said = %first, "no clock tick or page size from the node's host");
        return;
    };
    let hz = hz.max(1) as f64;
    let mut prev: Option<Answer> = None;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stdin.write_all(b"t\n").await.is_err() {
            return;
        }
        let Ok(Ok(Some(l))) = tokio::time::timeout(STALE, lines.next_line()).await else {
            return;
        };
        let Some(now) = parse(&l) else {
            // No live process: no figure at all, not the last one of a process now gone.
            prev = None;
            seen.samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            let now = Instant::now();
            seen.absent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id)
                .and_modify(|(_, last)| *last = now)
                .or_insert((now, now));
            continue;
        };
        seen.absent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let sample = NodeSample {
            pid: now.pid,
            cpu_pct: prev.as_ref().and_then(|p| cpu_pct(p, &now, hz)),
            rss_bytes: now.rss_pages * page,
        };
        prev = Some(now);
        seen.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (sample, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A /proc/<pid>/stat tail after "(raftdrill) ": state S, utime 150, stime 50, rss 2560.
    const STAT: &str = "S 1 2 2 0 -1 4194560 3000 0 0 0 150 50 0 0 20 0 9 0 4242 123456789 2560 18446744073709551615";

    #[test]
    fn answers_are_read_and_cpu_is_ticks_over_the_hosts_clock() {
        let a = parse(&format!("1000.0 77 {STAT}")).unwrap();
        assert_eq!((a.pid, a.ticks, a.rss_pages), (77, 200, 2560));
        let b = parse(&format!(
            "1000.5 77 {}",
            STAT.replace(" 150 50 ", " 170 55 ")
        ))
        .unwrap();
        // 25 ticks at 100 Hz in 0.5 s: half a core.
        assert_eq!(cpu_pct(&a, &b, 100.0), Some(50.0));
        // Another process (a restart): no CPU figure across it.
        let c = parse(&format!("1001.0 78 {STAT}")).unwrap();
        assert_eq!(cpu_pct(&b, &c, 100.0), None);
        // No pid file, a dead pid, a zombie: no sample.
        assert_eq!(parse("1000.0  "), None);
        assert_eq!(parse("1000.0 77 "), None);
        assert_eq!(
            parse(&format!("1000.0 77 {}", STAT.replacen('S', "Z", 1))),
            None
        );
    }
}
