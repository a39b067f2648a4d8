//! The log of one file's unsynced changes, in the order the application made them: what a
//! power loss that keeps part of the unsynced data chooses from (`crate::loss`), and what
//! becomes of each of them ([`Fate`]).
//!
//! Its entries copy the bytes the overlay already holds merged, so an unsynced append costs
//! twice its size. A file overwritten again and again without a sync would make the log grow
//! without end, so once the log holds more than [`FOLD_SLACK`] bytes beyond the unsynced bytes,
//! all of it is folded into one entry, the state it left, which a power loss keeps or drops as
//! a whole (still a state the disk could be left in: every change of the run, or none).

use crate::overlay::Overlay;

/// How many bytes the log may hold beyond the unsynced bytes themselves (overwritten data,
/// plus [`ENTRY_COST`] per change) before it is folded.
pub(crate) const FOLD_SLACK: u64 = 16 << 20;

/// What one logged change costs beside its bytes, so a flood of tiny writes folds too.
const ENTRY_COST: u64 = 64;

/// One unsynced change of a file, as the application made it.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    /// `data` written at `offset`.
    Write {
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// A truncate or extension to this length (also a fallocate that extends the file).
    SetLen(u64),
    /// The changes before the log was folded: always the first entry, kept or dropped whole.
    Folded(Box<Folded>),
}

/// What becomes of one unsynced change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Applied whole.
    Kept,
    /// Only its first `n` bytes are applied (a write torn at a sector boundary).
    Torn(usize),
    /// Not applied.
    Dropped,
}

/// The state a run of changes left, and what they were, for the power-loss report.
#[derive(Debug, Clone)]
pub(crate) struct Folded {
    /// The merged extents and size those changes made (without a log of its own).
    state: Overlay,
    /// How many writes, size changes and written bytes were folded.
    counts: Counts,
}

/// Writes, size changes and bytes written that a logged change stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Writes.
    pub(crate) writes: u64,
    /// Truncates and extensions.
    pub(crate) resizes: u64,
    /// Bytes written (an overwritten range counts once per write).
    pub(crate) bytes: u64,
}

impl Counts {
    /// Adds `other` to these.
    pub(crate) fn add(&mut self, other: Counts) {
        self.writes += other.writes;
        self.resizes += other.resizes;
        self.bytes += other.bytes;
    }
}

impl Folded {
    /// The merged extents and size the folded changes made.
    pub(crate) fn state(&self) -> &Overlay {
        &self.state
    }
}

impl Pending {
    /// The writes, size changes and bytes this change stands for.
    pub(crate) fn counts(&self) -> Counts {
        match self {
            Pending::Write { data, .. } => Counts {
                writes: 1,
                resizes: 0,
                bytes: data.len() as u64,
            },
            Pending::SetLen(_) => Counts {
                writes: 0,
                resizes: 1,
                bytes: 0,
            },
            Pending::Folded(f) => f.counts,
        }
    }

    /// The memory it holds, as the fold threshold counts it.
    pub(crate) fn cost(&self) -> u64 {
        ENTRY_COST
            + match self {
                Pending::Write { data, .. } => data.len() as u64,
                Pending::SetLen(_) => 0,
                Pending::Folded(f) => f.state.dirty_bytes(),
            }
    }
}

/// The changes since the last sync, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    entries: Vec<Pending>,
    /// The sum of the entries' costs.
    cost: u64,
    /// How far `cost` may exceed the overlay's unsynced bytes before the log is folded.
    slack: u64,
}

impl Log {
    /// An empty log that folds once it holds `slack` bytes beyond the unsynced ones.
    pub(crate) fn new(slack: u64) -> Self {
        Self {
            entries: Vec::new(),
            cost: 0,
            slack,
        }
    }

    /// The changes, oldest first.
    pub(crate) fn entries(&self) -> &[Pending] {
        &self.entries
    }

    /// Appends a change that `now` (the overlay, with this log taken out of it) already shows;
    /// folds the log into one change if it holds too much beside the unsynced bytes.
    pub(crate) fn push(&mut self, change: Pending, now: &Overlay) {
        self.cost += change.cost();
        self.entries.push(change);
        if self.cost > now.dirty_bytes() + self.slack {
            self.fold(now);
        }
    }

    /// Replaces every entry by one that stands for all of them: the state they left.
    fn fold(&mut self, now: &Overlay) {
        let mut counts = Counts::default();
        for e in &self.entries {
            counts.add(e.counts());
        }
        let folded = Pending::Folded(Box::new(Folded {
            state: now.clone(),
            counts,
        }));
        self.cost = folded.cost();
        self.entries = vec![folded];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a replica shows after applying the whole log of `o` with every change kept.
    fn replayed(o: &Overlay, durable: &[u8]) -> Vec<u8> {
        let mut r = Overlay::replica(durable.len() as u64);
        for change in o.log() {
            r.apply(change, Fate::Kept);
        }
        assert!(r.log().is_empty(), "a replica logs nothing");
        r.read(0, u64::MAX, |pos, buf| {
            let pos = (pos as usize).min(durable.len());
            let n = buf.len().min(durable.len() - pos);
            buf[..n].copy_from_slice(&durable[pos..pos + n]);
            Ok(n)
        })
        .unwrap()
    }

    fn view(o: &Overlay, durable: &[u8]) -> Vec<u8> {
        o.read(0, u64::MAX, |pos, buf| {
            let pos = (pos as usize).min(durable.len());
            let n = buf.len().min(durable.len() - pos);
            buf[..n].copy_from_slice(&durable[pos..pos + n]);
            Ok(n)
        })
        .unwrap()
    }

    #[test]
    fn the_log_holds_every_change_in_order_and_replays_to_the_view() {
        let durable = b"0123456789";
        let mut o = Overlay::new(10);
        o.write(2, b"ab");
        o.truncate(4);
        o.write(6, b"Z");
        o.truncate(12);
        let kinds: Vec<String> = o
            .log()
            .iter()
            .map(|p| match p {
                Pending::Write { offset, data } => format!("w{offset}+{}", data.len()),
                Pending::SetLen(l) => format!("len{l}"),
                Pending::Folded(_) => "folded".into(),
            })
            .collect();
        assert_eq!(kinds, ["w2+2", "len4", "w6+1", "len12"]);
        assert_eq!(replayed(&o, durable), view(&o, durable));
        assert_eq!(view(&o, durable), b"01ab\0\0Z\0\0\0\0\0");
    }

    #[test]
    fn a_torn_write_applies_its_head_only() {
        let mut r = Overlay::replica(4);
        let w = Pending::Write {
            offset: 2,
            data: b"abcdef".to_vec(),
        };
        r.apply(&w, Fate::Torn(3));
        r.apply(&Pending::SetLen(1), Fate::Dropped);
        assert_eq!(view(&r, b"0123"), b"01abc");
    }

    #[test]
    fn endless_overwrites_fold_the_log_and_keep_its_meaning() {
        let durable = [7u8; 64];
        let mut o = Overlay::with_slack(64, 1000);
        // The cut must survive the fold: bytes 10..30 read zeros, not the durable sevens.
        o.truncate(10);
        for i in 0..200u64 {
            o.write(30 + i % 5, &[i as u8; 10]);
        }
        let log = o.log();
        assert!(log.len() < 20, "folded: {} entries", log.len());
        assert!(matches!(log[0], Pending::Folded(_)), "the fold comes first");
        let cost: u64 = log.iter().map(Pending::cost).sum();
        assert!(cost <= o.dirty_bytes() + 1000, "bounded: {cost}");
        let total = log.iter().fold(Counts::default(), |mut t, p| {
            t.add(p.counts());
            t
        });
        assert_eq!(
            total,
            Counts {
                writes: 200,
                resizes: 1,
                bytes: 2000
            }
        );
        let seen = view(&o, &durable);
        assert_eq!(&seen[..30], &[[7u8; 10], [0; 10], [0; 10]].concat()[..]);
        assert_eq!(replayed(&o, &durable), seen);
    }
}
