//! The linearizability check: is the whole recorded history explained by one register per key
//! on which every operation took effect at one instant between its call and its return?
//!
//! A store can lose no acknowledged write and still serve a stale read, or let a swap win
//! against an old value; this check catches those, as Knossos (Jepsen) and porcupine (etcd's
//! robustness tests) do. It is Wing & Gong's search with Lowe's memo, run per key: a register
//! history is linearizable exactly when each key's is (P-compositionality), so keys are
//! checked independently, in parallel, each with its own time limit. What a record means is
//! the contract in `results/README.md`; unknown outcomes are open-ended and may never have
//! taken effect (see [`search`](self#layout)).
//!
//! # Layout
//! - `history`: reading `history.jsonl` (errors name the line and field), what each record
//!   means, the split by key with values interned
//! - `model`: the register and what each operation does to it
//! - `memo`: the explored configurations, as compact bitsets with incremental hashes
//! - `search`: the search for one key, with its deadline, over the list of `events`
//! - `window`: the evidence of a failing key
//! - `anomaly`: [`KeyAnomaly`], the evidence of one failing key, and its picture's name
//! - `report`: [`LinearReport`], [`LinearSummary`] and the files
//! - `svg`: the picture of an anomaly, on a time axis with idle gaps cut out (`axis`)
//!
//! # Use
//! ```no_run
//! use drills::check::linear::{CheckOptions, check_file};
//! let report = check_file("results/run/history.jsonl".as_ref(), &CheckOptions::default())?;
//! report.write_files("results/run".as_ref())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod anomaly;
mod axis;
mod events;
mod history;
mod memo;
mod model;
mod report;
mod search;
pub mod svg;
#[cfg(test)]
mod tests;
mod window;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loadgen::history::HistoryRecord;

pub use anomaly::{KeyAnomaly, WindowOp, anomaly_file};
pub use history::{CheckError, HISTORY_FILE, Problem, history_path, read_history};
pub use report::{
    LinearReport, LinearSummary, REPORT_FILE, Status, SummaryAnomaly, SummaryStatus, UndecidedKey,
};
pub use window::MAX_WINDOW;

use history::{KeyHistory, split_by_key};
use search::{Effort, Limits, Stop, Verdict};

/// How to run the check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Each key's time limit: a key not decided by then is `unknown`, never `ok`.
    pub time_limit: Duration,
    /// Threads to check keys on; 0: one per core.
    pub threads: usize,
    /// Values some keys held before the history began; every other key starts absent.
    pub initial_values: HashMap<String, String>,
    /// Set this to stop the check early: keys not decided by then are `unknown`.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_limit: Duration::from_secs(30),
            threads: 0,
            initial_values: HashMap::new(),
            cancel: None,
        }
    }
}

/// Checks a history file, or the `history.jsonl` of a run folder.
pub fn check_file(path: &Path, opts: &CheckOptions) -> Result<LinearReport, CheckError> {
    let file = history_path(path)?;
    let records = read_history(&file)?;
    let mut report = check_records(&records, opts)?;
    report.history = Some(file);
    Ok(report)
}

/// Checks records: a history file's, plus any the caller adds (the final reads of a drill,
/// say, at their real times). Pure CPU work on up to [`CheckOptions::threads`] threads; call
/// it off an async runtime (`spawn_blocking`).
pub fn check_records(
    records: &[HistoryRecord],
    opts: &CheckOptions,
) -> Result<LinearReport, CheckError> {
    let started = Instant::now();
    let (keys, dropped) = split_by_key(records, &opts.initial_values)?;
    let verdicts = run_keys(&keys, opts);

    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    for (h, (verdict, effort)) in keys.iter().zip(&verdicts) {
        tracing::debug!(
            key = h.key,
            ops = h.ops.len(),
            steps = effort.steps,
            configs = effort.configs,
            ?verdict,
            "key checked"
        );
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Violation(v) => anomalies.push(window::explain(h, records, v)),
            Verdict::Undecided(stop) => undecided.push(UndecidedKey {
                key: h.key.to_string(),
                ops: h.ops.len(),
                reason: match stop {
                    Stop::TimeLimit => format!(
                        "not decided within the time limit of {}",
                        humantime::format_duration(opts.time_limit)
                    ),
                    Stop::Cancelled => "the check was cancelled".to_string(),
                },
            }),
        }
    }
    let status = if !anomalies.is_empty() {
        Status::Anomaly
    } else if !undecided.is_empty() {
        Status::Unknown
    } else {
        Status::Ok
    };
    Ok(LinearReport {
        status,
        history: None,
        keys: keys.len(),
        ops: keys.iter().map(|k| k.ops.len()).sum(),
        records: records.len(),
        dropped,
        elapsed_s: started.elapsed().as_secs_f64(),
        time_limit_s: opts.time_limit.as_secs_f64(),
        anomalies,
        undecided,
    })
}

/// Searches every key, the largest first so that one long key does not start last, on a pool
/// of scoped threads that take the next key as they finish one.
fn run_keys(keys: &[KeyHistory<'_>], opts: &CheckOptions) -> Vec<(Verdict, Effort)> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(keys[i].ops.len()));
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, keys.len().max(1));
    let cancel = opts.cancel.as_deref();
    let check = |i: usize| {
        let now = Instant::now();
        // A limit too large for the clock is no limit.
        let deadline = now
            .checked_add(opts.time_limit)
            .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        search::search(&keys[i], &Limits { deadline, cancel })
    };
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = order.get(n) else { break };
            done.push((i, check(i)));
        }
        done
    };
    let mut results: Vec<Option<(Verdict, Effort)>> = vec![None; keys.len()];
    let batches: Vec<Vec<(usize, (Verdict, Effort))>> = if threads == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    for (i, r) in batches.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or((Verdict::Undecided(Stop::Cancelled), Effort::default())))
        .collect()
}
