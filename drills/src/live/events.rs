//! [`EventLog`]: what happened during the run, newest first: leader changes, faults fired and
//! healed, error bursts, phase changes. Bounded, so a long run cannot grow it without limit.

use std::collections::VecDeque;

/// How many events are kept.
pub const CAPACITY: usize = 200;

/// What kind of thing happened (it picks the colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The leader changed or was lost.
    Leader,
    /// A fault fired (or failed to).
    Fault,
    /// A fault was undone.
    Heal,
    /// A second with many errors.
    Errors,
    /// The drill moved to another phase.
    Phase,
    /// A check finished (the linearizability check, say).
    Check,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the start of the run.
    pub t: f64,
    /// What kind.
    pub kind: Kind,
    /// One line for people.
    pub text: String,
    id: u64,
}

/// The log, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    events: VecDeque<Event>,
    next_id: u64,
}

impl EventLog {
    /// Adds an event and returns its id (for [`EventLog::amend`]).
    pub fn push(&mut self, t: f64, kind: Kind, text: impl Into<String>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.events.push_front(Event {
            t,
            kind,
            text: text.into(),
            id,
        });
        self.events.truncate(CAPACITY);
        id
    }

    /// Rewrites the text of event `id` (an error burst that goes on); false if it is gone.
    pub fn amend(&mut self, id: u64, text: impl Into<String>) -> bool {
        match self.events.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.text = text.into();
                true
            }
            None => false,
        }
    }

    /// The events, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing happened yet.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_bounded() {
        let mut log = EventLog::default();
        for i in 0..(CAPACITY + 5) {
            log.push(i as f64, Kind::Phase, format!("e{i}"));
        }
        assert_eq!(log.len(), CAPACITY);
        let first = log.iter().next().unwrap();
        assert_eq!(first.text, format!("e{}", CAPACITY + 4));
        assert_eq!(log.iter().last().unwrap().text, "e5");
    }

    #[test]
    fn amend_rewrites_in_place() {
        let mut log = EventLog::default();
        let id = log.push(1.0, Kind::Errors, "burst");
        log.push(2.0, Kind::Leader, "leader 2");
        assert!(log.amend(id, "burst, 3 s"));
        assert_eq!(log.iter().nth(1).unwrap().text, "burst, 3 s");
        assert!(!log.amend(999, "x"));
    }
}
