//! What a link has carried: atomics the pumps bump on the hot path, and the [`ProxyStats`]
//! snapshot a caller reads.
//!
//! Relaxed atomics are enough: each counter is read on its own, and a snapshot only has to be
//! recent, not consistent across counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::Direction;

/// A snapshot of one link's counters, taken by [`LinkProxy::stats`](super::LinkProxy::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    /// Bytes delivered from the connecting node to the upstream (requests).
    pub bytes_up: u64,
    /// Bytes delivered from the upstream back to the connecting node (responses).
    pub bytes_down: u64,
    /// Bytes read from the connecting node (requests), delivered or still held.
    pub bytes_read_up: u64,
    /// Connections accepted, refused ones included.
    pub connections_total: u64,
    /// Connections being proxied now (accepted, not refused, not yet closed).
    pub connections_open: u64,
    /// Connections refused with a reset because the link was in [`Reset`](super::LinkMode::Reset)
    /// mode when they arrived.
    pub connections_refused: u64,
    /// Live connections cut with a reset because the link switched to
    /// [`Reset`](super::LinkMode::Reset).
    pub connections_reset: u64,
    /// Connections dropped because the upstream could not be reached (e.g. the node is down);
    /// the connecting side sees a reset, as it would from a closed port.
    pub upstream_failures: u64,
}

/// The live counters behind [`ProxyStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    bytes_read_up: AtomicU64,
    connections_total: AtomicU64,
    connections_open: AtomicU64,
    connections_refused: AtomicU64,
    connections_reset: AtomicU64,
    upstream_failures: AtomicU64,
}

impl Counters {
    /// Reads every counter.
    pub(super) fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            bytes_up: self.bytes_up.load(Relaxed),
            bytes_down: self.bytes_down.load(Relaxed),
            bytes_read_up: self.bytes_read_up.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            connections_open: self.connections_open.load(Relaxed),
            connections_refused: self.connections_refused.load(Relaxed),
            connections_reset: self.connections_reset.load(Relaxed),
            upstream_failures: self.upstream_failures.load(Relaxed),
        }
    }

    /// `n` bytes were delivered in direction `dir`.
    pub(super) fn delivered(&self, dir: Direction, n: usize) {
        let counter = match dir {
            Direction::Up => &self.bytes_up,
            Direction::Down => &self.bytes_down,
        };
        counter.fetch_add(n as u64, Relaxed);
    }

    /// `n` bytes were read in direction `dir` (they are delivered later, or held).
    pub(super) fn read(&self, dir: Direction, n: usize) {
        if dir == Direction::Up {
            self.bytes_read_up.fetch_add(n as u64, Relaxed);
        }
    }

    /// A connection was accepted and refused.
    pub(super) fn refused(&self) {
        self.connections_total.fetch_add(1, Relaxed);
        self.connections_refused.fetch_add(1, Relaxed);
    }

    /// A connection was accepted for proxying; it counts as open until the guard drops, which
    /// also happens when its task is aborted.
    pub(super) fn opened(&self) -> OpenGuard<'_> {
        self.connections_total.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
        OpenGuard(self)
    }

    /// A live connection was cut by reset mode.
    pub(super) fn reset(&self) {
        self.connections_reset.fetch_add(1, Relaxed);
    }

    /// The upstream could not be reached for a connection.
    pub(super) fn upstream_failed(&self) {
        self.upstream_failures.fetch_add(1, Relaxed);
    }
}

/// Keeps one connection counted as open.
#[derive(Debug)]
pub(super) struct OpenGuard<'a>(&'a Counters);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_the_guard_closes() {
        let c = Counters::default();
        c.refused();
        {
            let _g = c.opened();
            c.delivered(Direction::Up, 10);
            c.delivered(Direction::Down, 3);
            c.reset();
            assert_eq!(c.snapshot().connections_open, 1);
        }
        c.upstream_failed();
        let s = c.snapshot();
        assert_eq!(
            s,
            ProxyStats {
                bytes_up: 10,
                bytes_down: 3,
                bytes_read_up: 0,
                connections_total: 2,
                connections_open: 0,
                connections_refused: 1,
                connections_reset: 1,
                upstream_failures: 1,
            }
        );
    }
}
