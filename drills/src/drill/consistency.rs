//! The drill's linearizability step: after the lost-write check, the whole recorded history,
//! with the final reads joined at their real times, is checked against a register per key.
//! `linearizability.json` and one `anomaly-<key>.svg` per failing key go into the run folder.

use std::path::Path;
use std::time::Duration;

use loadgen::history::HistoryRecord;

use crate::check::linear::{
    CheckOptions, HISTORY_FILE, LinearSummary, SummaryStatus, check_records, read_history,
};

/// The lane the final reads are drawn in (no load worker has so high an index).
pub const FINAL_READ_WORKER: usize = 1_000_000;
/// Operation ids of the final reads start here, above any id the load hands out.
pub const FINAL_READ_IDS: u64 = 1 << 62;

/// Checks `dir/history.jsonl` plus `extra` records; writes the evidence into `dir`. Never
/// fails: what could not be checked is `unknown` (or `skipped` with no history) with a reason.
pub async fn check(dir: &Path, extra: Vec<HistoryRecord>, time_limit: Duration) -> LinearSummary {
    let path = dir.join(HISTORY_FILE);
    if !path.exists() {
        return LinearSummary::skipped("no history was recorded (history = false)");
    }
    let dir = dir.to_path_buf();
    let work = tokio::task::spawn_blocking(move || {
        let mut records = read_history(&path).map_err(|e| e.to_string())?;
        records.extend(extra);
        let opts = CheckOptions {
            time_limit,
            ..CheckOptions::default()
        };
        let report = check_records(&records, &opts).map_err(|e| e.to_string())?;
        report
            .write_files(&dir)
            .map_err(|e| format!("cannot write the evidence: {e}"))?;
        Ok::<_, String>(report.summary())
    });
    match work.await {
        Ok(Ok(summary)) => summary,
        Ok(Err(reason)) => unknown(reason),
        Err(e) => unknown(format!("the check stopped: {e}")),
    }
}

fn unknown(reason: String) -> LinearSummary {
    LinearSummary {
        status: SummaryStatus::Unknown,
        ..LinearSummary::skipped(reason)
    }
}
