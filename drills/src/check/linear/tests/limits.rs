//! A key the search cannot decide in time, or that a cancelled check did not finish, is
//! `unknown`: never `ok`, and not an anomaly either.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;

/// A history whose search is exponential: `n` concurrent writes, then a read of a value
/// written by an operation invoked after it returned. Every subset of the writes, with every
/// last writer, must be tried before the search can give up.
fn hard(n: u64) -> Vec<HistoryRecord> {
    let mut h: Vec<HistoryRecord> = (0..n)
        .map(|i| write(i, i as usize, &format!("v{i}"), 0, 10))
        .collect();
    h.push(read(n, 99, Some("late"), 20, 30));
    h.push(write(n + 1, 98, "late", 40, 50));
    h
}

#[test]
fn a_deadline_already_passed_leaves_every_key_unknown() {
    let opts = CheckOptions {
        time_limit: Duration::ZERO,
        threads: 1,
        ..CheckOptions::default()
    };
    let report = check_records(&hard(4), &opts).unwrap();
    assert_eq!(report.status, Status::Unknown);
    assert_eq!(report.undecided.len(), 1);
    assert!(report.undecided[0].reason.contains("time limit"));
    assert!(report.anomalies.is_empty());
    assert_eq!(report.summary().undecided, 1);
}

#[test]
fn a_hard_history_over_its_time_limit_is_unknown() {
    // 2^40 subsets: no machine decides this in 20 ms, so this asserts that the search looks
    // at the clock, not how fast it is.
    let opts = CheckOptions {
        time_limit: Duration::from_millis(20),
        threads: 1,
        ..CheckOptions::default()
    };
    let report = check_records(&hard(40), &opts).unwrap();
    assert_eq!(report.status, Status::Unknown, "{report:#?}");

    // With few writes it is decided, and it is an anomaly.
    let small = check_records(&hard(6), &CheckOptions::default()).unwrap();
    assert_eq!(small.status, Status::Anomaly);
}

#[test]
fn a_cancelled_check_is_unknown() {
    let opts = CheckOptions {
        cancel: Some(Arc::new(AtomicBool::new(true))),
        ..CheckOptions::default()
    };
    let report = check_records(&hard(4), &opts).unwrap();
    assert_eq!(report.status, Status::Unknown);
    assert!(report.undecided[0].reason.contains("cancelled"));
}

#[test]
fn an_anomaly_outranks_undecided_keys() {
    let mut h = hard(40);
    let mut bad = vec![write(100, 0, "a", 0, 10), read(101, 1, None, 20, 30)];
    for r in &mut bad {
        r.key = "bad".into();
    }
    h.extend(bad);
    let opts = CheckOptions {
        time_limit: Duration::from_millis(20),
        threads: 2,
        ..CheckOptions::default()
    };
    let report = check_records(&h, &opts).unwrap();
    assert_eq!(report.status, Status::Anomaly);
    assert_eq!((report.anomalies.len(), report.undecided.len()), (1, 1));
}
