//! A drill followed live: the view on the terminal while the drill runs.

use tokio_util::sync::CancellationToken;

use super::ViewSpec;
use super::metrics::Metrics;
use crate::drill::{Drill, DrillError, DrillOutcome};

/// Starts live metrics on `addr` when asked, and says where on stderr.
pub async fn metrics(addr: Option<&str>) -> Result<Option<Metrics>, String> {
    let Some(addr) = addr else { return Ok(None) };
    let m = Metrics::listen(addr).await?;
    eprintln!("raftdrill: metrics at http://{}/metrics", m.addr());
    Ok(Some(m))
}

/// Whether the live view should be shown: asked for, and stdout is a terminal.
pub fn wanted(no_tui: bool) -> bool {
    use std::io::IsTerminal;
    !no_tui && std::io::stdout().is_terminal()
}

/// Runs a prepared drill, with the live view on the terminal when `tui`, and its figures on
/// `metrics` when given. The view reads the drill's channels at its own pace and returns once
/// the drill is done (or gone); q and Ctrl-C in it cancel `stop`, the same path as SIGINT.
pub async fn follow(
    drill: Drill,
    tui: bool,
    metrics: Option<&Metrics>,
    stop: CancellationToken,
) -> Result<DrillOutcome, DrillError> {
    if let Some(m) = metrics {
        m.follow(&drill.scenario().name, drill.watch());
    }
    if !tui {
        return drill.run(stop).await;
    }
    let view = tokio::spawn(super::run(
        ViewSpec::of(drill.scenario()),
        drill.watch(),
        stop.clone(),
    ));
    let outcome = drill.run(stop).await;
    match view.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("raftdrill: the live view failed: {e}"),
        Err(e) => eprintln!("raftdrill: the live view failed: {e}"),
    }
    outcome
}
