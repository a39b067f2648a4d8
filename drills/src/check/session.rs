//! The session check: with `consistency = "session"` each load worker is one client session,
//! and the store promises it reads that never go back in time: a session read is served by a
//! node that has applied the log up to the highest commit position the worker has seen, from
//! its own acknowledged writes and from the writes its reads returned.
//!
//! Session reads are not linearizable (another worker's newer write may be missing), so the
//! linearizability check leaves them out; this check holds them to their own promise instead.
//! For a worker's read of key `k` that completed ok, with `s` the worker's session position
//! when it started, the read must return the value of an acknowledged write to `k` whose
//! commit position is at least that of the last acknowledged write to `k` at or below `s`
//! (by any worker). That covers read-your-writes, monotonic reads and writes-follow-reads.
//!
//! Values are unique per write, so a returned value names its write and that write's commit
//! position. A value written by an operation whose outcome is unknown has no known position:
//! the read is counted as unjudged, never as passed.

use std::collections::{BTreeMap, HashMap};

use loadgen::history::HistoryRecord;
use loadgen::outcome::Outcome;
use loadgen::workload::OpKind;
use serde::{Deserialize, Serialize};

use super::linear::SummaryStatus;

/// How many violations summary.json lists; the count covers all of them.
const LISTED: usize = 5;

/// `summary.json`'s `checks.session`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionSummary {
    /// `ok`, `anomaly`, or `unknown` when no read could be judged.
    pub status: SummaryStatus,
    /// Session reads that completed ok and were judged.
    pub reads_checked: usize,
    /// Reads that returned a value of a write whose outcome is unknown: not judged.
    pub reads_unjudged: usize,
    /// Reads that went back in time.
    pub violations: usize,
    /// The first few of them, in the order of the history.
    pub examples: Vec<SessionViolation>,
}

/// A session read that returned an older value than the session had seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionViolation {
    /// The worker (the session).
    pub worker: usize,
    /// The read's operation id.
    pub read_id: u64,
    /// The key.
    pub key: String,
    /// The session's position when the read started.
    pub session_index: u64,
    /// The commit position of the write to `key` the read had to reflect at least.
    pub required_index: u64,
    /// The operation id of that write.
    pub required_write: u64,
    /// The commit position of the write whose value came back (`None`: the key was absent).
    pub returned_index: Option<u64>,
}

/// A write whose effect and commit position are known.
#[derive(Clone, Copy)]
struct Known {
    index: u64,
    id: u64,
}

/// Every acknowledged write: by its unique value, and per key in commit order.
struct Writes<'a> {
    by_value: HashMap<&'a str, Known>,
    by_key: HashMap<&'a str, Vec<Known>>,
}

impl<'a> Writes<'a> {
    fn new(records: &'a [HistoryRecord]) -> Self {
        let mut by_value: HashMap<&str, Known> = HashMap::new();
        let mut by_key: HashMap<&str, Vec<Known>> = HashMap::new();
        for r in records {
            if !((r.kind != OpKind::Read) && r.outcome == Outcome::Ok && r.applied == Some(true)) {
                continue;
            }
            let (Some(value), Some(index)) = (r.value.as_deref(), r.index) else {
                continue;
            };
            let known = Known { index, id: r.id };
            by_value.insert(value, known);
            by_key.entry(&r.key).or_default().push(known);
        }
        for writes in by_key.values_mut() {
            writes.sort_by_key(|w| w.index);
        }
        Writes { by_value, by_key }
    }

    /// The last acknowledged write to `key` at or below the session position `session`.
    fn required(&self, key: &str, session: u64) -> Option<Known> {
        self.by_key.get(key).and_then(|writes| {
            let seen = writes.partition_point(|w| w.index <= session);
            seen.checked_sub(1).map(|i| writes[i])
        })
    }
}

/// Checks every worker's session reads in `records` (one run's history).
pub fn check_sessions(records: &[HistoryRecord]) -> SessionSummary {
    let writes = Writes::new(records);
    let mut workers: BTreeMap<usize, Vec<&HistoryRecord>> = BTreeMap::new();
    for r in records {
        workers.entry(r.worker).or_default().push(r);
    }

    let mut summary = SessionSummary {
        status: SummaryStatus::Ok,
        reads_checked: 0,
        reads_unjudged: 0,
        violations: 0,
        examples: Vec::new(),
    };
    for (worker, ops) in workers {
        check_worker(&mut summary, &writes, worker, ops);
    }
    summary.status = if summary.violations > 0 {
        SummaryStatus::Anomaly
    } else if summary.reads_checked == 0 {
        SummaryStatus::Unknown
    } else {
        SummaryStatus::Ok
    };
    summary
}

/// Follows one worker's session through its operations and counts its reads into `summary`.
fn check_worker(
    summary: &mut SessionSummary,
    writes: &Writes<'_>,
    worker: usize,
    mut ops: Vec<&HistoryRecord>,
) {
    // A worker runs one operation at a time, so start order is its program order.
    ops.sort_by_key(|r| (r.invoke_us, r.id));
    let mut session = 0u64;
    for r in ops {
        if r.outcome != Outcome::Ok {
            continue;
        }
        if r.kind != OpKind::Read {
            // An acknowledged write (or a swap that found another value) is committed at
            // its position: the session has seen it.
            if let Some(i) = r.index {
                session = session.max(i);
            }
            continue;
        }
        let returned = match r.returned.as_deref() {
            None => None,
            Some(v) => match writes.by_value.get(v) {
                Some(k) => Some(*k),
                None => {
                    summary.reads_unjudged += 1;
                    continue;
                }
            },
        };
        summary.reads_checked += 1;
        if let Some(req) = writes.required(r.key.as_str(), session)
            && returned.is_none_or(|got| got.index < req.index)
        {
            summary.violations += 1;
            if summary.examples.len() < LISTED {
                summary.examples.push(SessionViolation {
                    worker,
                    read_id: r.id,
                    key: r.key.clone(),
                    session_index: session,
                    required_index: req.index,
                    required_write: req.id,
                    returned_index: returned.map(|g| g.index),
                });
            }
        }
        if let Some(got) = returned {
            session = session.max(got.index);
        }
    }
}

impl SessionSummary {
    /// One line for a person.
    pub fn line(&self) -> String {
        match self.status {
            SummaryStatus::Ok => format!(
                "sessions held: {} session reads checked, none went back in time ({} unjudged)",
                self.reads_checked, self.reads_unjudged
            ),
            SummaryStatus::Anomaly => {
                let first = self
                    .examples
                    .first()
                    .map_or_else(String::new, |v| format!("; first: {}", v.describe()));
                format!(
                    "{} of {} session reads went back in time{first}",
                    self.violations, self.reads_checked
                )
            }
            SummaryStatus::Unknown | SummaryStatus::Skipped => format!(
                "sessions not checked: no session read could be judged ({} unjudged)",
                self.reads_unjudged
            ),
        }
    }
}

impl SessionViolation {
    /// For a person: who read what, what it needed and what it got.
    pub fn describe(&self) -> String {
        format!(
            "worker {} read {:?} (op {}) at session index {}, needed the write at index {} (op {}), got {}",
            self.worker,
            self.key,
            self.read_id,
            self.session_index,
            self.required_index,
            self.required_write,
            self.returned_index
                .map_or_else(|| "nothing".into(), |i| format!("the write at index {i}"))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, worker: usize, kind: OpKind, key: &str, at: u64) -> HistoryRecord {
        HistoryRecord {
            id,
            worker,
            kind,
            key: key.into(),
            value: None,
            expect: None,
            invoke_us: at,
            complete_us: at + 10,
            outcome: Outcome::Ok,
            error: None,
            returned: None,
            applied: None,
            index: None,
        }
    }

    fn write(id: u64, worker: usize, key: &str, value: &str, index: u64, at: u64) -> HistoryRecord {
        HistoryRecord {
            value: Some(value.into()),
            applied: Some(true),
            index: Some(index),
            ..op(id, worker, OpKind::Update, key, at)
        }
    }

    fn read(id: u64, worker: usize, key: &str, returned: Option<&str>, at: u64) -> HistoryRecord {
        HistoryRecord {
            returned: returned.map(Into::into),
            ..op(id, worker, OpKind::Read, key, at)
        }
    }

    #[test]
    fn reading_your_own_write_passes() {
        let h = [write(1, 0, "k", "a", 5, 0), read(2, 0, "k", Some("a"), 100)];
        let s = check_sessions(&h);
        assert_eq!(s.status, SummaryStatus::Ok, "{s:?}");
        assert_eq!(s.reads_checked, 1);
    }

    #[test]
    fn reading_an_older_value_after_your_own_write_is_a_violation() {
        let h = [
            write(1, 1, "k", "old", 3, 0),
            write(2, 0, "k", "mine", 7, 50),
            read(3, 0, "k", Some("old"), 100),
        ];
        let s = check_sessions(&h);
        assert_eq!(s.status, SummaryStatus::Anomaly);
        assert_eq!(s.violations, 1);
        let v = &s.examples[0];
        assert_eq!((v.worker, v.read_id, v.required_write), (0, 3, 2));
        assert_eq!((v.required_index, v.returned_index), (7, Some(3)));
        assert!(s.line().contains("went back in time"), "{}", s.line());
    }

    #[test]
    fn reading_nothing_after_your_own_write_is_a_violation() {
        let h = [write(1, 0, "k", "mine", 4, 0), read(2, 0, "k", None, 100)];
        let s = check_sessions(&h);
        assert_eq!(s.status, SummaryStatus::Anomaly);
        assert_eq!(s.examples[0].returned_index, None);
    }

    #[test]
    fn reads_never_go_back_in_time_even_across_keys() {
        // Worker 0 saw index 9 by reading key j; another worker's write to k at 6 is then
        // inside its session, so reading k's older value at 2 goes back in time.
        let h = [
            write(1, 1, "k", "k-old", 2, 0),
            write(2, 1, "k", "k-new", 6, 10),
            write(3, 1, "j", "j-new", 9, 20),
            read(4, 0, "j", Some("j-new"), 100),
            read(5, 0, "k", Some("k-old"), 200),
        ];
        let s = check_sessions(&h);
        assert_eq!(s.violations, 1, "{s:?}");
        assert_eq!(s.examples[0].read_id, 5);
        assert_eq!(s.examples[0].session_index, 9);
    }

    #[test]
    fn another_sessions_newer_write_need_not_be_seen() {
        // Worker 0's session is at 3; worker 1's write at 8 is outside it.
        let h = [
            write(1, 0, "k", "a", 3, 0),
            write(2, 1, "k", "b", 8, 10),
            read(3, 0, "k", Some("a"), 100),
        ];
        let s = check_sessions(&h);
        assert_eq!(s.status, SummaryStatus::Ok, "{s:?}");
    }

    #[test]
    fn a_value_of_an_unknown_write_is_unjudged_not_passed() {
        let mut lost = write(1, 1, "k", "maybe", 0, 0);
        lost.outcome = Outcome::Unknown;
        lost.index = None;
        lost.applied = None;
        let h = [lost, read(2, 0, "k", Some("maybe"), 100)];
        let s = check_sessions(&h);
        assert_eq!((s.reads_checked, s.reads_unjudged), (0, 1));
        assert_eq!(s.status, SummaryStatus::Unknown);
    }

    #[test]
    fn failed_reads_and_order_by_start_time() {
        // Listed out of order: the check orders each worker's operations by start.
        let mut failed = read(3, 0, "k", None, 150);
        failed.outcome = Outcome::Fail;
        let h = [
            read(4, 0, "k", Some("a"), 200),
            failed,
            write(1, 0, "k", "a", 5, 0),
        ];
        let s = check_sessions(&h);
        assert_eq!(s.status, SummaryStatus::Ok, "{s:?}");
        assert_eq!(s.reads_checked, 1);
    }
}
