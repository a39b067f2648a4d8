//! The drill's linearizability step: after the lost-write check, the whole recorded history,
//! with the final reads joined at their real times, is checked against a register per key.
//! `linearizability.json` and one `anomaly-<key>.svg` per failing key go into the run folder.

use std::path::Path;
use std::time::Duration;

use loadgen::history::HistoryRecord;
use loadgen::workload::OpKind;
use raftdrill_wire::Consistency;

use crate::check::linear::{
    CheckOptions, HISTORY_FILE, LinearSummary, SummaryStatus, check_records, read_history,
};
use crate::check::{SessionSummary, check_sessions};

/// The lane the final reads are drawn in (no load worker has so high an index).
pub const FINAL_READ_WORKER: usize = 1_000_000;
/// Operation ids of the final reads start here, above any id the load hands out.
pub const FINAL_READ_IDS: u64 = 1 << 62;

/// Checks `dir/history.jsonl` plus `extra` records; writes the evidence into `dir`. Never
/// fails: what could not be checked is `unknown` (or `skipped` with no history) with a reason.
///
/// Reads at `stale` or `session` consistency are not linearizable by contract, so the
/// linearizability check leaves them out (and says so); session reads get the session check
/// instead, returned beside it.
pub async fn check(
    dir: &Path,
    extra: Vec<HistoryRecord>,
    time_limit: Duration,
    reads: Consistency,
) -> (LinearSummary, Option<SessionSummary>) {
    let path = dir.join(HISTORY_FILE);
    if !path.exists() {
        let no = LinearSummary::skipped("no history was recorded (history = false)");
        return (no, None);
    }
    let dir = dir.to_path_buf();
    let work = tokio::task::spawn_blocking(move || {
        let mut records = match read_history(&path) {
            Ok(records) => records,
            Err(e) => return (unknown(e.to_string()), None),
        };
        let session = (reads == Consistency::Session).then(|| check_sessions(&records));
        let left_out = matches!(reads, Consistency::Stale | Consistency::Session);
        if left_out {
            records.retain(|r| r.kind != OpKind::Read);
        }
        records.extend(extra);
        let mut summary = linear(&records, time_limit, &dir).unwrap_or_else(unknown);
        if left_out && summary.reason.is_none() {
            summary.reason = Some(format!(
                "{} reads are not linearizable by contract and were left out; the writes, \
                 read-modify-writes and final reads were checked",
                reads.as_str()
            ));
        }
        (summary, session)
    });
    work.await
        .unwrap_or_else(|e| (unknown(format!("the check stopped: {e}")), None))
}

/// The linearizability check of `records`, its evidence written into `dir`.
fn linear(
    records: &[HistoryRecord],
    time_limit: Duration,
    dir: &Path,
) -> Result<LinearSummary, String> {
    let opts = CheckOptions {
        time_limit,
        ..CheckOptions::default()
    };
    let report = check_records(records, &opts).map_err(|e| e.to_string())?;
    report
        .write_files(dir)
        .map_err(|e| format!("cannot write the evidence: {e}"))?;
    Ok(report.summary())
}

fn unknown(reason: String) -> LinearSummary {
    LinearSummary {
        status: SummaryStatus::Unknown,
        ..LinearSummary::skipped(reason)
    }
}
