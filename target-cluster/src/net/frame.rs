//! The append stream's framing: each message is its length (u32 LE) and a postcard body. The
//! leader writes an `AppendRequest`, the follower answers with a `Result<AppendResponse,
//! RaftError>`, one at a time, as openraft 0.9 replicates to a follower one request at a time.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Larger lengths are garbage, not messages (a batch of entries is far smaller).
const MAX_FRAME: usize = 1 << 30;
/// The length before each body.
pub(crate) const HEAD: usize = 4;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Decodes a frame's body.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    postcard::from_bytes(body).map_err(invalid)
}

/// Writes `value` as one frame, in one write.
pub(crate) async fn write<W, T>(w: &mut W, value: &T) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut out = postcard::to_extend(value, vec![0u8; HEAD]).map_err(invalid)?;
    let len = u32::try_from(out.len() - HEAD).map_err(invalid)?;
    out[..HEAD].copy_from_slice(&len.to_le_bytes());
    w.write_all(&out).await?;
    w.flush().await
}

/// The body length of the frame at the start of `buf`, once all of it is there.
pub(crate) fn whole(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(head) = buf.get(..HEAD) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(head.try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME {
        return Err(invalid(format!("a frame of {len} bytes")));
    }
    Ok((buf.len() >= HEAD + len).then_some(len))
}

/// Reads one frame into `buf` and decodes it. An end of stream before or inside the frame is
/// `UnexpectedEof`.
pub(crate) async fn read<R, T>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<T>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let len = r.read_u32_le().await? as usize;
    if len > MAX_FRAME {
        return Err(invalid(format!("a frame of {len} bytes")));
    }
    // Grown as the bytes come, not to the length a peer claims.
    buf.clear();
    (&mut *r).take(len as u64).read_to_end(buf).await?;
    if buf.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    decode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_one_after_another() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let sent: Vec<(u64, String)> = (0..50).map(|i| (i, "x".repeat(i as usize))).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                for v in &sent {
                    write(&mut a, v).await.unwrap();
                }
            })
        };
        let mut buf = Vec::new();
        for want in &sent {
            let got: (u64, String) = read(&mut b, &mut buf).await.unwrap();
            assert_eq!(&got, want);
        }
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_cut_oversized_or_undecodable_frame_is_an_error() {
        let mut buf = Vec::new();
        // Cut inside the body.
        let mut cut: &[u8] = &[5, 0, 0, 0, 1, 2];
        let e = read::<_, u64>(&mut cut, &mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // A length no message has.
        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0];
        let e = read::<_, u64>(&mut huge, &mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A body that is not the type asked for (a bool is 0 or 1).
        let mut bad: &[u8] = &[1, 0, 0, 0, 7];
        let e = read::<_, bool>(&mut bad, &mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // Nothing at all.
        let mut empty: &[u8] = &[];
        let e = read::<_, u64>(&mut empty, &mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
