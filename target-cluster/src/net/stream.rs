//! The leader's end of an append stream, safe to cancel at any await.
//!
//! openraft 0.9 drops an AppendEntries call that outlives its timeout (the heartbeat interval),
//! wherever it is. A request may then have gone out with its answer still to come. The next
//! call must not take that answer for its own: it would tell openraft that the follower holds
//! entries it was never sent. So the stream counts the requests whose answers are unread,
//! reads and drops those answers before its own, and keeps the bytes of a half-read answer
//! for the next call. A write cut off half-way leaves the stream unusable, as do too many
//! unread answers (a follower that no longer answers): the caller then opens a new one.
//!
//! Dropping late answers rather than reconnecting matters on slow links: opening a stream
//! costs a round trip of its own, and with the heartbeat barely above the round trip (the
//! `slow-link` scenario) a stream reopened after each late answer would never get a request
//! through. For the same reason streams outlive the network clients that opened them: openraft
//! makes a new client for every leadership check of a linearizable read, and each takes an
//! idle stream from the node's [`StreamPool`] and gives it back when dropped.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::frame;
use std::future::Future;

/// More unread answers than this: the follower has stopped answering; open a new stream.
const MAX_UNREAD: usize = 8;
/// Idle streams kept per address; more are closed.
const MAX_IDLE: usize = 32;

/// Idle append streams by address, shared by a node's network clients.
#[derive(Debug)]
pub(crate) struct StreamPool<S> {
    idle: Arc<Mutex<HashMap<String, Vec<AppendStream<S>>>>>,
}

impl<S> Clone for StreamPool<S> {
    fn clone(&self) -> Self {
        Self {
            idle: self.idle.clone(),
        }
    }
}

impl<S> Default for StreamPool<S> {
    fn default() -> Self {
        Self {
            idle: Arc::default(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> StreamPool<S> {
    /// An idle stream to `addr` that is still open, if there is one.
    pub(crate) fn take(&self, addr: &str) -> Option<AppendStream<S>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let streams = idle.get_mut(addr)?;
        while let Some(mut s) = streams.pop() {
            if s.open() {
                return Some(s);
            }
        }
        None
    }

    /// Keeps `s` for the next caller, if it is usable and there is room.
    pub(crate) fn put(&self, s: AppendStream<S>) {
        if !s.usable() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let streams = idle.entry(s.addr.clone()).or_default();
        if streams.len() < MAX_IDLE {
            streams.push(s);
        }
    }
}

/// One append stream, opened to `addr`.
#[derive(Debug)]
pub(crate) struct AppendStream<S> {
    pub addr: String,
    io: S,
    /// Bytes read but not yet taken as an answer.
    read: Vec<u8>,
    /// Requests sent whose answers have not been read.
    unread: usize,
    /// A write was cut off: the stream holds part of a frame.
    torn: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AppendStream<S> {
    pub(crate) fn new(addr: String, io: S) -> Self {
        Self {
            addr,
            io,
            read: Vec::new(),
            unread: 0,
            torn: false,
        }
    }

    /// Whether a call can go on this stream (otherwise open a new one).
    pub(crate) fn usable(&self) -> bool {
        !self.torn && self.unread <= MAX_UNREAD
    }

    /// Whether the follower has not closed the stream, as far as can be told without waiting.
    /// Bytes that arrived meanwhile (late answers) are kept.
    fn open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let read = std::pin::pin!(self.io.read_buf(&mut self.read)).poll(&mut cx);
        matches!(read, Poll::Pending | Poll::Ready(Ok(1..)))
    }

    /// Sends `req` and returns its answer, after reading past the answers to earlier calls
    /// that were cancelled. An error leaves the stream unusable or broken: drop it.
    pub(crate) async fn call<Req, Resp>(&mut self, req: &Req) -> io::Result<Resp>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        self.torn = true;
        frame::write(&mut self.io, req).await?;
        self.torn = false;
        self.unread += 1;
        loop {
            let len = self.next_frame().await?;
            self.unread -= 1;
            let answer = (self.unread == 0)
                .then(|| frame::decode(&self.read[frame::HEAD..frame::HEAD + len]));
            self.read.drain(..frame::HEAD + len);
            if let Some(answer) = answer {
                return answer;
            }
        }
    }

    /// Waits until a whole frame starts `self.read`; returns its body's length. Cancel-safe:
    /// bytes read stay in `self.read`.
    async fn next_frame(&mut self) -> io::Result<usize> {
        loop {
            if let Some(len) = frame::whole(&self.read)? {
                return Ok(len);
            }
            if self.io.read_buf(&mut self.read).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A follower that answers request `n` with `n * 10`, after `delay(n)`.
    fn follower(io: tokio::io::DuplexStream, delay: fn(u64) -> Duration) {
        tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(io);
            let mut buf = Vec::new();
            while let Ok(n) = frame::read::<_, u64>(&mut r, &mut buf).await {
                tokio::time::sleep(delay(n)).await;
                if frame::write(&mut w, &(n * 10)).await.is_err() {
                    return;
                }
            }
        });
    }

    #[tokio::test]
    async fn a_call_after_a_cancelled_one_gets_its_own_answer() {
        let (a, b) = tokio::io::duplex(1 << 16);
        follower(b, |n| Duration::from_millis(if n == 1 { 300 } else { 0 }));
        let mut s = AppendStream::new("peer".into(), a);
        // Cancelled after its request went out, before its answer came.
        let cut = tokio::time::timeout(Duration::from_millis(50), s.call::<u64, u64>(&1)).await;
        assert!(cut.is_err(), "the first call outlives its timeout");
        assert!(s.usable());
        assert_eq!(s.call::<u64, u64>(&2).await.unwrap(), 20);
        assert_eq!(s.call::<u64, u64>(&3).await.unwrap(), 30);
        assert!(s.usable());
    }

    #[tokio::test]
    async fn a_half_read_answer_is_finished_by_the_next_call() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut s = AppendStream::new("peer".into(), a);
        let (mut r, mut w) = tokio::io::split(b);
        let call = tokio::spawn(async move {
            let first =
                tokio::time::timeout(Duration::from_millis(100), s.call::<u64, String>(&1)).await;
            (s, first.is_err())
        });
        let mut buf = Vec::new();
        assert_eq!(frame::read::<_, u64>(&mut r, &mut buf).await.unwrap(), 1);
        // Half of the answer to 1, then nothing until the call has given up.
        let mut answer = Vec::new();
        frame::write(&mut answer, &"one".repeat(10)).await.unwrap();
        let half = answer.len() / 2;
        w.write_all(&answer[..half]).await.unwrap();
        let (mut s, cancelled) = call.await.unwrap();
        assert!(cancelled);
        w.write_all(&answer[half..]).await.unwrap();
        frame::write(&mut w, &"two".to_string()).await.unwrap();
        assert_eq!(s.call::<u64, String>(&2).await.unwrap(), "two");
        assert_eq!(frame::read::<_, u64>(&mut r, &mut buf).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_write_cut_off_or_too_many_unread_answers_make_it_unusable() {
        // The follower never reads: the 8-byte pipe fills and the write is cut off.
        let (a, _b) = tokio::io::duplex(8);
        let mut s = AppendStream::new("peer".into(), a);
        let big = vec![7u8; 1000];
        let cut = tokio::time::timeout(Duration::from_millis(20), s.call::<_, u64>(&big)).await;
        assert!(cut.is_err());
        assert!(!s.usable(), "a stream holding half a frame");

        // The follower reads but never answers.
        let (a, b) = tokio::io::duplex(1 << 16);
        follower(b, |_| Duration::from_secs(3600));
        let mut s = AppendStream::new("peer".into(), a);
        for n in 0..=MAX_UNREAD as u64 {
            assert!(s.usable());
            let t = tokio::time::timeout(Duration::from_millis(5), s.call::<u64, u64>(&n)).await;
            assert!(t.is_err());
        }
        assert!(!s.usable(), "{} unread answers", s.unread);
    }

    #[tokio::test]
    async fn an_end_of_stream_is_an_error() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut s = AppendStream::new("peer".into(), a);
        // The follower reads the request and goes away.
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            frame::read::<_, u64>(&mut b, &mut buf).await.unwrap()
        });
        let (res, n) = tokio::join!(s.call::<u64, u64>(&5), reader);
        assert_eq!(n.unwrap(), 5);
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn the_pool_gives_back_open_usable_streams_to_the_same_address() {
        let pool = StreamPool::default();
        let (a, b) = tokio::io::duplex(1 << 16);
        follower(b, |_| Duration::ZERO);
        let mut s = AppendStream::new("p1".into(), a);
        assert_eq!(s.call::<u64, u64>(&1).await.unwrap(), 10);
        pool.put(s);
        assert!(pool.take("p2").is_none(), "another address");
        let mut s = pool.take("p1").expect("the idle stream");
        assert!(pool.take("p1").is_none(), "taken");
        assert_eq!(s.call::<u64, u64>(&2).await.unwrap(), 20);

        // One the follower has closed is not given out.
        let (a, b) = tokio::io::duplex(1 << 16);
        pool.put(AppendStream::new("p1".into(), a));
        drop(b);
        assert!(pool.take("p1").is_none());

        // Nor one that holds half a frame.
        let (a, _b) = tokio::io::duplex(8);
        let mut torn = AppendStream::new("p1".into(), a);
        let big = vec![1u8; 100];
        let cut = tokio::time::timeout(Duration::from_millis(20), torn.call::<_, u64>(&big)).await;
        assert!(cut.is_err());
        pool.put(torn);
        assert!(pool.take("p1").is_none());
    }
}
