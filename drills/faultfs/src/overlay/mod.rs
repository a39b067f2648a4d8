//! The unsynced part of one file: what was written or truncated since its last fsync, held in
//! this process's memory over the durable bytes of the backing file.
//!
//! The backing file only ever holds what was made durable: writes land here, an fsync of the
//! file copies them down ([`Overlay::flush`]) and a power loss forgets the overlay, or writes
//! down the part of it that the power loss keeps (`crate::loss`). Reads merge the two, so the
//! application reads its own writes.
//!
//! Two records are kept of the same changes: the merged extents, for reads and the fsync, and
//! the log of the changes in the order they were made ([`Pending`]), from which a power loss
//! that keeps part of them chooses. The log costs a second copy of the unsynced bytes; where a
//! file is overwritten again and again without a sync, it would grow without end, so once it
//! holds more than `FOLD_SLACK` bytes beyond the merged extents, everything in it is folded
//! into one change that a power loss keeps or drops as a whole (see `pending`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

mod pending;

use pending::Log;
pub(crate) use pending::{Fate, Pending};

/// Dirty bytes and size changes of one file since its last sync.
#[derive(Debug, Clone)]
pub(crate) struct Overlay {
    /// Dirty ranges keyed by start offset; they neither overlap nor touch (touching ones merge).
    extents: BTreeMap<u64, Vec<u8>>,
    /// Sum of the extents' lengths.
    dirty: u64,
    /// The size the application sees.
    size: u64,
    /// Backing bytes at or past this offset were cut by a truncate since the last sync: they
    /// read as zeros, and the flush cuts them before it extends the file again.
    floor: u64,
    /// The changes in order; `None` in an overlay that only rebuilds what a power loss keeps.
    log: Option<Log>,
}

impl Overlay {
    /// An empty overlay over a backing file of `durable_len` bytes.
    pub(crate) fn new(durable_len: u64) -> Self {
        Self::with_slack(durable_len, pending::FOLD_SLACK)
    }

    /// An empty overlay whose log folds once it holds `slack` bytes beyond the unsynced ones.
    pub(crate) fn with_slack(durable_len: u64, slack: u64) -> Self {
        Self {
            log: Some(Log::new(slack)),
            ..Self::replica(durable_len)
        }
    }

    /// An empty overlay without a log, to rebuild the part of a log a power loss keeps.
    pub(crate) fn replica(durable_len: u64) -> Self {
        Self {
            extents: BTreeMap::new(),
            dirty: 0,
            size: durable_len,
            floor: durable_len,
            log: None,
        }
    }

    /// The changes since the last sync, oldest first (empty for a replica).
    pub(crate) fn log(&self) -> &[Pending] {
        self.log.as_ref().map_or(&[], Log::entries)
    }

    /// Logs a change (folding the log if it holds too much beside the unsynced bytes).
    fn record(&mut self, change: Pending) {
        let Some(mut log) = self.log.take() else {
            return;
        };
        log.push(change, self);
        self.log = Some(log);
    }

    /// Applies a logged change to this overlay with its fate (a replica, fresh over the same
    /// durable length as the overlay that logged it, so a folded change, always first, lands
    /// on the state it was folded from).
    pub(crate) fn apply(&mut self, change: &Pending, fate: Fate) {
        match (change, fate) {
            (_, Fate::Dropped) => {}
            (Pending::Write { offset, data }, Fate::Torn(head)) => {
                self.write(*offset, &data[..head.min(data.len())]);
            }
            (Pending::Write { offset, data }, _) => self.write(*offset, data),
            (Pending::SetLen(len), _) => self.truncate(*len),
            (Pending::Folded(f), _) => {
                let s = f.state();
                if s.floor < self.size {
                    self.truncate(s.floor);
                }
                for (at, bytes) in &s.extents {
                    self.write(*at, bytes);
                }
                if s.size != self.size {
                    self.truncate(s.size);
                }
            }
        }
    }

    /// The file size the application sees.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes written and not yet synced.
    pub(crate) fn dirty_bytes(&self) -> u64 {
        self.dirty
    }

    /// Backing bytes at or past this offset read as zeros (cut, or never there).
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    /// The parts of `[offset, end)` that no unsynced write covers, in order.
    pub(crate) fn gaps(&self, offset: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut pos = offset;
        let first = self
            .extents
            .range(..offset)
            .next_back()
            .map_or(offset, |(s, _)| *s);
        for (s, bytes) in self.extents.range(first..end) {
            let e = *s + bytes.len() as u64;
            if e <= pos {
                continue;
            }
            if *s > pos {
                out.push((pos, (*s).min(end)));
            }
            pos = pos.max(e);
            if pos >= end {
                break;
            }
        }
        if pos < end {
            out.push((pos, end));
        }
        out
    }

    /// Records a write of `data` at `offset`.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Extents that overlap or touch [offset, end): ends grow with starts, so walk back from
        // the last start at or before `end` until an extent ends before `offset`.
        let merged: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(start, bytes)| **start + bytes.len() as u64 >= offset)
            .map(|(start, _)| *start)
            .collect();
        let mut start = offset;
        let mut stop = end;
        for s in &merged {
            start = start.min(*s);
            stop = stop.max(*s + self.extents[s].len() as u64);
        }
        let mut buf = vec![0u8; (stop - start) as usize];
        for s in merged {
            let old = self.extents.remove(&s).expect("listed above");
            self.dirty -= old.len() as u64;
            let at = (s - start) as usize;
            buf[at..at + old.len()].copy_from_slice(&old);
        }
        let at = (offset - start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        self.dirty += buf.len() as u64;
        self.extents.insert(start, buf);
        self.size = self.size.max(end);
        if self.log.is_some() {
            self.record(Pending::Write {
                offset,
                data: data.to_vec(),
            });
        }
    }

    /// Records a truncate (or extend) to `len`.
    pub(crate) fn truncate(&mut self, len: u64) {
        self.size = len;
        self.floor = self.floor.min(len);
        let cut: Vec<u64> = self.extents.range(len..).map(|(s, _)| *s).collect();
        for s in cut {
            let old = self.extents.remove(&s).expect("listed above");
            self.dirty -= old.len() as u64;
        }
        if let Some((s, bytes)) = self.extents.range_mut(..len).next_back() {
            let keep = (len - *s) as usize;
            if bytes.len() > keep {
                self.dirty -= (bytes.len() - keep) as u64;
                bytes.truncate(keep);
            }
        }
        self.record(Pending::SetLen(len));
    }

    /// Reads up to `len` bytes at `offset` as the application sees them; `backing` reads the
    /// durable bytes (it may return fewer than asked at the end of the backing file).
    pub(crate) fn read(
        &self,
        offset: u64,
        len: u64,
        mut backing: impl FnMut(u64, &mut [u8]) -> io::Result<usize>,
    ) -> io::Result<Vec<u8>> {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        let durable_end = end.min(self.floor);
        let mut pos = offset;
        while pos < durable_end {
            let at = (pos - offset) as usize;
            let want = (durable_end - offset) as usize;
            match backing(pos, &mut buf[at..want]) {
                Ok(0) => break,
                Ok(n) => pos += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let first = self
            .extents
            .range(..offset)
            .next_back()
            .map_or(offset, |(s, _)| *s);
        for (s, bytes) in self.extents.range(first..end) {
            let (s, e) = (*s, *s + bytes.len() as u64);
            let (from, to) = (s.max(offset), e.min(end));
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - s) as usize..(to - s) as usize]);
            }
        }
        Ok(buf)
    }

    /// Makes the backing file hold exactly what the application sees (the caller then syncs it).
    pub(crate) fn flush(&self, file: &File) -> io::Result<()> {
        let durable_len = file.metadata()?.len();
        // Cut stale bytes first so an extension past them reads as zeros.
        let mut len = durable_len;
        if self.floor < durable_len {
            file.set_len(self.floor)?;
            len = self.floor;
        }
        // Writes extend the file themselves, as the application's appends did: the sync that
        // follows then costs what the same appends would cost natively (an ftruncate first
        // would change what ext4's fdatasync has to commit).
        for (s, bytes) in &self.extents {
            file.write_all_at(bytes, *s)?;
            len = len.max(*s + bytes.len() as u64);
        }
        if self.size != len {
            file.set_len(self.size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_the_parts_no_write_covers() {
        let mut o = Overlay::new(0);
        assert_eq!(o.gaps(0, 10), vec![(0, 10)]);
        o.write(2, b"ab");
        o.write(6, b"cd");
        assert_eq!(o.gaps(0, 10), vec![(0, 2), (4, 6), (8, 10)]);
        assert_eq!(o.gaps(3, 7), vec![(4, 6)]);
        assert_eq!(o.gaps(2, 4), Vec::<(u64, u64)>::new());
        assert_eq!(o.gaps(7, 9), vec![(8, 9)]);
    }

    /// A backing file that holds `durable`, as [`Overlay::read`] reads one.
    fn backing(durable: &[u8]) -> impl FnMut(u64, &mut [u8]) -> io::Result<usize> + '_ {
        |pos, buf| {
            let pos = pos as usize;
            if pos >= durable.len() {
                return Ok(0);
            }
            let n = buf.len().min(durable.len() - pos);
            buf[..n].copy_from_slice(&durable[pos..pos + n]);
            Ok(n)
        }
    }

    /// Reads everything the application would see, over `durable`.
    fn view(o: &Overlay, durable: &[u8]) -> Vec<u8> {
        o.read(0, u64::MAX, backing(durable)).unwrap()
    }

    /// What the backing file holds after a flush over `durable`.
    fn flushed(o: &Overlay, durable: &[u8]) -> Vec<u8> {
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(durable, 0).unwrap();
        o.flush(&f).unwrap();
        let mut out = vec![0u8; f.metadata().unwrap().len() as usize];
        f.read_exact_at(&mut out, 0).unwrap();
        out
    }

    #[test]
    fn reads_see_writes_over_the_durable_bytes() {
        let mut o = Overlay::new(6);
        o.write(2, b"XY");
        assert_eq!(view(&o, b"abcdef"), b"abXYef");
        o.write(8, b"Z");
        assert_eq!(o.size(), 9);
        assert_eq!(view(&o, b"abcdef"), b"abXYef\0\0Z");
        assert_eq!(o.dirty_bytes(), 3);
        assert_eq!(flushed(&o, b"abcdef"), view(&o, b"abcdef"));
    }

    #[test]
    fn overlapping_and_touching_writes_merge() {
        let mut o = Overlay::new(0);
        o.write(0, b"aaaa");
        o.write(6, b"cc");
        o.write(4, b"bb"); // touches both neighbours
        assert_eq!(o.extents.len(), 1);
        assert_eq!(o.dirty_bytes(), 8);
        o.write(2, b"XXXXX"); // inside
        assert_eq!(view(&o, b""), b"aaXXXXXc");
        assert_eq!(o.dirty_bytes(), 8);
        o.write(20, b"far");
        assert_eq!(o.extents.len(), 2);
        assert_eq!(o.size(), 23);
    }

    #[test]
    fn truncate_then_extend_reads_zeros_not_old_bytes() {
        let mut o = Overlay::new(8);
        o.truncate(2);
        assert_eq!(view(&o, b"abcdefgh"), b"ab");
        o.write(5, b"Z");
        assert_eq!(view(&o, b"abcdefgh"), b"ab\0\0\0Z");
        o.truncate(10);
        assert_eq!(view(&o, b"abcdefgh"), b"ab\0\0\0Z\0\0\0\0");
        assert_eq!(flushed(&o, b"abcdefgh"), view(&o, b"abcdefgh"));
    }

    #[test]
    fn truncate_cuts_dirty_extents() {
        let mut o = Overlay::new(0);
        o.write(0, b"0123456789");
        o.write(20, b"tail");
        o.truncate(4);
        assert_eq!(o.dirty_bytes(), 4);
        assert_eq!(view(&o, b""), b"0123");
        assert_eq!(flushed(&o, b""), b"0123");
    }

    #[test]
    fn partial_reads_at_offsets() {
        let mut o = Overlay::new(10);
        o.write(3, b"xyz");
        let durable = b"0123456789";
        let all = view(&o, durable);
        for off in 0..12u64 {
            for len in 0..12u64 {
                let got = o.read(off, len, backing(durable)).unwrap();
                let from = (off as usize).min(all.len());
                let to = ((off + len) as usize).min(all.len());
                assert_eq!(got, &all[from..to], "off {off} len {len}");
            }
        }
    }

    #[test]
    fn a_short_backing_file_reads_as_zeros_up_to_the_size() {
        // The backing file can be shorter than `floor` only if something outside changed it;
        // the overlay must still answer with the size it promised.
        let mut o = Overlay::new(6);
        o.write(5, b"!");
        assert_eq!(view(&o, b"ab"), b"ab\0\0\0!");
    }
}
