//! The search for one key: Wing & Gong's algorithm with Lowe's memo, over a doubly-linked
//! list of call and return events.
//!
//! The list holds every operation's call and (for completed ones) its return, in time order,
//! calls before returns at equal times (the clock cannot tell which came first, so the two are
//! treated as concurrent, which can only accept more). An operation whose call comes before
//! the first return still in the list is *minimal*: nothing still pending must come before it.
//! The search repeatedly takes a minimal operation that the register allows, lifts its events
//! out of the list and records `(linearized set, value)` in the memo; when it meets a return
//! first, that operation could not be placed and the last choice is undone (the stack holds
//! the value before each choice).
//!
//! **Unknown outcomes.** An operation whose outcome is unknown may have taken effect at any
//! moment after its call, long after the client gave up, or never. It gets a call event and
//! no return event (its return is at +∞): it never forces anything to wait, it can be
//! linearized whenever it is reached, and the search succeeds as soon as every *completed*
//! operation is linearized, leaving the unknown ones that were not needed out: those are the
//! ones that never took effect. Linearizing an unknown operation where it would not change the
//! register is the same as leaving it out, so the search only tries it where it would.
//!
//! **An unknown operation is placed only where something observes it.** If an unknown
//! operation is placed and the next one placed is a blind write, the write hides it: leaving
//! the unknown one out gives the same register from then on, and leaves it free to be placed
//! later. So that order is never tried; the alternative without it is. Whether the last
//! operation placed was unknown is part of the configuration the memo records, since what may
//! come next depends on it. Without this, every unknown operation that never took effect is
//! tried at every step of the history, and each try explores the concurrency around it.
//!
//! **Unknown operations nothing needs come last, and only for a refused swap.** An unknown
//! write whose value no operation reads or expects can only matter by making possible a
//! refused swap that expects the value the register holds (anything else that could follow
//! it is a blind write, which it may not precede, or was possible before it); mostly it never
//! took effect. The scan tries such operations after all others and only when such a swap is
//! waiting, so the world without one is searched first, and the memo then cuts off the worlds
//! with it (see the memo). Unknown operations whose value is read later most likely took
//! effect and are tried in order.
//!
//! **Read-only operations are taken at once.** A minimal read (or refused swap) that the
//! register allows is linearized without trying the alternatives: in any linearization of the
//! rest, moving it to the front keeps it valid (it changes nothing, and being minimal, nothing
//! pending had to precede it). So if the configuration after it fails, the one before fails
//! too, and undoing it undoes the choice before it as well. On read-heavy histories this
//! removes most of the branching.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::events::{Events, HEAD, NIL};
use super::history::KeyHistory;
use super::memo::{Memo, OpSet};
use super::model::{Action, Value};

/// How often (in steps) the search looks at the clock and the cancel flag.
const CHECK_EVERY: u64 = 1024;

/// When to give up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits<'a> {
    /// Stop at this instant.
    pub deadline: Instant,
    /// Stop when this is set.
    pub cancel: Option<&'a AtomicBool>,
}

impl Limits<'_> {
    fn stop(&self) -> Option<Stop> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Some(Stop::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(Stop::TimeLimit)
        } else {
            None
        }
    }
}

/// Why a search stopped before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The key's time limit passed.
    TimeLimit,
    /// The caller cancelled the check.
    Cancelled,
}

/// The evidence of a key that is not linearizable: the deepest configuration reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The longest linearizable prefix found: operation indices in linearization order.
    pub prefix: Vec<usize>,
    /// The operation that could not be placed after it: the first to return among those
    /// left, which no choice of the others could make possible.
    pub stuck: usize,
    /// The register after the prefix.
    pub state: Value,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    Violation(Violation),
    /// The search stopped first.
    Undecided(Stop),
}

/// How much work the search did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Effort {
    /// Loop iterations.
    pub steps: u64,
    /// Configurations in the memo.
    pub configs: usize,
    /// Times a configuration was reached again and cut off by the memo.
    pub revisits: u64,
}

/// One choice on the stack.
#[derive(Debug, Clone, Copy)]
struct Frame {
    op: u32,
    /// The memo entry of the configuration this operation led to.
    entry: u32,
    /// The register before the operation.
    before: Value,
    /// Taken without alternatives (read-only, see the module notes).
    forced: bool,
}

/// The deepest configuration seen, kept up to date cheaply: the stack below `low` has not
/// changed since the last snapshot, so only the part above it is copied.
struct Deepest {
    prefix: Vec<usize>,
    stuck: Option<usize>,
    state: Value,
    low: usize,
}

impl Deepest {
    fn offer(&mut self, stack: &[Frame], stuck: u32, state: Value) {
        if self.stuck.is_some() && stack.len() <= self.prefix.len() {
            return;
        }
        self.prefix.truncate(self.low);
        self.prefix
            .extend(stack[self.low..].iter().map(|f| f.op as usize));
        self.low = stack.len();
        self.stuck = Some(stuck as usize);
        self.state = state;
    }
}

/// Whether a minimal refused swap expects the value the register holds: the only operation
/// that an unknown write nothing needs could make possible.
fn refused_waits(ev: &Events, h: &KeyHistory<'_>, state: Value) -> bool {
    let mut n = ev.next[HEAD as usize];
    while n != NIL && ev.is_call[n as usize] {
        if h.ops[ev.op[n as usize] as usize].action == (Action::CasRefused { expect: state }) {
            return true;
        }
        n = ev.next[n as usize];
    }
    false
}

/// Searches one key's history for a linearization.
pub(crate) fn search(h: &KeyHistory<'_>, limits: &Limits<'_>) -> (Verdict, Effort) {
    let mut s = Searcher::new(h);
    loop {
        if s.left == 0 {
            return (Verdict::Linearizable, s.effort());
        }
        if s.steps.is_multiple_of(CHECK_EVERY)
            && let Some(stop) = limits.stop()
        {
            return (Verdict::Undecided(stop), s.effort());
        }
        s.steps += 1;

        // The node to place now, if any: in a fresh configuration a minimal read-only
        // operation the register allows, taken without alternatives (module notes); else the
        // next call in the scan that the register allows.
        let mut pick = None;
        if s.fresh {
            pick = s.minimal_read_only();
        }
        if pick.is_none() {
            pick = s.scan();
        }
        if let Some(node) = pick
            && s.place(node)
        {
            continue;
        }
        if let Some(violation) = s.backtrack() {
            return (violation, s.effort());
        }
    }
}

/// The search's state: the configuration (the operations placed, in `set`, `stack` and the
/// lifted events; the register), where the scan is, and the memo.
struct Searcher<'a, 'h> {
    h: &'a KeyHistory<'h>,
    ev: Events,
    set: OpSet,
    /// Each operation's bit in `set`.
    bit: Vec<usize>,
    /// Unknown operations whose value no operation needs: tried last (module notes).
    late: Vec<bool>,
    memo: Memo,
    stack: Vec<Frame>,
    deepest: Deepest,
    /// The register.
    state: Value,
    /// Completed operations not yet placed.
    left: usize,
    /// Where the scan is.
    cur: u32,
    /// A configuration just entered, not yet searched for read-only operations to take.
    fresh: bool,
    /// The scan tries the operations that may be needed first, then (from the head again)
    /// the unknown ones whose value nothing needs.
    late_pass: bool,
    steps: u64,
    revisits: u64,
}

impl<'a, 'h> Searcher<'a, 'h> {
    fn new(h: &'a KeyHistory<'h>) -> Self {
        let ev = Events::new(h);
        let required = h.ops.iter().filter(|o| !o.optional).count();
        let set = OpSet::new(required, h.ops.len() - required);
        let (mut next_req, mut next_opt) = (0, 0);
        let bit: Vec<usize> = h
            .ops
            .iter()
            .map(|o| {
                if o.optional {
                    next_opt += 1;
                    set.optional_bit(next_opt - 1)
                } else {
                    next_req += 1;
                    next_req - 1
                }
            })
            .collect();
        // Unknown operations whose value no operation needs are tried last (module notes).
        let needed: std::collections::HashSet<Value> =
            h.ops.iter().filter_map(|o| o.action.needs()).collect();
        let late: Vec<bool> = h
            .ops
            .iter()
            .map(|o| o.optional && o.action.writes().is_none_or(|v| !needed.contains(&v)))
            .collect();
        let cur = ev.next[HEAD as usize];
        Searcher {
            h,
            ev,
            set,
            bit,
            late,
            memo: Memo::default(),
            stack: Vec::new(),
            deepest: Deepest {
                prefix: Vec::new(),
                stuck: None,
                state: h.initial,
                low: 0,
            },
            state: h.initial,
            left: required,
            cur,
            fresh: true,
            late_pass: false,
            steps: 0,
            revisits: 0,
        }
    }

    fn effort(&self) -> Effort {
        Effort {
            steps: self.steps,
            configs: self.memo.len(),
            revisits: self.revisits,
        }
    }

    /// In a configuration just entered: the first minimal read-only operation the register
    /// allows, if any. The scan starts again from the head.
    #[inline]
    fn minimal_read_only(&mut self) -> Option<u32> {
        let (h, ev) = (self.h, &self.ev);
        self.fresh = false;
        let mut pick = None;
        let mut n = ev.next[HEAD as usize];
        while n != NIL && ev.is_call[n as usize] {
            let o = &h.ops[ev.op[n as usize] as usize];
            if o.action.is_read_only() && o.action.apply(self.state).is_some() {
                pick = Some(n);
                break;
            }
            n = ev.next[n as usize];
        }
        self.cur = ev.next[HEAD as usize];
        self.late_pass = false;
        pick
    }

    /// The next call in the scan that the register allows and that is worth placing; `None`
    /// when the scan meets a return first (that operation cannot be placed here).
    #[inline]
    fn scan(&mut self) -> Option<u32> {
        let h = self.h;
        // Whether the last operation placed is an unknown one that nothing has observed yet:
        // then a blind write may not come next (module notes).
        let unobserved = self
            .stack
            .last()
            .is_some_and(|f| h.ops[f.op as usize].optional);
        while self.cur != NIL {
            let node = self.cur as usize;
            let op = self.ev.op[node];
            if !self.ev.is_call[node] {
                // The others tried; now the unknown ones nothing needs, which can only help a
                // refused swap of the value the register holds (module notes).
                if !self.late_pass && refused_waits(&self.ev, h, self.state) {
                    self.late_pass = true;
                    self.cur = self.ev.next[HEAD as usize];
                    continue;
                }
                self.deepest.offer(&self.stack, op, self.state);
                return None;
            }
            let o = &h.ops[op as usize];
            let masked = unobserved && matches!(o.action, Action::Write(_));
            // Read-only operations were taken above if the register allows them; an unknown
            // operation that changes nothing is the same as leaving it out.
            let useful = self.late[op as usize] == self.late_pass
                && !o.action.is_read_only()
                && !masked
                && o.action
                    .apply(self.state)
                    .is_some_and(|after| !(o.optional && after == self.state));
            if useful {
                return Some(self.cur);
            }
            self.cur = self.ev.next[node];
        }
        None
    }

    /// Places the operation of `node` unless the memo knows the configuration it leads to.
    /// Returns whether the search goes on from here: `false` when a read-only operation leads
    /// to a configuration known to fail, so this one fails too (module notes) and must be
    /// undone.
    #[inline]
    fn place(&mut self, node: u32) -> bool {
        let h = self.h;
        let op = self.ev.op[node as usize];
        let o = &h.ops[op as usize];
        let after = o.action.apply(self.state).unwrap_or(self.state);
        let forced = o.action.is_read_only();
        self.set.insert(self.bit[op as usize]);
        if let Some(entry) = self.memo.enter(&self.set, after, o.optional) {
            self.ev.lift(op);
            self.stack.push(Frame {
                op,
                entry,
                before: self.state,
                forced,
            });
            self.state = after;
            self.left -= usize::from(!o.optional);
            self.fresh = true;
            return true;
        }
        self.set.remove(self.bit[op as usize]);
        self.revisits += 1;
        if !forced {
            self.cur = self.ev.next[node as usize];
            return true;
        }
        false
    }

    /// Undoes choices up to the last one that had alternatives, and goes on after it; with
    /// none left, the key is not linearizable: the verdict.
    #[inline]
    fn backtrack(&mut self) -> Option<Verdict> {
        loop {
            let Some(f) = self.stack.pop() else {
                return Some(self.violation());
            };
            self.deepest.low = self.deepest.low.min(self.stack.len());
            self.memo.finish(f.entry);
            self.ev.unlift(f.op);
            self.set.remove(self.bit[f.op as usize]);
            self.state = f.before;
            self.left += usize::from(!self.h.ops[f.op as usize].optional);
            if !f.forced {
                self.cur = self.ev.next[self.ev.call_node[f.op as usize] as usize];
                self.late_pass = self.late[f.op as usize];
                return None;
            }
        }
    }

    /// The evidence, from the deepest configuration reached.
    fn violation(&mut self) -> Verdict {
        let Some(stuck) = self.deepest.stuck else {
            // Unreachable: a failure always meets a return first. Report the first completed
            // operation rather than panic.
            let stuck = self.h.ops.iter().position(|o| !o.optional).unwrap_or(0);
            return Verdict::Violation(Violation {
                prefix: Vec::new(),
                stuck,
                state: self.h.initial,
            });
        };
        Verdict::Violation(Violation {
            prefix: std::mem::take(&mut self.deepest.prefix),
            stuck,
            state: self.deepest.state,
        })
    }
}
