//! The operation history: one JSON line per completed operation in `history.jsonl`, written
//! by a task of its own so the request path only sends on an unbounded channel.
//!
//! The drill's checks take every completed operation live as an [`OpRecord`] from
//! [`crate::LoadRun::take_ops`] (a write carries its [`WriteRecord`] for the lost-write
//! check), so nothing on the request path waits for them.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::outcome::{ErrorClass, Outcome};
use crate::workload::OpKind;

/// One completed operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryRecord {
    /// Operation number (unique within the run).
    pub id: u64,
    /// Worker that ran it.
    pub worker: usize,
    /// What it was.
    pub kind: OpKind,
    /// The key.
    pub key: String,
    /// The value written (writes and read-modify-writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Read-modify-write only: the value the compare-and-swap expected (`null`: absent). Left
    /// out when the read failed and no swap was sent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub expect: Option<Option<String>>,
    /// Microseconds from the start of the run to the actual start.
    pub invoke_us: u64,
    /// Microseconds from the start of the run to the completion.
    pub complete_us: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The class of error, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorClass>,
    /// The value returned: a read's value, or the value after a compare-and-swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<String>,
    /// For writes that completed: whether the write took effect (false for a failed swap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    /// For acknowledged writes: the store's commit position (Raft log index). For session
    /// reads that found the key: the commit position of the write whose value was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// A field that is present (even as `null`) is `Some`; an absent one is `None` by `default`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// What became of one write, for the lost-write tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteStatus {
    /// Acknowledged: it must be visible unless overwritten.
    Acked,
    /// Definitely not applied (a fail, or a compare-and-swap that did not match).
    NotApplied,
    /// May or may not have been applied.
    Unknown,
}

/// A completed write attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// Operation number.
    pub id: u64,
    /// The key.
    pub key: String,
    /// The value it tried to write.
    pub value: String,
    /// What became of it.
    pub status: WriteStatus,
    /// For acknowledged writes: the store's commit position (Raft log index), which orders
    /// acknowledged writes to the same key.
    pub index: Option<u64>,
}

/// A completed operation, as the drill's checks take it live: when it was invoked and when it
/// completed (microseconds from the run's clock origin), how it ended, and for a write what
/// it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// Intended start (open loop; the actual start in closed loop).
    pub intended_us: u64,
    /// Actual start.
    pub invoke_us: u64,
    /// Completion (or the moment the client gave up).
    pub complete_us: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What a write attempted and what became of it; `None` for reads.
    pub write: Option<WriteRecord>,
}

/// The history file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the history {path}: {source}")]
pub struct HistoryError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// The writer task: resolves to the number of lines written.
pub(crate) type HistoryTask = tokio::task::JoinHandle<Result<u64, HistoryError>>;

/// Start the writer task for `path`; records sent on the returned channel are written in
/// order. The task ends, flushing the file, when every sender is dropped, and reports how many
/// lines it wrote.
pub(crate) fn spawn_writer(
    path: &Path,
) -> Result<(mpsc::UnboundedSender<HistoryRecord>, HistoryTask), HistoryError> {
    let err = |source| HistoryError {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<HistoryRecord>();
    let path = path.to_path_buf();
    let task = tokio::task::spawn_blocking(move || {
        let err = |source| HistoryError {
            path: path.clone(),
            source,
        };
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        let mut lines = 0u64;
        while let Some(record) = rx.blocking_recv() {
            serde_json::to_writer(&mut out, &record).map_err(|e| err(e.into()))?;
            out.write_all(b"\n").map_err(err)?;
            lines += 1;
        }
        out.flush().map_err(err)?;
        Ok(lines)
    });
    Ok((tx, task))
}

/// Read a history file back.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRecord>, HistoryError> {
    let err = |source| HistoryError {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(err)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| err(e.into())))
        .collect()
}

/// Write `records` to a history file, one JSON line each.
pub fn write_history(path: &Path, records: &[HistoryRecord]) -> Result<(), HistoryError> {
    let err = |source| HistoryError {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    for r in records {
        serde_json::to_writer(&mut out, r).map_err(|e| err(e.into()))?;
        out.write_all(b"\n").map_err(err)?;
    }
    out.flush().map_err(err)
}

/// One load generator's history, for [`merge_generators`].
#[derive(Debug, Clone)]
pub struct GeneratorHistory {
    /// Its records, on its own run clock.
    pub records: Vec<HistoryRecord>,
    /// Its run clock's origin less the merged run's, µs on the merged run's clock.
    pub shift_us: i64,
    /// How far its clock may be off the merged run's, µs: every operation's interval is
    /// widened by this much at both ends.
    pub slack_us: u64,
}

/// In a merged history, generator `g`'s operation ids start at `(g + 1) × ID_STRIDE`.
pub const ID_STRIDE: u64 = 1 << 40;
/// In a merged history, generator `g`'s workers start at `(g + 1) × WORKER_STRIDE`.
pub const WORKER_STRIDE: usize = 1 << 20;

/// The histories of several generators as one, on the merged run's clock, in order of
/// invocation: ids and workers made distinct per generator, times moved by each one's shift,
/// and each interval widened by its clock's slack. Widening only drops orderings the clocks
/// cannot vouch for (an operation that ended before another began, by less than their
/// clocks' error, is taken as concurrent with it), so a checker of the merged history can
/// miss an anomaly that close, never report one that is not there.
pub fn merge_generators(parts: Vec<GeneratorHistory>) -> Vec<HistoryRecord> {
    let mut out = Vec::new();
    for (g, p) in parts.into_iter().enumerate() {
        let at = |us: u64, by: i64| (us as i64 + p.shift_us + by).max(0) as u64;
        let slack = p.slack_us as i64;
        for mut r in p.records {
            r.id = (g as u64 + 1) * ID_STRIDE + r.id % ID_STRIDE;
            r.worker = (g + 1) * WORKER_STRIDE + r.worker % WORKER_STRIDE;
            r.invoke_us = at(r.invoke_us, -slack);
            r.complete_us = at(r.complete_us, slack);
            out.push(r);
        }
    }
    out.sort_by_key(|r| (r.invoke_us, r.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, worker: usize, invoke_us: u64, complete_us: u64) -> HistoryRecord {
        HistoryRecord {
            id,
            worker,
            kind: OpKind::Update,
            key: "k".into(),
            value: Some(format!("v{id}")),
            expect: None,
            invoke_us,
            complete_us,
            outcome: Outcome::Ok,
            error: None,
            returned: None,
            applied: Some(true),
            index: None,
        }
    }

    #[test]
    fn merged_generators_get_distinct_ids_and_workers_and_widened_shifted_times() {
        let a = GeneratorHistory {
            records: vec![op(0, 0, 1_000, 2_000), op(1, 1, 5_000, 6_000)],
            shift_us: 500,
            slack_us: 100,
        };
        let b = GeneratorHistory {
            records: vec![op(0, 0, 2_000, 3_000)],
            shift_us: -1_500,
            slack_us: 700,
        };
        let m = merge_generators(vec![a, b]);
        let got: Vec<_> = m
            .iter()
            .map(|r| (r.id, r.worker, r.invoke_us, r.complete_us))
            .collect();
        assert_eq!(
            got,
            vec![
                (2 * ID_STRIDE, 2 * WORKER_STRIDE, 0, 2_200),
                (ID_STRIDE, WORKER_STRIDE, 1_400, 2_600),
                (ID_STRIDE + 1, WORKER_STRIDE + 1, 5_400, 6_600),
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merged.jsonl");
        write_history(&path, &m).unwrap();
        assert_eq!(read_history(&path).unwrap(), m);
    }

    #[tokio::test]
    async fn records_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (tx, task) = spawn_writer(&path).unwrap();
        let record = HistoryRecord {
            id: 7,
            worker: 2,
            kind: OpKind::ReadModifyWrite,
            key: "k1".into(),
            value: Some("v2".into()),
            expect: Some(None),
            invoke_us: 10,
            complete_us: 20,
            outcome: Outcome::Ok,
            error: None,
            returned: Some("v2".into()),
            applied: Some(true),
            index: Some(42),
        };
        tx.send(record.clone()).unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap().unwrap(), 1);
        assert_eq!(read_history(&path).unwrap(), vec![record]);
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(line.contains("\"expect\":null"), "{line}");
    }
}
