//! Lowe's memo for the Wing & Gong search: the configurations (set of linearized operations,
//! register value) already explored. Reaching one again cannot lead anywhere new, since what
//! is left to do and the value it starts from are the same.
//!
//! Two things keep it cheap on long histories:
//! - **Incremental hashing.** The set's hash is the XOR of a random 64-bit word per member
//!   (Zobrist hashing), updated in O(1) as operations are linearized and undone, instead of
//!   rehashing the whole bitset at every step.
//! - **Compact keys.** Required operations are numbered in invocation order, and each must be
//!   linearized before anything invoked after it returned, so the set of required operations
//!   is almost always a run of whole words of ones, a short ragged edge, then zeros. The memo
//!   stores only the edge (where the ones end and the words up to the last set bit), so an
//!   entry stays a few words long however long the history. Optional operations (unknown
//!   outcomes) may stay out forever and leave holes anywhere, so their words are kept apart
//!   and stored up to their last set bit.
//!
//! Keys are compared exactly on a hash match: a collision costs a compare, never a wrong
//! verdict.

/// A set of operations, as a bitset with its hash and compaction bounds kept up to date.
#[derive(Debug, Clone)]
pub(crate) struct OpSet {
    words: Vec<u64>,
    /// Words `[0, req_words)` hold required operations, the rest optional ones.
    req_words: usize,
    /// XOR of [`zobrist`] over the members.
    hash: u64,
    /// The first required word that is not all ones (or `req_words`).
    lo: usize,
    /// One past the last required word with a member.
    hi_req: usize,
    /// One past the last word with a member (≥ `req_words` when an optional one is in).
    hi_opt: usize,
}

/// The random word of bit `bit`: SplitMix64's finaliser, which is a bijection, so distinct
/// bits get distinct words.
fn zobrist(bit: usize) -> u64 {
    let mut z = (bit as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl OpSet {
    /// An empty set over `required` required and `optional` optional operations. Bits
    /// `0..required` are the required ones; optional ones start at [`OpSet::optional_bit`].
    pub(crate) fn new(required: usize, optional: usize) -> Self {
        let req_words = required.div_ceil(64);
        OpSet {
            words: vec![0; req_words + optional.div_ceil(64)],
            req_words,
            hash: 0,
            lo: 0,
            hi_req: 0,
            hi_opt: req_words,
        }
    }

    /// The bit of the `i`-th optional operation.
    pub(crate) fn optional_bit(&self, i: usize) -> usize {
        self.req_words * 64 + i
    }

    /// Adds `bit`, which must not be in the set.
    pub(crate) fn insert(&mut self, bit: usize) {
        let w = bit / 64;
        debug_assert_eq!(self.words[w] & (1 << (bit % 64)), 0);
        self.words[w] |= 1 << (bit % 64);
        self.hash ^= zobrist(bit);
        if w < self.req_words {
            self.hi_req = self.hi_req.max(w + 1);
            while self.lo < self.req_words && self.words[self.lo] == u64::MAX {
                self.lo += 1;
            }
        } else {
            self.hi_opt = self.hi_opt.max(w + 1);
        }
    }

    /// Removes `bit`, which must be in the set.
    pub(crate) fn remove(&mut self, bit: usize) {
        let w = bit / 64;
        debug_assert_ne!(self.words[w] & (1 << (bit % 64)), 0);
        self.words[w] &= !(1 << (bit % 64));
        self.hash ^= zobrist(bit);
        if w < self.req_words {
            self.lo = self.lo.min(w);
            while self.hi_req > 0 && self.words[self.hi_req - 1] == 0 {
                self.hi_req -= 1;
            }
        } else {
            while self.hi_opt > self.req_words && self.words[self.hi_opt - 1] == 0 {
                self.hi_opt -= 1;
            }
        }
    }

    /// The compact form: the required words past the full ones, and the optional words up to
    /// the last member. With `lo` it determines the set.
    fn parts(&self) -> (&[u64], &[u64]) {
        let req = &self.words[self.lo..self.hi_req.max(self.lo)];
        let opt = &self.words[self.req_words..self.hi_opt];
        (req, opt)
    }
}

/// One explored configuration; its words live in the memo's arena.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    state: u64,
    lo: u32,
    start: usize,
    req_len: u32,
    opt_len: u32,
}

/// The memo: an open-addressing hash table of [`Entry`]s over one arena of words.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// 0: empty; otherwise an index into `entries` plus one.
    slots: Vec<u32>,
    entries: Vec<Entry>,
    arena: Vec<u64>,
}

/// Mixes the set's hash with the register value and spreads it over the low bits (the slot).
fn key_hash(set_hash: u64, state: u64) -> u64 {
    let mut z = set_hash ^ state.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z ^ (z >> 32)
}

impl Memo {
    /// Records `(set, state)`; `true` when it was not there before. `state` is the register
    /// value with whatever else the search's next moves depend on (see the search).
    pub(crate) fn insert(&mut self, set: &OpSet, state: u64) -> bool {
        if (self.entries.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let hash = key_hash(set.hash, state);
        let (req, opt) = set.parts();
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            match self.slots[i] {
                0 => break,
                slot => {
                    let e = &self.entries[slot as usize - 1];
                    if e.hash == hash
                        && e.state == state
                        && e.lo as usize == set.lo
                        && e.req_len as usize == req.len()
                        && e.opt_len as usize == opt.len()
                    {
                        let stored = &self.arena[e.start..e.start + req.len() + opt.len()];
                        if stored[..req.len()] == *req && stored[req.len()..] == *opt {
                            return false;
                        }
                    }
                    i = (i + 1) & mask;
                }
            }
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(req);
        self.arena.extend_from_slice(opt);
        self.entries.push(Entry {
            hash,
            state,
            lo: set.lo as u32,
            start,
            req_len: req.len() as u32,
            opt_len: opt.len() as u32,
        });
        self.slots[i] = self.entries.len() as u32;
        true
    }

    /// Configurations recorded.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let mask = size - 1;
        let mut slots = vec![0u32; size];
        for (n, e) in self.entries.iter().enumerate() {
            let mut i = e.hash as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = n as u32 + 1;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_set_and_value_is_seen_once_whatever_the_order_of_insertion() {
        let mut memo = Memo::default();
        let mut a = OpSet::new(200, 10);
        for bit in [3, 150, 7, a.optional_bit(4)] {
            a.insert(bit);
        }
        let mut b = OpSet::new(200, 10);
        for bit in [b.optional_bit(4), 7, 150, 99, 3] {
            b.insert(bit);
        }
        b.remove(99);
        assert!(memo.insert(&a, 1));
        assert!(!memo.insert(&b, 1), "same set, same value");
        assert!(memo.insert(&b, 2), "same set, another value");
        b.remove(b.optional_bit(4));
        assert!(memo.insert(&b, 1), "another set");
        assert_eq!(memo.len(), 3);
    }

    #[test]
    fn full_words_are_left_out_of_the_key_and_come_back_when_a_bit_is_removed() {
        let mut set = OpSet::new(130, 0);
        (0..128).for_each(|bit| set.insert(bit));
        assert_eq!(set.lo, 2);
        assert_eq!(set.parts().0, &[] as &[u64]);
        set.insert(129);
        assert_eq!(set.parts().0, &[0b10]);
        set.remove(5);
        assert_eq!(set.lo, 0);
        assert_eq!(set.parts().0, &[!(1u64 << 5), u64::MAX, 0b10]);
        set.remove(129);
        assert_eq!(set.parts().0.len(), 2);
    }

    #[test]
    fn the_memo_keeps_every_entry_across_growth() {
        let mut memo = Memo::default();
        let mut set = OpSet::new(5000, 0);
        for bit in 0..5000 {
            set.insert(bit);
            assert!(memo.insert(&set, bit as u64 % 3));
        }
        let mut again = OpSet::new(5000, 0);
        for bit in 0..5000 {
            again.insert(bit);
            assert!(!memo.insert(&again, bit as u64 % 3), "bit {bit}");
        }
    }
}
