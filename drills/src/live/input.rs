//! Keys: what a terminal event means to the view ([`action_for`]), and [`drain`], which reads
//! whatever events are waiting without blocking.
//!
//! Why polling and not a reader thread or crossterm's `EventStream`: `EventStream` needs
//! crossterm's `event-stream` feature, which this workspace does not enable; a thread blocked in
//! `event::read()` cannot be cancelled, so it would outlive the view, swallow the next key
//! typed at the shell, and hold up the tokio runtime's shutdown (which waits for blocking
//! tasks). `event::poll(Duration::ZERO)` on each frame returns at once, so the UI task never
//! blocks, and a key waits at most one frame (200 ms).

use std::io;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// At most this many events are handled per frame, so a flood of input cannot starve drawing.
const MAX_EVENTS_PER_FRAME: usize = 64;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `q` or Ctrl-C: stop the drill gracefully (a second time: leave the view at once).
    Stop,
    /// `t`: switch the charts between the last 60 s and the whole run.
    ToggleWindow,
    /// `?`: show or hide the help.
    ToggleHelp,
    /// Esc: hide the help.
    CloseHelp,
    /// The terminal changed size: draw again.
    Redraw,
}

/// The action a terminal event stands for, if any.
pub fn action_for(ev: &Event) -> Option<Action> {
    match ev {
        Event::Key(key) => key_action(key),
        Event::Resize(..) => Some(Action::Redraw),
        _ => None,
    }
}

fn key_action(key: &KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => Some(Action::Stop),
        KeyCode::Char('q') | KeyCode::Char('Q') if !ctrl => Some(Action::Stop),
        KeyCode::Char('t') | KeyCode::Char('T') if !ctrl => Some(Action::ToggleWindow),
        KeyCode::Char('?') | KeyCode::Char('h') if !ctrl => Some(Action::ToggleHelp),
        KeyCode::Esc => Some(Action::CloseHelp),
        _ => None,
    }
}

/// The actions of the events waiting now; never blocks.
pub fn drain() -> io::Result<Vec<Action>> {
    let mut actions = Vec::new();
    for _ in 0..MAX_EVENTS_PER_FRAME {
        if !event::poll(Duration::ZERO)? {
            break;
        }
        actions.extend(action_for(&event::read()?));
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, mods))
    }

    #[test]
    fn keys_map_to_actions() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            action_for(&key(KeyCode::Char('q'), none)),
            Some(Action::Stop)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Stop)
        );
        assert_eq!(action_for(&key(KeyCode::Char('c'), none)), None);
        assert_eq!(
            action_for(&key(KeyCode::Char('t'), none)),
            Some(Action::ToggleWindow)
        );
        assert_eq!(
            action_for(&key(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            action_for(&key(KeyCode::Esc, none)),
            Some(Action::CloseHelp)
        );
        assert_eq!(action_for(&Event::Resize(100, 30)), Some(Action::Redraw));
        assert_eq!(action_for(&Event::FocusGained), None);
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        k.kind = KeyEventKind::Release;
        assert_eq!(action_for(&Event::Key(k)), None);
    }
}
