//! The frame format: the payload's length (u32 LE), its CRC-32 (u32 LE) and the payload, a
//! postcard-encoded [`Record`]. No record encodes to nothing, so no frame starts with a zero
//! length and a zero CRC: zeros where a frame should start end what was written.

use serde::{Deserialize, Serialize};

use crate::typ::{Entry, LogId, Vote};

/// The bytes before a frame's payload: its length and its CRC.
pub(super) const HEAD: usize = 8;
/// Larger lengths are torn or corrupt frames, not records.
pub(super) const MAX_PAYLOAD: usize = 1 << 30;

/// A record as written. Same variants, in the same order, as [`Record`].
#[derive(Serialize)]
pub(crate) enum RecordRef<'a> {
    Append(&'a [Entry]),
    Truncate(u64),
    Purge(&'a LogId),
    Vote(&'a Vote),
    Committed(&'a Option<LogId>),
}

/// A record as read back.
#[derive(Deserialize, Debug)]
pub(super) enum Record {
    Append(Vec<Entry>),
    Truncate(u64),
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

/// Encodes `record` as one frame.
pub(crate) fn frame(record: &RecordRef<'_>) -> Result<Vec<u8>, postcard::Error> {
    let out = postcard::to_extend(record, vec![0u8; HEAD])?;
    let mut out = out;
    let len = u32::try_from(out.len() - HEAD).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let crc = crc32fast::hash(&out[HEAD..]);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..HEAD].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}
