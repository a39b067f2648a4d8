//! The lost-write check: was every acknowledged write still there at the end?
//!
//! During the run the [`WriteTracker`] keeps, per key, the last acknowledged write (ordered by
//! its Raft log index, so concurrent writers to a hot key are judged by commit order rather
//! than by which answer arrived first) and the values of writes whose outcome is unknown. After
//! heal and settling, every written key is read linearizably and [`WriteTracker::judge`]
//! compares: the value must be the last acknowledged one, or one that an unknown write may
//! have put there (it could have committed later). Anything else is an anomaly with evidence.

use std::collections::{BTreeMap, HashMap, HashSet};

use loadgen::history::{WriteRecord, WriteStatus};
use serde::Serialize;

/// What is known about the writes to one key.
#[derive(Debug, Default, Clone)]
struct KeyWrites {
    /// (commit index, arrival order, value, op id) of the last acknowledged write.
    last_acked: Option<(u64, u64, String, u64)>,
    /// Values of writes that may or may not have been applied.
    unknown: HashSet<String>,
    /// Values of writes that definitely were not applied.
    not_applied: HashSet<String>,
}

/// Why a key failed the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// The key does not exist, though a write to it was acknowledged.
    Missing,
    /// The key holds another value than the newest acknowledged write (an older one, say):
    /// that write is gone.
    Stale,
    /// The key holds a value that a write reported as not applied.
    FailedWriteVisible,
    /// No write to the key was acknowledged, yet it holds a value no unknown write explains.
    Unexpected,
}

/// One key that failed the check, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LostWrite {
    /// The key.
    pub key: String,
    /// What went wrong.
    pub kind: LossKind,
    /// The value of the last acknowledged write, if any.
    pub expected: Option<String>,
    /// Its Raft log index.
    pub expected_index: Option<u64>,
    /// Its operation id.
    pub expected_op: Option<u64>,
    /// What the final read returned.
    pub found: Option<String>,
    /// How many unknown-outcome values would also have been accepted.
    pub unknown_candidates: usize,
}

/// What the check established.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Every key was read back and every acknowledged write is there.
    #[default]
    Ok,
    /// A key lost an acknowledged write (or shows a write that failed).
    Lost,
    /// Nothing was found lost, but some keys could not be read back: loss is not ruled out.
    Unknown,
}

/// The check's result, as `summary.json` carries it under `checks.lost_writes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LostWriteReport {
    /// `ok`, `lost`, or `unknown` when keys could not be read back.
    pub status: CheckStatus,
    /// Acknowledged writes seen during the run.
    pub acked: u64,
    /// Writes with an unknown outcome.
    pub unknown: u64,
    /// Keys read back at the end.
    pub keys_checked: u64,
    /// Keys whose final value was accepted.
    pub verified: u64,
    /// Keys that could not be read at the end (so not judged).
    pub unreadable: u64,
    /// Number of keys that failed.
    pub lost: u64,
    /// The failing keys (at most the first 100, ordered by key).
    pub lost_keys: Vec<LostWrite>,
}

/// Collects write outcomes during a run.
#[derive(Debug, Default)]
pub struct WriteTracker {
    keys: HashMap<String, KeyWrites>,
    arrivals: u64,
    acked: u64,
    unknown: u64,
}

impl WriteTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one completed write.
    pub fn observe(&mut self, rec: &WriteRecord) {
        self.arrivals += 1;
        let k = self.keys.entry(rec.key.clone()).or_default();
        match rec.status {
            WriteStatus::Acked => {
                self.acked += 1;
                let order = (rec.index.unwrap_or(0), self.arrivals);
                let newer = k
                    .last_acked
                    .as_ref()
                    .is_none_or(|(i, a, _, _)| order > (*i, *a));
                if newer {
                    k.last_acked = Some((order.0, order.1, rec.value.clone(), rec.id));
                }
            }
            WriteStatus::Unknown => {
                self.unknown += 1;
                k.unknown.insert(rec.value.clone());
            }
            WriteStatus::NotApplied => {
                k.not_applied.insert(rec.value.clone());
            }
        }
    }

    /// Keys that some write may have changed (acknowledged or unknown), sorted.
    pub fn keys_to_check(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, w)| w.last_acked.is_some() || !w.unknown.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Judges the final value of `key`; `None` means it is acceptable.
    pub fn judge(&self, key: &str, found: Option<&str>) -> Option<LostWrite> {
        let w = self.keys.get(key)?;
        let (expected_index, expected_op, expected) = match &w.last_acked {
            Some((i, _, v, op)) => (Some(*i), Some(*op), Some(v.as_str())),
            None => (None, None, None),
        };
        let kind = match found {
            Some(f) if Some(f) == expected || w.unknown.contains(f) => return None,
            None if expected.is_none() => return None,
            None => LossKind::Missing,
            Some(f) if w.not_applied.contains(f) => LossKind::FailedWriteVisible,
            Some(_) if expected.is_some() => LossKind::Stale,
            Some(_) => LossKind::Unexpected,
        };
        Some(LostWrite {
            key: key.to_string(),
            kind,
            expected: expected.map(str::to_string),
            expected_index,
            expected_op,
            found: found.map(str::to_string),
            unknown_candidates: w.unknown.len(),
        })
    }

    /// Builds the report from the final reads: `Ok(found)` per key, or `Err` when the key could
    /// not be read.
    pub fn report(
        &self,
        reads: &BTreeMap<String, Result<Option<String>, String>>,
    ) -> LostWriteReport {
        let mut r = LostWriteReport {
            acked: self.acked,
            unknown: self.unknown,
            ..Default::default()
        };
        for (key, read) in reads {
            r.keys_checked += 1;
            match read {
                Err(_) => r.unreadable += 1,
                Ok(found) => match self.judge(key, found.as_deref()) {
                    None => r.verified += 1,
                    Some(lost) => {
                        r.lost += 1;
                        if r.lost_keys.len() < 100 {
                            r.lost_keys.push(lost);
                        }
                    }
                },
            }
        }
        r.status = if r.lost > 0 {
            CheckStatus::Lost
        } else if r.unreadable > 0 {
            CheckStatus::Unknown
        } else {
            CheckStatus::Ok
        };
        r
    }

    /// Percent of the keys to check that could not be read.
    pub fn unreadable_pct(r: &LostWriteReport) -> f64 {
        if r.keys_checked == 0 {
            0.0
        } else {
            r.unreadable as f64 * 100.0 / r.keys_checked as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        id: u64,
        key: &str,
        value: &str,
        status: WriteStatus,
        index: Option<u64>,
    ) -> WriteRecord {
        WriteRecord {
            id,
            key: key.into(),
            value: value.into(),
            status,
            index,
        }
    }

    fn tracker(records: &[WriteRecord]) -> WriteTracker {
        let mut t = WriteTracker::new();
        records.iter().for_each(|r| t.observe(r));
        t
    }

    #[test]
    fn the_newest_acknowledged_value_is_expected_by_commit_index_not_arrival() {
        use WriteStatus::*;
        // Op 2 committed first (index 5) but its answer arrived after op 1's (index 9).
        let t = tracker(&[
            rec(1, "k", "s-1-a", Acked, Some(9)),
            rec(2, "k", "s-2-b", Acked, Some(5)),
        ]);
        assert_eq!(t.judge("k", Some("s-1-a")), None);
        let lost = t.judge("k", Some("s-2-b")).unwrap();
        assert_eq!(lost.kind, LossKind::Stale);
        assert_eq!(lost.expected.as_deref(), Some("s-1-a"));
        assert_eq!(lost.expected_index, Some(9));
    }

    #[test]
    fn unknown_writes_may_or_may_not_have_landed() {
        use WriteStatus::*;
        let t = tracker(&[
            rec(1, "k", "s-1-a", Acked, Some(3)),
            rec(2, "k", "s-2-b", Unknown, None),
        ]);
        assert_eq!(t.judge("k", Some("s-1-a")), None);
        assert_eq!(t.judge("k", Some("s-2-b")), None);
        assert_eq!(t.judge("k", None).unwrap().kind, LossKind::Missing);
        let only_unknown = tracker(&[rec(1, "u", "s-1-a", Unknown, None)]);
        assert_eq!(only_unknown.judge("u", None), None);
        assert_eq!(only_unknown.judge("u", Some("s-1-a")), None);
    }

    #[test]
    fn a_failed_write_that_shows_up_is_an_anomaly_and_a_foreign_value_is_unexpected() {
        use WriteStatus::*;
        let t = tracker(&[
            rec(1, "k", "s-1-a", Acked, Some(3)),
            rec(2, "k", "s-2-b", NotApplied, None),
        ]);
        assert_eq!(
            t.judge("k", Some("s-2-b")).unwrap().kind,
            LossKind::FailedWriteVisible
        );
        assert_eq!(t.judge("k", Some("garbage")).unwrap().kind, LossKind::Stale);
        let never_acked = tracker(&[rec(1, "u", "s-1-a", Unknown, None)]);
        assert_eq!(
            never_acked.judge("u", Some("garbage")).unwrap().kind,
            LossKind::Unexpected
        );
    }

    #[test]
    fn the_report_counts_verified_lost_and_unreadable_keys() {
        use WriteStatus::*;
        let t = tracker(&[
            rec(1, "a", "s-1-a", Acked, Some(1)),
            rec(2, "b", "s-2-b", Acked, Some(2)),
            rec(3, "c", "s-3-c", Acked, Some(3)),
            rec(4, "d", "s-4-d", NotApplied, None),
        ]);
        assert_eq!(
            t.keys_to_check(),
            vec!["a", "b", "c"],
            "never-applied keys need no read"
        );
        let reads = BTreeMap::from([
            ("a".to_string(), Ok(Some("s-1-a".to_string()))),
            ("b".to_string(), Ok(None)),
            ("c".to_string(), Err("timeout".to_string())),
        ]);
        let r = t.report(&reads);
        assert_eq!(
            (r.acked, r.keys_checked, r.verified, r.lost, r.unreadable),
            (3, 3, 1, 1, 1)
        );
        assert_eq!(r.lost_keys[0].key, "b");
        assert_eq!(r.status, CheckStatus::Lost);
        let unread = BTreeMap::from([
            ("a".to_string(), Ok(Some("s-1-a".to_string()))),
            ("b".to_string(), Err("timeout".to_string())),
        ]);
        let r = t.report(&unread);
        assert_eq!(r.status, CheckStatus::Unknown, "unread is not ok");
        assert!((WriteTracker::unreadable_pct(&r) - 50.0).abs() < 1e-9);
    }
}
