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

use super::history::KeyHistory;
use super::memo::{Memo, OpSet};
use super::model::{Action, Value};

/// How often (in steps) the search looks at the clock and the cancel flag.
const CHECK_EVERY: u64 = 1024;

/// End of the list.
const NIL: u32 = u32::MAX;
/// The list head, a sentinel with no operation.
const HEAD: u32 = 0;

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

/// The event list: node 0 is the head; node `k ≥ 1` is a call or a return.
struct Events {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// The operation of each node.
    op: Vec<u32>,
    is_call: Vec<bool>,
    call_node: Vec<u32>,
    /// `NIL` for operations with no return (unknown outcomes).
    return_node: Vec<u32>,
}

impl Events {
    fn new(h: &KeyHistory<'_>) -> Self {
        // (time, 0 call / 1 return, op): calls sort before returns at the same time.
        let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(h.ops.len() * 2);
        for (i, o) in h.ops.iter().enumerate() {
            events.push((o.invoke, 0, i as u32));
            if let Some(end) = o.complete {
                events.push((end, 1, i as u32));
            }
        }
        events.sort_unstable();
        let nodes = events.len() + 1;
        let mut ev = Events {
            next: (1..=nodes as u32).collect(),
            prev: (0..nodes as u32).map(|k| k.wrapping_sub(1)).collect(),
            op: vec![u32::MAX; nodes],
            is_call: vec![false; nodes],
            call_node: vec![NIL; h.ops.len()],
            return_node: vec![NIL; h.ops.len()],
        };
        ev.next[nodes - 1] = NIL;
        ev.prev[0] = NIL;
        for (k, &(_, kind, op)) in events.iter().enumerate() {
            let node = k + 1;
            ev.op[node] = op;
            ev.is_call[node] = kind == 0;
            if kind == 0 {
                ev.call_node[op as usize] = node as u32;
            } else {
                ev.return_node[op as usize] = node as u32;
            }
        }
        ev
    }

    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Puts back a node unlinked last (dancing links: its own pointers were left as they were).
    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != NIL {
            self.prev[n as usize] = node;
        }
    }

    fn lift(&mut self, op: u32) {
        self.unlink(self.call_node[op as usize]);
        let ret = self.return_node[op as usize];
        if ret != NIL {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, op: u32) {
        let ret = self.return_node[op as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(self.call_node[op as usize]);
    }
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
    let mut ev = Events::new(h);
    let required = h.ops.iter().filter(|o| !o.optional).count();
    let mut set = OpSet::new(required, h.ops.len() - required);
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

    let mut memo = Memo::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut deepest = Deepest {
        prefix: Vec::new(),
        stuck: None,
        state: h.initial,
        low: 0,
    };
    let mut state = h.initial;
    let mut left = required;
    let mut cur = ev.next[HEAD as usize];
    // A configuration just entered, not yet searched for read-only operations to take.
    let mut fresh = true;
    // The scan tries the operations that may be needed first, then (from the head again)
    // the unknown ones whose value nothing needs.
    let mut late_pass = false;
    let mut steps = 0u64;
    let mut revisits = 0u64;
    let effort = |steps, revisits, memo: &Memo| Effort {
        steps,
        configs: memo.len(),
        revisits,
    };

    loop {
        if left == 0 {
            return (Verdict::Linearizable, effort(steps, revisits, &memo));
        }
        if steps.is_multiple_of(CHECK_EVERY)
            && let Some(stop) = limits.stop()
        {
            return (Verdict::Undecided(stop), effort(steps, revisits, &memo));
        }
        steps += 1;

        // The node to place now, if any: in a fresh configuration a minimal read-only
        // operation the register allows, taken without alternatives (module notes); else the
        // next call in the scan that the register allows.
        let mut pick = None;
        if fresh {
            fresh = false;
            let mut n = ev.next[HEAD as usize];
            while n != NIL && ev.is_call[n as usize] {
                let o = &h.ops[ev.op[n as usize] as usize];
                if o.action.is_read_only() && o.action.apply(state).is_some() {
                    pick = Some(n);
                    break;
                }
                n = ev.next[n as usize];
            }
            cur = ev.next[HEAD as usize];
            late_pass = false;
        }
        if pick.is_none() {
            // Whether the last operation placed is an unknown one that nothing has
            // observed yet: then a blind write may not come next (module notes).
            let unobserved = stack.last().is_some_and(|f| h.ops[f.op as usize].optional);
            while cur != NIL {
                let node = cur as usize;
                let op = ev.op[node];
                if !ev.is_call[node] {
                    // The others tried; now the unknown ones nothing needs, which can only
                    // help a refused swap of the value the register holds (module notes).
                    if !late_pass && refused_waits(&ev, h, state) {
                        late_pass = true;
                        cur = ev.next[HEAD as usize];
                        continue;
                    }
                    deepest.offer(&stack, op, state);
                    break;
                }
                let o = &h.ops[op as usize];
                let masked = unobserved && matches!(o.action, Action::Write(_));
                // Read-only operations were taken above if the register allows them; an
                // unknown operation that changes nothing is the same as leaving it out.
                let useful = late[op as usize] == late_pass
                    && !o.action.is_read_only()
                    && !masked
                    && o.action
                        .apply(state)
                        .is_some_and(|after| !(o.optional && after == state));
                if useful {
                    pick = Some(cur);
                    break;
                }
                cur = ev.next[node];
            }
        }

        if let Some(node) = pick {
            let op = ev.op[node as usize];
            let o = &h.ops[op as usize];
            let after = o.action.apply(state).unwrap_or(state);
            let forced = o.action.is_read_only();
            set.insert(bit[op as usize]);
            if let Some(entry) = memo.enter(&set, after, o.optional) {
                ev.lift(op);
                stack.push(Frame {
                    op,
                    entry,
                    before: state,
                    forced,
                });
                state = after;
                left -= usize::from(!o.optional);
                fresh = true;
                continue;
            }
            set.remove(bit[op as usize]);
            revisits += 1;
            if !forced {
                cur = ev.next[node as usize];
                continue;
            }
            // A read-only operation leads to a configuration known to fail, so this one
            // fails too (module notes): undo.
        }

        // Undo choices up to the last one that had alternatives, and go on after it.
        loop {
            let Some(f) = stack.pop() else {
                let Some(stuck) = deepest.stuck else {
                    // Unreachable: a failure always meets a return first. Report the first
                    // completed operation rather than panic.
                    let stuck = h.ops.iter().position(|o| !o.optional).unwrap_or(0);
                    return (
                        Verdict::Violation(Violation {
                            prefix: Vec::new(),
                            stuck,
                            state: h.initial,
                        }),
                        effort(steps, revisits, &memo),
                    );
                };
                let violation = Violation {
                    prefix: deepest.prefix,
                    stuck,
                    state: deepest.state,
                };
                return (
                    Verdict::Violation(violation),
                    effort(steps, revisits, &memo),
                );
            };
            deepest.low = deepest.low.min(stack.len());
            memo.finish(f.entry);
            ev.unlift(f.op);
            set.remove(bit[f.op as usize]);
            state = f.before;
            left += usize::from(!h.ops[f.op as usize].optional);
            if !f.forced {
                cur = ev.next[ev.call_node[f.op as usize] as usize];
                late_pass = late[f.op as usize];
                break;
            }
        }
    }
}
