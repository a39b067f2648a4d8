//! What a power loss keeps of the changes a file had not made durable: none of them, a torn
//! prefix, or a reordered subset (LazyFS's torn-op and torn-seq faults), drawn from a seed so
//! that a drill can be replayed.
//!
//! The disk modelled here writes whole sectors ([`SECTOR`] bytes at offsets that are multiples
//! of it), atomically and in any order, each with its content as of some moment since the
//! file's last sync: it never writes a sector with content the file never held (no garbage, no
//! mix of an earlier write without a later one into the same sector). What survives of a file
//! is therefore a state in which every sector holds either its durable content or its content
//! right after one of the unsynced changes. The choices only ever produce such states:
//!
//! - [`Keep::None`]: every unsynced change is dropped; the file is as of its last sync.
//! - [`Keep::Torn`]: the changes are kept in order up to one write that crosses a sector
//!   boundary, which is cut at one of its inner sector boundaries (its head kept, its tail
//!   dropped); everything after it is dropped. Which write and which boundary are drawn; when
//!   no write crosses a boundary, a drawn prefix of whole changes is kept (nothing is torn).
//!   A torn write that extended the file leaves it ending at the cut.
//! - [`Keep::Reordered`]: a drawn subset of the changes is kept whole and applied in their
//!   original order (where two kept writes overlap, the later one's bytes win, as the page
//!   cache holds them). Any subset a sector-writing disk can leave is possible, not only a
//!   prefix: a change that shares a sector with an earlier one survives only with it (a write
//!   that straddles a sector with the one before cannot outlive it), a truncate or extension
//!   counts as touching every sector from its new length on, and a [`Pending::Folded`] run of
//!   changes every sector. So appends that straddle sectors come out as a prefix, while writes
//!   to sectors of their own (sector-aligned records, separate pages) can survive in any
//!   combination: a later append with an earlier one lost leaves the file's size covering the
//!   lost range, which reads as zeros (as after a crash on XFS or ext4 with `data=writeback`).
//!   Writes are never torn by this choice.
//!
//! No choice ever tears a write inside a sector, writes bytes that were never written (only
//! zeros past the durable end, where a kept write extended the file over a dropped one), or
//! touches durable data that no unsynced change covered. The choice applies to file contents
//! and sizes only: pending namespace changes (create, unlink, rename, ...) are all undone, as
//! with [`Keep::None`], so the writes kept for a file whose create was not durable go with it.

use std::collections::BTreeMap;

use raftdrill_rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::overlay::{Fate, Pending};

/// The disk's atomic unit: a sector is written whole or not at all, and writes are torn only
/// at offsets that are multiples of it.
pub const SECTOR: u64 = 512;

/// What survives of the unsynced writes and size changes at a power loss (see the module
/// docs for what each choice can and cannot produce).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// None of them: each file is as of its last fsync.
    #[default]
    None,
    /// A prefix of them in order, the last one a write torn at a sector boundary.
    Torn,
    /// A subset of them, whole, as if the disk had persisted them in another order.
    Reordered,
}

/// A power loss as the controller asks for it: what survives, and the seed of the draws.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerLoss {
    /// What survives of the unsynced writes; default: none.
    pub keep: Keep,
    /// Seed of the draws; each file draws from its own stream of it, so what one file keeps
    /// does not depend on which other files held unsynced data.
    pub seed: u64,
}

/// Draws the fate of each change of `log` (oldest first) for `keep`.
pub(crate) fn choose(keep: Keep, log: &[Pending], rng: &mut SplitMix64) -> Vec<Fate> {
    match keep {
        Keep::None => vec![Fate::Dropped; log.len()],
        Keep::Torn => torn(log, rng),
        Keep::Reordered => reordered(log, rng),
    }
}

/// Where a write can be torn: the length of its shortest head that ends on a sector boundary,
/// and how many such boundaries lie strictly inside it (`None`: it fits one sector).
fn tear_points(p: &Pending) -> Option<(u64, u64)> {
    let Pending::Write { offset, data } = p else {
        return None;
    };
    let end = offset + data.len() as u64;
    let first = (offset / SECTOR + 1) * SECTOR;
    (first < end).then(|| (first - offset, (end - 1) / SECTOR - offset / SECTOR))
}

fn torn(log: &[Pending], rng: &mut SplitMix64) -> Vec<Fate> {
    let mut fates = vec![Fate::Dropped; log.len()];
    let tearable: Vec<(usize, (u64, u64))> = log
        .iter()
        .enumerate()
        .filter_map(|(i, p)| tear_points(p).map(|t| (i, t)))
        .collect();
    if tearable.is_empty() {
        let whole = rng.below(log.len() as u64 + 1) as usize;
        fates[..whole].fill(Fate::Kept);
        return fates;
    }
    let (at, (first, count)) = tearable[rng.below(tearable.len() as u64) as usize];
    fates[..at].fill(Fate::Kept);
    fates[at] = Fate::Torn((first + rng.below(count) * SECTOR) as usize);
    fates
}

/// The sectors `[from, to)` a change touches.
fn sectors(p: &Pending) -> (u64, u64) {
    match p {
        Pending::Write { offset, data } => (
            offset / SECTOR,
            (offset + data.len() as u64).div_ceil(SECTOR),
        ),
        Pending::SetLen(len) => (len / SECTOR, u64::MAX),
        Pending::Folded(_) => (0, u64::MAX),
    }
}

fn reordered(log: &[Pending], rng: &mut SplitMix64) -> Vec<Fate> {
    let mut fates = vec![Fate::Dropped; log.len()];
    // Newest first: a kept change pulls in every earlier change that shares a sector with it.
    let mut needed = Spans::default();
    for (i, p) in log.iter().enumerate().rev() {
        let (from, to) = sectors(p);
        let coin = rng.chance(0.5);
        if coin || needed.meets(from, to) {
            fates[i] = Fate::Kept;
            needed.add(from, to);
        }
    }
    fates
}

/// Disjoint, non-touching ranges `[from, to)`, keyed by start.
#[derive(Debug, Default)]
struct Spans(BTreeMap<u64, u64>);

impl Spans {
    /// Whether any range overlaps `[from, to)`. Ends grow with starts, so only the last range
    /// starting before `to` can.
    fn meets(&self, from: u64, to: u64) -> bool {
        self.0
            .range(..to)
            .next_back()
            .is_some_and(|(_, end)| *end > from)
    }

    fn add(&mut self, mut from: u64, mut to: u64) {
        let merged: Vec<(u64, u64)> = self
            .0
            .range(..=to)
            .rev()
            .take_while(|(_, end)| **end >= from)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in merged {
            self.0.remove(&s);
            from = from.min(s);
            to = to.max(e);
        }
        self.0.insert(from, to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(offset: u64, len: usize) -> Pending {
        Pending::Write {
            offset,
            data: vec![1; len],
        }
    }

    #[test]
    fn tear_points_are_the_inner_sector_boundaries() {
        assert_eq!(tear_points(&write(0, 512)), None, "one whole sector");
        assert_eq!(tear_points(&write(100, 300)), None, "inside one sector");
        assert_eq!(tear_points(&write(0, 513)), Some((512, 1)));
        assert_eq!(tear_points(&write(1000, 1000)), Some((24, 2)), "1024, 1536");
        assert_eq!(tear_points(&write(512, 1024)), Some((512, 1)));
        assert_eq!(tear_points(&Pending::SetLen(4096)), None);
    }

    #[test]
    fn spans_merge_and_meet() {
        let mut s = Spans::default();
        s.add(4, 6);
        s.add(10, 12);
        assert!(!s.meets(6, 10));
        assert!(s.meets(5, 7));
        assert!(s.meets(0, 11));
        s.add(6, 10);
        assert_eq!(s.0.len(), 1, "touching ranges merge");
        assert!(s.meets(11, 12));
        assert!(!s.meets(12, 20));
        s.add(30, u64::MAX);
        assert!(s.meets(1 << 40, (1 << 40) + 1));
    }

    #[test]
    fn none_drops_everything() {
        let log = [write(0, 10), Pending::SetLen(3)];
        let fates = choose(Keep::None, &log, &mut SplitMix64::new(1));
        assert_eq!(fates, vec![Fate::Dropped; 2]);
    }

    #[test]
    fn torn_keeps_a_prefix_and_cuts_one_write_at_a_sector_boundary() {
        let log = [
            write(0, 100),
            write(100, 1000),
            write(1100, 10),
            write(2048, 600),
        ];
        for seed in 0..200 {
            let fates = choose(Keep::Torn, &log, &mut SplitMix64::new(seed));
            let at = fates
                .iter()
                .position(|f| matches!(f, Fate::Torn(_)))
                .unwrap();
            assert!(fates[..at].iter().all(|f| *f == Fate::Kept), "{fates:?}");
            assert!(
                fates[at + 1..].iter().all(|f| *f == Fate::Dropped),
                "{fates:?}"
            );
            let Pending::Write { offset, data } = &log[at] else {
                panic!("only writes tear")
            };
            let Fate::Torn(head) = fates[at] else {
                unreachable!()
            };
            assert_eq!((offset + head as u64) % SECTOR, 0, "{fates:?}");
            assert!(head > 0 && head < data.len(), "{fates:?}");
        }
    }

    #[test]
    fn torn_without_a_tearable_write_keeps_a_prefix() {
        let log = [write(0, 10), write(10, 10), Pending::SetLen(5)];
        let mut prefixes = std::collections::BTreeSet::new();
        for seed in 0..100 {
            let fates = choose(Keep::Torn, &log, &mut SplitMix64::new(seed));
            let kept = fates.iter().take_while(|f| **f == Fate::Kept).count();
            assert!(
                fates[kept..].iter().all(|f| *f == Fate::Dropped),
                "{fates:?}"
            );
            prefixes.insert(kept);
        }
        assert_eq!(
            prefixes.len(),
            4,
            "every prefix length comes up: {prefixes:?}"
        );
    }

    #[test]
    fn reordered_keeps_earlier_changes_that_share_a_sector() {
        // Sector-aligned records: any subset. A straddling write needs its predecessor.
        let log = [
            write(0, 512),
            write(512, 512),
            write(1024, 600),
            write(1624, 10),
        ];
        let mut subsets = std::collections::BTreeSet::new();
        for seed in 0..400 {
            let fates = choose(Keep::Reordered, &log, &mut SplitMix64::new(seed));
            let kept: Vec<bool> = fates.iter().map(|f| *f == Fate::Kept).collect();
            assert!(
                !fates.iter().any(|f| matches!(f, Fate::Torn(_))),
                "{fates:?}"
            );
            assert!(
                !kept[3] || kept[2],
                "the record sharing sector 3 came first: {kept:?}"
            );
            subsets.insert(kept);
        }
        // 2 * 2 * 3 (of the last two: neither, the first, both).
        assert_eq!(subsets.len(), 12, "{subsets:?}");
        assert!(
            subsets.contains(&vec![false, true, false, false]),
            "not only prefixes"
        );
    }

    #[test]
    fn reordered_ties_writes_past_a_truncate_to_it() {
        let log = [
            write(0, 4096),
            Pending::SetLen(1024),
            write(2048, 10),
            write(0, 10),
        ];
        for seed in 0..200 {
            let fates = choose(Keep::Reordered, &log, &mut SplitMix64::new(seed));
            let kept: Vec<bool> = fates.iter().map(|f| *f == Fate::Kept).collect();
            assert!(
                !kept[2] || kept[1],
                "a write past the cut needs the cut: {kept:?}"
            );
            assert!(
                !kept[1] || kept[0],
                "the cut needs the write it cuts: {kept:?}"
            );
        }
    }
}
