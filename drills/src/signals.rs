//! The stop signals raftdrill reacts to: SIGINT (Ctrl-C) and SIGTERM.
//!
//! Commands that run goose attacks (`run`, `load`) take SIGINT through `loadgen::claim_ctrl_c`
//! and only SIGTERM here: goose would otherwise install its own Ctrl-C handler (over anything
//! else), stop on the first press and `process::exit` on the second, skipping the heal and the
//! results. Commands without goose (`cluster`, `node`) use [`shutdown_signal`].

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Installed stop-signal handlers.
pub struct StopSignals {
    int: Option<Signal>,
    term: Signal,
}

impl StopSignals {
    /// Installs SIGINT and SIGTERM handlers now. Needs a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            int: Some(signal(SignalKind::interrupt())?),
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Installs a SIGTERM handler only, for programs whose SIGINT goes elsewhere (to
    /// `loadgen::claim_ctrl_c`, which must stay the only SIGINT handler).
    pub fn install_term() -> std::io::Result<Self> {
        Ok(Self {
            int: None,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first SIGINT (if installed) or SIGTERM.
    pub async fn recv(mut self) {
        let int = async {
            match &mut self.int {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = int => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM (handlers installed at the first poll).
pub async fn shutdown_signal() {
    match StopSignals::install() {
        Ok(s) => s.recv().await,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGINT/SIGTERM; only Ctrl-C stops");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
