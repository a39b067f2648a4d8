//! The accept task behind a proxy's handle ([`LinkProxy`](super::LinkProxy),
//! [`AttributedProxy`](super::AttributedProxy)): told to stop and awaited on shutdown, aborted
//! when the handle drops. The task owns the `JoinSet` of its connection tasks, so ending it
//! ends them all and nothing outlives the proxy.

use std::future::Future;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running accept task and its stop signal.
#[derive(Debug)]
pub(super) struct AcceptTask {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl AcceptTask {
    /// Spawns the accept loop `run` makes from the receiving end of its stop signal (a send or
    /// a dropped sender both mean stop).
    pub(super) fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(stop_rx));
        AcceptTask {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Tells the task to stop and waits until it (and every connection task) has ended;
    /// returns whether it panicked.
    pub(super) async fn stop(&mut self) -> bool {
        if let Some(stop) = self.stop.take() {
            // An error means the accept task already ended, which is what we want.
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.is_err_and(|e| e.is_panic()),
            None => false,
        }
    }
}

impl Drop for AcceptTask {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // The accept task owns the connection tasks' `JoinSet`: dropping it (which the
            // abort does) aborts them all.
            task.abort();
        }
    }
}
