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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
