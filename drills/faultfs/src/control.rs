//! The control channel: a Unix socket speaking line-delimited JSON, one request and one
//! response per line, any number of requests per connection.
//!
//! ```text
//! → {"op":"set-mode","mode":{"mode":"delay","latency":"50ms","jitter":"10ms","ops":["fsync"]}}
//! ← {"result":"ok"}
//! → {"op":"power-loss","keep":"torn","seed":7}
//! ← {"result":"power-loss","report":{"keep":"torn","seed":7,"files_reverted":1,"writes_kept":2,"writes_torn":1,...}}
//! → {"op":"stats"}
//! ← {"result":"stats","stats":{"mode":{"mode":"pass"},"reads":12,...}}
//! → {"op":"stop"}
//! ← {"result":"ok"}
//! ```
//!
//! By hand: `echo '{"op":"stats"}' | socat - UNIX-CONNECT:faultfs.sock`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use crate::faults::Faults;
use crate::loss::PowerLoss;
use crate::mode::Mode;
use crate::stats::{Counters, PowerLossReport, Stats, bump};
use crate::vfs::Vfs;

/// A request to a filesystem process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Switch the fault mode.
    SetMode {
        /// The new mode.
        mode: Mode,
    },
    /// Drop what is not yet durable, or keep part of the unsynced file data as `keep` says
    /// (send it after the node was killed and reaped). `{"op":"power-loss"}` keeps nothing.
    PowerLoss(PowerLoss),
    /// Counters and state.
    Stats,
    /// Unmount and exit.
    Stop,
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    /// Done.
    Ok,
    /// What the power loss dropped.
    PowerLoss {
        /// The figures.
        report: PowerLossReport,
    },
    /// Counters and state.
    Stats {
        /// The figures.
        stats: Stats,
    },
    /// The request was refused or failed.
    Error {
        /// Why, in one line.
        message: String,
    },
}

/// What the control server acts on.
pub(crate) struct Target {
    pub(crate) vfs: Arc<Vfs>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) counters: Arc<Counters>,
    /// Notified by a `stop` request.
    pub(crate) stop: Arc<Notify>,
}

impl Target {
    async fn handle(&self, req: Request) -> Response {
        match req {
            Request::SetMode { mode } => match mode.validate() {
                Ok(()) => {
                    self.faults.set_mode(mode);
                    Response::Ok
                }
                Err(message) => Response::Error { message },
            },
            Request::PowerLoss(loss) => {
                let vfs = self.vfs.clone();
                match tokio::task::spawn_blocking(move || vfs.power_loss(loss)).await {
                    Ok(report) => {
                        bump(&self.counters.power_losses);
                        tracing::info!(?report, "power loss");
                        Response::PowerLoss { report }
                    }
                    Err(e) => Response::Error {
                        message: format!("power loss failed: {e}"),
                    },
                }
            }
            Request::Stats => {
                let vfs = self.vfs.clone();
                match tokio::task::spawn_blocking(move || vfs.unsynced()).await {
                    Ok(unsynced) => Response::Stats {
                        stats: self.counters.snapshot(self.faults.mode(), unsynced),
                    },
                    Err(e) => Response::Error {
                        message: format!("stats failed: {e}"),
                    },
                }
            }
            Request::Stop => {
                self.stop.notify_one();
                Response::Ok
            }
        }
    }

    async fn serve_conn(self: Arc<Self>, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            let response = match serde_json::from_str::<Request>(&line) {
                Ok(req) => self.handle(req).await,
                Err(e) => Response::Error {
                    message: format!("bad request: {e}"),
                },
            };
            let mut text = serde_json::to_string(&response).expect("responses serialize");
            text.push('\n');
            if write.write_all(text.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// Answers connections on `listener` until the task is dropped.
pub(crate) async fn serve(listener: UnixListener, target: Arc<Target>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(target.clone().serve_conn(stream));
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Sends `stop` without a runtime (for `Drop`), waiting at most `timeout` for each step.
pub(crate) fn stop_blocking(socket: &Path, timeout: Duration) -> std::io::Result<()> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(b"{\"op\":\"stop\"}\n")?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_have_the_documented_shape() {
        let r: Request =
            serde_json::from_str(r#"{"op":"set-mode","mode":{"mode":"error","probability":1.0}}"#)
                .unwrap();
        assert_eq!(
            r,
            Request::SetMode {
                mode: Mode::Error {
                    probability: 1.0,
                    seed: 0,
                    on: crate::mode::ErrorOn::WriteOrFsync,
                    drop_dirty: false,
                }
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"power-loss"}"#).unwrap(),
            Request::PowerLoss(PowerLoss::default())
        );
        let torn = Request::PowerLoss(PowerLoss {
            keep: crate::loss::Keep::Torn,
            seed: 7,
        });
        let text = r#"{"op":"power-loss","keep":"torn","seed":7}"#;
        assert_eq!(serde_json::to_string(&torn).unwrap(), text);
        assert_eq!(serde_json::from_str::<Request>(text).unwrap(), torn);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"power-loss","keep":"reordered","seed":5}"#)
                .unwrap(),
            Request::PowerLoss(PowerLoss {
                keep: crate::loss::Keep::Reordered,
                seed: 5,
            })
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"power-loss","keep":"all"}"#).is_err());
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"power-loss","kep":"torn"}"#).is_err(),
            "a misspelt field is refused"
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Response::Ok).unwrap(),
            r#"{"result":"ok"}"#
        );
        let e = Response::Error {
            message: "no".into(),
        };
        assert_eq!(
            serde_json::from_str::<Response>(&serde_json::to_string(&e).unwrap()).unwrap(),
            e
        );
    }
}
