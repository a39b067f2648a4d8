//! Helpers of the WAL's tests: entries, batches written through [`Wal::write`], and a look
//! at the folder.

use std::fs;
use std::path::{Path, PathBuf};

use super::segment::seq_of;
use super::{Contents, Effect, RecordRef, Wal, frame};
use crate::typ::{Entry, LogId, Request};

pub(super) fn entry(term: u64, index: u64) -> Entry {
    let log_id = LogId::new(openraft::CommittedLeaderId::new(term, 1), index);
    openraft::Entry {
        log_id,
        payload: openraft::EntryPayload::Normal(Request::Put {
            key: format!("k{index}"),
            value: "v".repeat(40),
        }),
    }
}

pub(super) fn append(wal: &mut Wal, term: u64, range: std::ops::RangeInclusive<u64>) {
    let entries: Vec<Entry> = range.map(|i| entry(term, i)).collect();
    let f = frame(&RecordRef::Append(&entries)).unwrap();
    let last = entries.last().unwrap().log_id.index;
    wal.write(
        std::iter::once((f.as_slice(), Effect::Append { last })),
        true,
    )
    .unwrap();
}

pub(super) fn write(wal: &mut Wal, record: RecordRef<'_>, effect: Effect) {
    let f = frame(&record).unwrap();
    wal.write(std::iter::once((f.as_slice(), effect)), true)
        .unwrap();
}

pub(super) fn terms(c: &Contents) -> Vec<(u64, u64)> {
    c.entries
        .values()
        .map(|e| (e.log_id.index, e.log_id.leader_id.term))
        .collect()
}

pub(super) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| seq_of(p).is_some())
        .collect();
    v.sort();
    v
}
