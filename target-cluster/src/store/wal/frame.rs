//! The frame format: the payload's length (u32 LE), its CRC-32 (u32 LE) and the payload, a
//! postcard-encoded [`Record`]. No record encodes to nothing, so no frame starts with a zero
//! length and a zero CRC: zeros where a frame should start end what was written.
//!
//! Every batch of a syncing log opens with a sync mark ([`Record::Synced`]): how many bytes of
//! its segment were synced before the batch was written. Replay needs it to tell a torn tail
//! from damage (see `check`).

use serde::{Deserialize, Serialize};

use crate::typ::{Entry, LogId, Vote};

/// The bytes before a frame's payload: its length and its CRC.
pub(super) const HEAD: usize = 8;
/// Larger lengths are torn or corrupt frames, not records.
pub(super) const MAX_PAYLOAD: usize = 1 << 30;
/// The longest payload of a sync mark: the variant's tag and a varint `u64`.
pub(super) const MAX_MARK: usize = 11;

/// A record as written. Same variants, in the same order, as [`Record`].
#[derive(Serialize)]
pub(crate) enum RecordRef<'a> {
    Append(&'a [Entry]),
    Truncate(u64),
    Purge(&'a LogId),
    Vote(&'a Vote),
    Committed(&'a Option<LogId>),
    Synced(u64),
}

/// A record as read back.
#[derive(Deserialize, Debug)]
pub(super) enum Record {
    Append(Vec<Entry>),
    Truncate(u64),
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
    /// A sync mark: the first this many bytes of the segment (from its start, the magic
    /// included) were synced before the batch it opens was written. Changes no state.
    Synced(u64),
}

/// Encodes `record` as one frame.
pub(crate) fn frame(record: &RecordRef<'_>) -> Result<Vec<u8>, postcard::Error> {
    let mut out = Vec::new();
    frame_into(record, &mut out)?;
    Ok(out)
}

/// Appends `record` to `out` as one frame (the writer's buffer: no allocation of its own).
pub(super) fn frame_into(record: &RecordRef<'_>, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    let at = out.len();
    out.extend_from_slice(&[0u8; HEAD]);
    *out = postcard::to_extend(record, std::mem::take(out))?;
    let len =
        u32::try_from(out.len() - at - HEAD).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let crc = crc32fast::hash(&out[at + HEAD..]);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    out[at + 4..at + HEAD].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Why the bytes where a frame should start are not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    /// The frame runs past the end of the file.
    Short,
    /// A length of zero (no record encodes to nothing) or over [`MAX_PAYLOAD`].
    Length(usize),
    /// The payload does not match its CRC.
    Checksum,
    /// The payload matches its CRC but is no record.
    Undecodable,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Short => write!(f, "cut short"),
            Bad::Length(len) => write!(f, "impossible length {len}"),
            Bad::Checksum => write!(f, "checksum mismatch"),
            Bad::Undecodable => write!(f, "not a record"),
        }
    }
}

/// The frame at `at` in `bytes`: its record and its length in bytes, head included.
pub(super) fn read_frame(bytes: &[u8], at: usize) -> Result<(Record, usize), Bad> {
    let head = bytes.get(at..at + HEAD).ok_or(Bad::Short)?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_PAYLOAD {
        return Err(Bad::Length(len));
    }
    let payload = bytes.get(at + HEAD..at + HEAD + len).ok_or(Bad::Short)?;
    if crc32fast::hash(payload) != crc {
        return Err(Bad::Checksum);
    }
    let record = postcard::from_bytes::<Record>(payload).map_err(|_| Bad::Undecodable)?;
    Ok((record, HEAD + len))
}
