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
//! **Unknown operations only add options.** A configuration that failed also fails with more
//! of the unknown operations used up (the same required operations done, the same value):
//! whatever order completes the second would complete the first, where those unknown ones are
//! simply never placed. So besides exact matches, the memo keeps the *finished* (fully
//! searched, so failed) configurations by required set and value, and a new configuration
//! whose unknown operations include a finished one's is cut off too. The search tries unknown
//! operations after completed ones, so the world without an unknown operation is searched
//! first, and the worlds with it are then cut off at once; otherwise every unknown operation
//! that could have taken effect somewhere harmless splits the rest of a failing search in two
//! worlds that never meet again.
//!
//! Keys are compared in full on a hash match: a collision costs a compare, never a wrong
//! verdict.

use std::collections::HashMap;

use super::model::Value;

/// A set of operations, as a bitset with its hash and compaction bounds kept up to date.
#[derive(Debug, Clone)]
pub(crate) struct OpSet {
    words: Vec<u64>,
    /// Words `[0, req_words)` hold required operations, the rest optional ones.
    req_words: usize,
    /// XOR of [`zobrist`] over the members.
    hash: u64,
    /// The same over the required members only.
    req_hash: u64,
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
            req_hash: 0,
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
            self.req_hash ^= zobrist(bit);
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
            self.req_hash ^= zobrist(bit);
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
    /// Of the whole set, the value and the flag.
    hash: u64,
    /// Of the required set and the value.
    req_key: u64,
    value: Value,
    flag: bool,
    lo: u32,
    start: usize,
    req_len: u32,
    opt_len: u32,
}

/// The memo: an open-addressing hash table of [`Entry`]s over one arena of words, and the
/// finished entries by required set and value.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// 0: empty; otherwise an index into `entries` plus one.
    slots: Vec<u32>,
    entries: Vec<Entry>,
    arena: Vec<u64>,
    finished: HashMap<u64, Vec<u32>>,
}

/// Mixes a set's hash with more words and spreads it over the low bits (the slot).
fn mix(hash: u64, more: u64) -> u64 {
    let mut z = hash ^ more.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z ^ (z >> 32)
}

/// Whether every bit of `small` is in `large` (missing words are zeros).
fn within(small: &[u64], large: &[u64]) -> bool {
    small
        .iter()
        .enumerate()
        .all(|(i, w)| w & !large.get(i).copied().unwrap_or(0) == 0)
}

impl Memo {
    /// The words of an entry: its required part and its optional part.
    fn words(&self, e: &Entry) -> (&[u64], &[u64]) {
        let req = &self.arena[e.start..e.start + e.req_len as usize];
        let opt = &self.arena[e.start + e.req_len as usize..][..e.opt_len as usize];
        (req, opt)
    }

    /// Enters the configuration `(set, value)` with the search's `flag` (with it, the search
    /// allows fewer moves than from the same configuration without). Returns its entry, to
    /// [`Memo::finish`] once searched, or `None` when it cannot lead anywhere new: it was
    /// entered before, or a finished one has the same required set and value, a subset of its
    /// unknown operations, and the flag only if this one has it.
    pub(crate) fn enter(&mut self, set: &OpSet, value: Value, flag: bool) -> Option<u32> {
        if (self.entries.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let hash = mix(set.hash, u64::from(value) << 1 | u64::from(flag));
        let req_key = mix(set.req_hash, u64::from(value));
        let (req, opt) = set.parts();
        let same_required = |e: &Entry| {
            e.value == value && e.lo as usize == set.lo && e.req_len as usize == req.len()
        };
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i] != 0 {
            let e = &self.entries[self.slots[i] as usize - 1];
            if e.hash == hash && e.flag == flag && same_required(e) {
                let (e_req, e_opt) = self.words(e);
                if e_req == req && e_opt == opt {
                    return None;
                }
            }
            i = (i + 1) & mask;
        }
        if let Some(done) = self.finished.get(&req_key) {
            for &id in done {
                let e = &self.entries[id as usize];
                if (!e.flag || flag) && same_required(e) {
                    let (e_req, e_opt) = self.words(e);
                    if e_req == req && within(e_opt, opt) {
                        return None;
                    }
                }
            }
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(req);
        self.arena.extend_from_slice(opt);
        self.entries.push(Entry {
            hash,
            req_key,
            value,
            flag,
            lo: set.lo as u32,
            start,
            req_len: req.len() as u32,
            opt_len: opt.len() as u32,
        });
        self.slots[i] = self.entries.len() as u32;
        Some(self.entries.len() as u32 - 1)
    }

    /// Records that an entry has been fully searched (and so failed).
    pub(crate) fn finish(&mut self, entry: u32) {
        let key = self.entries[entry as usize].req_key;
        self.finished.entry(key).or_default().push(entry);
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
        assert!(memo.enter(&a, 1, false).is_some());
        assert!(memo.enter(&b, 1, false).is_none(), "same set, same value");
        assert!(
            memo.enter(&b, 2, false).is_some(),
            "same set, another value"
        );
        b.remove(b.optional_bit(4));
        assert!(memo.enter(&b, 1, false).is_some(), "another set");
        assert_eq!(memo.len(), 3);
    }

    #[test]
    fn a_finished_configuration_covers_the_same_one_with_more_unknown_operations_used() {
        let mut memo = Memo::default();
        let mut set = OpSet::new(10, 10);
        set.insert(2);
        set.insert(set.optional_bit(1));
        let entry = memo.enter(&set, 1, false).unwrap();
        set.insert(set.optional_bit(7));
        assert!(
            memo.enter(&set, 1, false).is_some(),
            "not covered while its search is under way"
        );
        memo.finish(entry);
        set.insert(set.optional_bit(8));
        assert!(memo.enter(&set, 1, true).is_none(), "covered once finished");
        set.remove(set.optional_bit(1));
        assert!(memo.enter(&set, 1, true).is_some(), "not a superset");
        set.insert(set.optional_bit(1));
        set.insert(5);
        assert!(
            memo.enter(&set, 1, true).is_some(),
            "other required operations"
        );

        // A finished configuration with the flag covers only flagged ones.
        let mut memo = Memo::default();
        let mut set = OpSet::new(10, 10);
        let flagged = memo.enter(&set, 0, true).unwrap();
        memo.finish(flagged);
        set.insert(set.optional_bit(3));
        assert!(memo.enter(&set, 0, false).is_some());
        assert!(memo.enter(&set, 0, true).is_none());
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
            assert!(memo.enter(&set, bit as Value % 3, false).is_some());
        }
        let mut again = OpSet::new(5000, 0);
        for bit in 0..5000 {
            again.insert(bit);
            assert!(
                memo.enter(&again, bit as Value % 3, false).is_none(),
                "bit {bit}"
            );
        }
    }
}
