//! The ratatui live view of a running drill.
//!
//! It has three parts, kept apart so each can be tested alone:
//! - [`state`]: [`ViewState`], a pure fold of what the drill publishes (load snapshots, cluster
//!   views, fault records, the phase), with its pieces [`series`] (the chart ring buffers),
//!   [`board`] (the live threshold table), [`timeline`] (fault windows) and [`events`];
//! - [`panels`]: one small render function per panel, tested on ratatui's `TestBackend`;
//! - [`input`] (key → [`input::Action`]) and [`term`] (raw mode and the alternate screen, and
//!   their undoing on every exit path, panics included).
//!
//! This file only ties them together: every frame (200 ms) it drains the keys, borrows the
//! latest value of each watch channel (never waiting on one, so the load never waits on the
//! view), folds it into the state, and draws.

pub mod board;
pub mod capacity;
pub mod events;
pub mod follow;
pub mod input;
pub mod metrics;
pub mod panels;
pub mod series;
pub mod state;
pub mod term;
pub mod timeline;

#[cfg(test)]
mod fixture;

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use loadgen::thresholds::Thresholds;

use self::input::Action;
pub use self::state::ViewState;
use crate::drill::{DrillWatch, Phase};
use crate::scenario::{FaultSpec, Scenario};

/// What the view needs to know of the run before it starts.
#[derive(Debug, Clone)]
pub struct ViewSpec {
    /// The run's name for the header.
    pub name: String,
    /// Planned length of the load, seconds.
    pub total_s: f64,
    /// Open loop: late starts are shown.
    pub open_loop: bool,
    /// The threshold table.
    pub thresholds: Thresholds,
    /// The fault schedule.
    pub faults: Vec<FaultSpec>,
}

impl ViewSpec {
    /// The view of a scenario's run.
    pub fn of(s: &Scenario) -> Self {
        Self {
            name: s.name.clone(),
            total_s: s.load.duration.as_secs_f64(),
            open_loop: s.load.model.rate().is_some(),
            thresholds: s.load.thresholds.clone(),
            faults: s.faults.clone(),
        }
    }
}

/// Time between frames (5 fps).
pub const FRAME: Duration = Duration::from_millis(200);

/// What the loop does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Keep drawing.
    Continue,
    /// Leave the view.
    Leave,
}

/// Shows the live view on the terminal until the drill's phase is Done (then returns Ok), or
/// until the user presses q or Ctrl-C, which cancels `stop` (the same path as SIGINT: the drill
/// stops the load, heals, writes results; the view keeps drawing until phase Done). The
/// terminal is restored on every exit path, panics included (drop guard + panic hook).
///
/// Pressing q or Ctrl-C a second time while the drill winds down leaves the view at once (the
/// drill still finishes its cleanup). The view also leaves if the drill goes away without
/// reaching Done (its phase channel closes, as when the drill fails).
pub async fn run(
    spec: ViewSpec,
    mut watch: DrillWatch,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut term = term::Term::enter()?;
    let mut state = ViewState::new(&spec);
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        frames.tick().await;
        // A second stop counts only from the next frame on, so a double tap is one stop.
        state.stopping |= stop.is_cancelled();
        let was_stopping = state.stopping;
        let mut next = Next::Continue;
        for action in input::drain()? {
            if apply(&mut state, action, &stop, was_stopping) == Next::Leave {
                next = Next::Leave;
            }
        }
        if feed(&mut state, &mut watch) == Next::Leave {
            next = Next::Leave;
        }
        term.terminal().draw(|f| panels::draw(f, &state))?;
        if next == Next::Leave {
            return Ok(());
        }
    }
}

/// Applies a user action: the first Stop cancels `stop`; one while `was_stopping` leaves.
fn apply(
    state: &mut ViewState,
    action: Action,
    stop: &CancellationToken,
    was_stopping: bool,
) -> Next {
    match action {
        Action::Stop if was_stopping => return Next::Leave,
        Action::Stop => {
            state.stopping = true;
            stop.cancel();
        }
        Action::ToggleWindow => state.whole_run = !state.whole_run,
        Action::ToggleHelp => state.help = !state.help,
        Action::CloseHelp => state.help = false,
        Action::Redraw => {}
    }
    Next::Continue
}

/// Folds the latest value of every channel into `state`, without waiting on any. Leave once
/// the phase is Done or the drill has gone (its phase sender dropped).
fn feed(state: &mut ViewState, watch: &mut DrillWatch) -> Next {
    state.tick(watch.clock.now_s());
    let snapshot = watch.snapshots.borrow_and_update().clone();
    state.observe_snapshot(&snapshot);
    let view = watch.cluster.borrow_and_update().clone();
    state.observe_cluster(&view);
    // The fault executor holds this lock only to push or update a record.
    let records = watch
        .faults
        .lock()
        .map(|r| r.clone())
        .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
    state.observe_faults(&records);
    let notes = watch.notes.borrow_and_update().clone();
    state.observe_notes(&notes);
    let gone = watch.phase.has_changed().is_err();
    let phase = *watch.phase.borrow_and_update();
    state.observe_phase(phase);
    if phase == Phase::Done || gone {
        Next::Leave
    } else {
        Next::Continue
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::watch;

    use super::*;

    fn watch_of(phase: Phase) -> (DrillWatch, watch::Sender<Phase>) {
        let (_, snapshots) = watch::channel(fixture::snapshot(1.0, 300.0, 5.0, 0));
        let (_, cluster) = watch::channel(fixture::cluster(1.0, Some(1)));
        let (tx, phase) = watch::channel(phase);
        let w = DrillWatch {
            snapshots,
            cluster,
            phase,
            faults: Arc::new(Mutex::new(vec![fixture::fault(0.5, true)])),
            clock: Arc::new(loadgen::RunClock::new()),
            notes: watch::channel(vec!["linearizable: 3 keys".to_string()]).1,
        };
        (w, tx)
    }

    #[test]
    fn feed_folds_every_channel_and_leaves_at_done() {
        let mut s = ViewState::new(&fixture::spec());
        let (mut w, tx) = watch_of(Phase::Load);
        assert_eq!(feed(&mut s, &mut w), Next::Continue);
        assert_eq!(s.tps.last(), Some((1.0, 300.0)));
        assert_eq!(s.cluster.leader, Some(1));
        assert_eq!(s.timeline.windows().len(), 1);
        assert_eq!(s.phase_label(), "fault active");
        let checks = |s: &ViewState| {
            s.events
                .iter()
                .filter(|e| e.kind == events::Kind::Check)
                .count()
        };
        assert_eq!(checks(&s), 1, "the check note is in the event log");
        feed(&mut s, &mut w);
        assert_eq!(checks(&s), 1, "and only once");
        tx.send_replace(Phase::Done);
        assert_eq!(feed(&mut s, &mut w), Next::Leave);
    }

    #[test]
    fn feed_leaves_when_the_drill_is_gone() {
        let mut s = ViewState::new(&fixture::spec());
        let (mut w, tx) = watch_of(Phase::Load);
        drop(tx);
        assert_eq!(feed(&mut s, &mut w), Next::Leave);
    }

    #[test]
    fn q_stops_once_then_leaves() {
        let mut s = ViewState::new(&fixture::spec());
        let stop = CancellationToken::new();
        let act = |s: &mut ViewState, a| apply(s, a, &stop, false);
        assert_eq!(act(&mut s, Action::ToggleWindow), Next::Continue);
        assert!(s.whole_run);
        assert_eq!(act(&mut s, Action::ToggleHelp), Next::Continue);
        assert!(s.help);
        act(&mut s, Action::CloseHelp);
        assert!(!s.help);
        assert_eq!(act(&mut s, Action::Stop), Next::Continue);
        assert!(stop.is_cancelled() && s.stopping);
        assert_eq!(act(&mut s, Action::Stop), Next::Continue, "same frame");
        assert_eq!(apply(&mut s, Action::Stop, &stop, true), Next::Leave);
    }
}
