//! Tests of the linearizability check on hand-made and simulated histories.
//!
//! - `cases`: the anomalies the check must catch, and the valid histories it must accept
//! - `sim`: long histories from a simulated linearizable register, and broken copies of them
//! - `parse`: malformed files name their line and field; missing files are one-line errors
//! - `limits`: time limits and cancellation make keys unknown, never ok
//! - `oracle`: the search against brute force on small random histories
//! - `files`: `linearizability.json`, the pictures and the summary

mod cases;
mod files;
mod limits;
mod oracle;
mod parse;
mod sim;

use loadgen::history::HistoryRecord;
use loadgen::outcome::Outcome;
use loadgen::workload::OpKind;

use super::{CheckOptions, LinearReport, Status, check_records};

/// A completed record of `kind` on key `k`; the builders below fill in the rest.
pub(super) fn op(id: u64, worker: usize, kind: OpKind, t0: u64, t1: u64) -> HistoryRecord {
    HistoryRecord {
        id,
        worker,
        kind,
        key: "k".into(),
        value: None,
        expect: None,
        invoke_us: t0,
        complete_us: t1,
        outcome: Outcome::Ok,
        error: None,
        returned: None,
        applied: None,
        index: None,
    }
}

/// An acknowledged write of `v`.
pub(super) fn write(id: u64, worker: usize, v: &str, t0: u64, t1: u64) -> HistoryRecord {
    HistoryRecord {
        value: Some(v.into()),
        applied: Some(true),
        ..op(id, worker, OpKind::Update, t0, t1)
    }
}

/// A read that returned `v` (`None`: absent).
pub(super) fn read(id: u64, worker: usize, v: Option<&str>, t0: u64, t1: u64) -> HistoryRecord {
    HistoryRecord {
        returned: v.map(Into::into),
        ..op(id, worker, OpKind::Read, t0, t1)
    }
}

/// A compare-and-swap from `expect` to `new` that swapped (`applied`) or found another value.
pub(super) fn cas(
    id: u64,
    worker: usize,
    expect: Option<&str>,
    new: &str,
    applied: bool,
    t0: u64,
    t1: u64,
) -> HistoryRecord {
    HistoryRecord {
        value: Some(new.into()),
        expect: Some(expect.map(Into::into)),
        applied: Some(applied),
        ..op(id, worker, OpKind::ReadModifyWrite, t0, t1)
    }
}

/// The same operation with an unknown outcome (the client gave up at its `complete_us`).
pub(super) fn unknown(mut r: HistoryRecord) -> HistoryRecord {
    r.outcome = Outcome::Unknown;
    r.applied = None;
    r.returned = None;
    r.index = None;
    r
}

/// The same operation, definitely not applied.
pub(super) fn failed(mut r: HistoryRecord) -> HistoryRecord {
    r.outcome = Outcome::Fail;
    r.applied = None;
    r.returned = None;
    r
}

/// Checks with default options on one thread.
pub(super) fn check(records: &[HistoryRecord]) -> LinearReport {
    let opts = CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    };
    check_records(records, &opts).expect("valid records")
}

/// Asserts the history is linearizable.
#[track_caller]
pub(super) fn assert_ok(records: &[HistoryRecord]) {
    let report = check(records);
    assert_eq!(report.status, Status::Ok, "{:#?}", report.anomalies);
    assert!(report.anomalies.is_empty() && report.undecided.is_empty());
}

/// Asserts the history is not linearizable and that op `stuck` is the one that cannot be
/// placed; returns the report.
#[track_caller]
pub(super) fn assert_anomaly(records: &[HistoryRecord], stuck: u64) -> LinearReport {
    let report = check(records);
    assert_eq!(report.status, Status::Anomaly, "{report:#?}");
    assert_eq!(report.anomalies.len(), 1, "{report:#?}");
    let a = &report.anomalies[0];
    assert_eq!(a.stuck, stuck, "{a:#?}");
    let marked: Vec<u64> = a
        .window
        .iter()
        .filter(|w| w.stuck)
        .map(|w| w.record.id)
        .collect();
    assert_eq!(marked, vec![stuck], "the window marks the stuck op");
    report
}
