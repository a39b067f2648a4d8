//! The files a run writes while it runs: `history.jsonl` and the interval log, each by a task
//! of its own that ends with its last line.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{LoadConfig, LoadError};
use crate::clock::RunClock;
use crate::history::{HistoryRecord, HistoryTask, spawn_writer};
use crate::output::hlog::{self, HlogTask};
use crate::stream::Interval;

/// The writers of one run.
pub(super) struct Writers {
    /// Every operation, for the history (when one is kept).
    pub history: Option<mpsc::UnboundedSender<HistoryRecord>>,
    history_task: Option<HistoryTask>,
    /// Every second's histograms: the interval log's and the caller's streams.
    pub intervals: Vec<mpsc::UnboundedSender<Interval>>,
    hlog_task: Option<HlogTask>,
}

impl Writers {
    /// Opens the files `config` asks for; `stream` also gets every second's histograms.
    pub fn open(
        config: &LoadConfig,
        clock: &Arc<RunClock>,
        stream: Option<mpsc::UnboundedSender<Interval>>,
    ) -> Result<Self, LoadError> {
        let (history, history_task) = match config.history_file() {
            Some(path) => {
                let (tx, task) = spawn_writer(path)?;
                (Some(tx), Some(task))
            }
            None => (None, None),
        };
        let mut intervals: Vec<_> = stream.into_iter().collect();
        let hlog_task = match &config.hlog_path {
            Some(path) => {
                let (tx, task) = hlog::spawn_writer(path, clock.clone())?;
                intervals.push(tx);
                Some(task)
            }
            None => None,
        };
        Ok(Self {
            history,
            history_task,
            intervals,
            hlog_task,
        })
    }

    /// Lets the writers finish their files; the lines written to the history, when one was
    /// kept.
    pub async fn close(self) -> Result<Option<u64>, LoadError> {
        drop(self.history);
        drop(self.intervals);
        let lines = match self.history_task {
            Some(task) => Some(
                task.await
                    .map_err(|e| LoadError::Config(format!("history writer: {e}")))??,
            ),
            None => None,
        };
        if let Some(task) = self.hlog_task {
            task.await
                .map_err(|e| LoadError::Config(format!("interval log writer: {e}")))??;
        }
        Ok(lines)
    }
}
