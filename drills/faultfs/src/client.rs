//! [`FaultFsClient`]: the typed async client of one filesystem process's control socket.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::control::{Request, Response};
use crate::loss::PowerLoss;
use crate::mode::Mode;
use crate::stats::{PowerLossReport, Stats};

/// Talking to a filesystem process failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The control socket could not be reached.
    #[error("cannot connect to faultfs control socket {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("faultfs control connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The process closed the connection without answering (it is stopping or died).
    #[error("faultfs closed the control connection without answering")]
    Closed,
    /// The process refused the request (a bad mode) or could not carry it out.
    #[error("faultfs refused: {0}")]
    Refused(String),
    /// An answer that does not belong to the request.
    #[error("unexpected faultfs answer: {0}")]
    Protocol(String),
}

/// A connection to one filesystem process. Requests are answered in order; wrap calls in
/// `tokio::time::timeout` to bound them (a power loss takes as long as undoing its journal).
#[derive(Debug)]
pub struct FaultFsClient {
    stream: BufReader<UnixStream>,
}

impl FaultFsClient {
    /// Connects to the control socket (the path the process wrote to its `--ready` file).
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            stream: BufReader::new(stream),
        })
    }

    async fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let mut line = serde_json::to_string(req).expect("requests serialize");
        line.push('\n');
        self.stream.get_mut().write_all(line.as_bytes()).await?;
        let mut answer = String::new();
        if self.stream.read_line(&mut answer).await? == 0 {
            return Err(ClientError::Closed);
        }
        match serde_json::from_str(&answer) {
            Ok(Response::Error { message }) => Err(ClientError::Refused(message)),
            Ok(r) => Ok(r),
            Err(e) => Err(ClientError::Protocol(format!("{e}: {}", answer.trim()))),
        }
    }

    /// Switches the fault mode (a bad mode, e.g. a probability of 2, is refused).
    pub async fn set_mode(&mut self, mode: Mode) -> Result<(), ClientError> {
        match self.call(&Request::SetMode { mode }).await? {
            Response::Ok => Ok(()),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }

    /// Drops what is not yet durable, keeping of the unsynced file data what `loss` says
    /// (`PowerLoss::default()`: nothing). Send it after the node using the filesystem was
    /// killed and reaped, so none of its writes can land afterwards.
    pub async fn power_loss(&mut self, loss: PowerLoss) -> Result<PowerLossReport, ClientError> {
        match self.call(&Request::PowerLoss(loss)).await? {
            Response::PowerLoss { report } => Ok(report),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }

    /// Counters and state.
    pub async fn stats(&mut self) -> Result<Stats, ClientError> {
        match self.call(&Request::Stats).await? {
            Response::Stats { stats } => Ok(stats),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }

    /// Asks the process to unmount and exit.
    pub async fn stop(&mut self) -> Result<(), ClientError> {
        match self.call(&Request::Stop).await? {
            Response::Ok => Ok(()),
            other => Err(ClientError::Protocol(format!("{other:?}"))),
        }
    }
}
