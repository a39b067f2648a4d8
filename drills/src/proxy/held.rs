//! The bytes a pump has read but not yet written, each chunk stamped with when it may leave.
//!
//! One buffer serves every mode. In pass mode it is the reusable copy buffer (reads land in its
//! free tail, writes drain its head, so nothing is allocated per chunk); in delay mode it is the
//! queue of chunks waiting for their release time, which is what lets reads go on while earlier
//! chunks wait, so a delay does not also throttle. It grows only while a delay needs room for
//! the bytes in flight, and never past [`MAX_HELD`].

use std::collections::VecDeque;
use std::time::Instant;

/// Starting (and, outside delay mode, fixed) size of the buffer.
pub(super) const BUF_SIZE: usize = 64 * 1024;

/// The most a delayed direction holds; past it the pump stops reading (back-pressure through
/// the kernel's socket buffers), so a delay of D caps a connection at about `MAX_HELD / D`.
pub(super) const MAX_HELD: usize = 4 * 1024 * 1024;

/// Consecutive bytes that were read together (or merged) and leave at the same time.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    len: usize,
    release_at: Instant,
}

/// A byte buffer whose held bytes are `buf[start..end]`, in chunks described by `chunks`.
#[derive(Debug)]
pub(super) struct HeldBytes {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    chunks: VecDeque<Chunk>,
}

impl HeldBytes {
    /// An empty buffer of [`BUF_SIZE`].
    pub(super) fn new() -> Self {
        Self {
            buf: vec![0; BUF_SIZE],
            start: 0,
            end: 0,
            chunks: VecDeque::new(),
        }
    }

    /// Bytes held.
    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether nothing is held.
    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Makes room for a read and returns how many bytes the next read may take (0: full).
    /// `grow` allows the buffer to double, up to [`MAX_HELD`].
    pub(super) fn make_room(&mut self, grow: bool) -> usize {
        if self.is_empty() {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() && grow && self.buf.len() < MAX_HELD {
            let size = (self.buf.len() * 2).min(MAX_HELD);
            self.buf.resize(size, 0);
        }
        self.buf.len() - self.end
    }

    /// The first `out` held bytes (to write) and the free tail (to read into), at the same time.
    pub(super) fn io_slices(&mut self, out: usize) -> (&[u8], &mut [u8]) {
        debug_assert!(out <= self.len());
        let (held, free) = self.buf.split_at_mut(self.end);
        (&held[self.start..self.start + out], free)
    }

    /// Records that `n` bytes were read into the free tail and may leave at `release_at`.
    /// With `merge`, or when it would leave together with the last chunk anyway, the new bytes
    /// join that chunk, so a busy connection does not grow the chunk list.
    pub(super) fn push(&mut self, n: usize, release_at: Instant, merge: bool) {
        debug_assert!(self.end + n <= self.buf.len());
        self.end += n;
        match self.chunks.back_mut() {
            Some(last) if merge || release_at <= last.release_at => last.len += n,
            _ => self.chunks.push_back(Chunk { len: n, release_at }),
        }
    }

    /// Drops the first `n` held bytes (they were written).
    pub(super) fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len > n {
                front.len -= n;
                break;
            }
            n -= front.len;
            self.chunks.pop_front();
        }
    }

    /// How many leading bytes may leave at `now`.
    pub(super) fn due(&self, now: Instant) -> usize {
        self.chunks
            .iter()
            .take_while(|c| c.release_at <= now)
            .map(|c| c.len)
            .sum()
    }

    /// When the first chunk may leave, if any is held.
    pub(super) fn next_release(&self) -> Option<Instant> {
        self.chunks.front().map(|c| c.release_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read(h: &mut HeldBytes, data: &[u8], at: Instant, merge: bool) {
        let room = h.make_room(true);
        assert!(room >= data.len());
        h.io_slices(0).1[..data.len()].copy_from_slice(data);
        h.push(data.len(), at, merge);
    }

    #[test]
    fn chunks_leave_in_order_at_their_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut h = HeldBytes::new();
        read(&mut h, b"abc", t0 + ms(10), false);
        read(&mut h, b"de", t0 + ms(20), false);
        assert_eq!(h.due(t0), 0);
        assert_eq!(h.next_release(), Some(t0 + ms(10)));
        assert_eq!(h.due(t0 + ms(15)), 3);
        assert_eq!(h.due(t0 + ms(20)), 5);
        assert_eq!(h.io_slices(4).0, b"abcd");
        h.consume(4);
        assert_eq!(h.len(), 1);
        assert_eq!(h.next_release(), Some(t0 + ms(20)));
        assert_eq!(h.io_slices(1).0, b"e");
        h.consume(1);
        assert!(h.is_empty());
        assert_eq!(h.next_release(), None);
    }

    #[test]
    fn merging_keeps_the_earlier_release() {
        let t0 = Instant::now();
        let mut h = HeldBytes::new();
        read(&mut h, b"ab", t0, false);
        read(&mut h, b"cd", t0 + Duration::from_secs(1), true);
        assert_eq!(h.due(t0), 4);
        // Not merged, and later: its own chunk.
        read(&mut h, b"ef", t0 + Duration::from_secs(2), false);
        assert_eq!(h.due(t0 + Duration::from_secs(1)), 4);
    }

    #[test]
    fn full_buffer_compacts_then_grows_only_when_allowed() {
        let t0 = Instant::now();
        let mut h = HeldBytes::new();
        let fill = vec![7u8; BUF_SIZE];
        read(&mut h, &fill, t0, false);
        assert_eq!(h.make_room(false), 0, "full and growth not allowed");
        h.consume(100);
        assert_eq!(
            h.make_room(false),
            100,
            "compaction frees the consumed head"
        );
        assert_eq!(h.io_slices(1).0, &[7]);
        read(&mut h, &[1; 100], t0, false);
        assert_eq!(h.make_room(true), BUF_SIZE, "doubled");
        assert_eq!(h.len(), BUF_SIZE);
    }

    #[test]
    fn growth_stops_at_the_cap() {
        let t0 = Instant::now();
        let mut h = HeldBytes::new();
        let mut total = 0;
        for _ in 0..100 {
            let room = h.make_room(true);
            if room == 0 {
                break;
            }
            h.push(room, t0, true);
            total += room;
        }
        assert_eq!(total, MAX_HELD);
        assert_eq!(h.make_room(true), 0);
    }
}
