//! [`LoadConfig`]: a [`LoadSpec`] and where it runs; [`LoadError`].

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::EngineError;
use crate::history::HistoryError;
use crate::output::hlog;
use crate::spec::LoadSpec;
use crate::target::{TargetError, TargetKind};

/// Everything a load run needs: what the load is ([`LoadSpec`], whole) and the context of
/// this one run of it.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// What the load is.
    pub spec: LoadSpec,
    /// Node base URLs, `http://HOST:PORT`; operation `n` goes to node `n % len`.
    pub endpoints: Vec<String>,
    /// Which store the endpoints belong to.
    pub target: TargetKind,
    /// Seed of the operation sequence.
    pub seed: u64,
    /// Open loop: a slot that starts later than this after its intended time counts as late.
    pub late_tolerance: Duration,
    /// Where `history.jsonl` goes when the spec keeps a history.
    pub history_path: Option<PathBuf>,
    /// Goose engine only: write goose's HTML report here (e.g. `RUN/goose-report.html`).
    pub goose_report: Option<PathBuf>,
    /// Silence goose's console output (set while a live view is up).
    pub quiet: bool,
    /// Offer the stream of completed operations through [`crate::LoadRun::take_ops`].
    pub stream_ops: bool,
    /// Start the clock no earlier than this moment on the wall clock (generators on several
    /// machines told one moment share one origin; see [`crate::stream`]).
    pub start_at: Option<std::time::SystemTime>,
    /// Write every second's latency histograms to this HdrHistogram interval log (`.hlog`).
    pub hlog_path: Option<PathBuf>,
}

impl LoadConfig {
    /// `spec` against the reference cluster at `endpoints`, seed 1, 10 ms late tolerance,
    /// no files, no stream, quiet.
    pub fn new(spec: LoadSpec, endpoints: Vec<String>) -> Self {
        Self {
            spec,
            endpoints,
            target: TargetKind::Reference,
            seed: 1,
            late_tolerance: Duration::from_millis(10),
            history_path: None,
            goose_report: None,
            quiet: true,
            stream_ops: false,
            start_at: None,
            hlog_path: None,
        }
    }

    /// The history file, when the spec keeps a history and the run has a place for it.
    pub(crate) fn history_file(&self) -> Option<&PathBuf> {
        self.history_path.as_ref().filter(|_| self.spec.history)
    }
}

/// A load run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target adapter could not be built.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The history could not be written.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The interval log could not be written.
    #[error(transparent)]
    Hlog(#[from] hlog::HlogError),
    /// Goose failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The configuration makes no sense.
    #[error("bad load configuration: {0}")]
    Config(String),
}
