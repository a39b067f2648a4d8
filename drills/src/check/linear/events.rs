//! The list of call and return events the search walks: every operation's call and (for
//! completed ones) its return, in time order, calls before returns at equal times, as a
//! doubly-linked list whose nodes are lifted out and put back in place (dancing links).

use super::history::KeyHistory;

/// End of the list.
pub(super) const NIL: u32 = u32::MAX;
/// The list head, a sentinel with no operation.
pub(super) const HEAD: u32 = 0;

/// The event list: node 0 is the head; node `k ≥ 1` is a call or a return.
pub(super) struct Events {
    pub(super) next: Vec<u32>,
    prev: Vec<u32>,
    /// The operation of each node.
    pub(super) op: Vec<u32>,
    pub(super) is_call: Vec<bool>,
    pub(super) call_node: Vec<u32>,
    /// `NIL` for operations with no return (unknown outcomes).
    pub(super) return_node: Vec<u32>,
}

impl Events {
    /// The list of `h`'s events, none lifted.
    pub(super) fn new(h: &KeyHistory<'_>) -> Self {
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

    #[inline]
    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Puts back a node unlinked last (dancing links: its own pointers were left as they were).
    #[inline]
    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != NIL {
            self.prev[n as usize] = node;
        }
    }

    /// Takes an operation's events out of the list: it is placed.
    #[inline]
    pub(super) fn lift(&mut self, op: u32) {
        self.unlink(self.call_node[op as usize]);
        let ret = self.return_node[op as usize];
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Puts an operation's events back, the last lifted first.
    #[inline]
    pub(super) fn unlift(&mut self, op: u32) {
        let ret = self.return_node[op as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(self.call_node[op as usize]);
    }
}
