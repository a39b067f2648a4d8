//! One direction of one proxied connection: read from one socket, apply the link's mode, write to
//! the other.
//!
//! A pump is a loop around a single `select!` over the mode channel, the read, the write and a
//! timer, each enabled only when the current mode allows it. Because the mode channel is always
//! in the select, a mode change is seen at once even while a read or a write is pending, and
//! changing the mode never waits for a pump: `set_mode` only stores the new value. That keeps out
//! the failure toxiproxy users report, where removing a toxic from a link under load hangs
//! (Shopify/toxiproxy #210, #412, #558). Reads and writes on tokio sockets are cancel-safe, so
//! abandoning one for a mode change loses no bytes.
//!
//! Per mode:
//! - pass: read into the [`HeldBytes`] buffer, write it out; no allocation per chunk.
//! - blackhole (and a bandwidth of 0): neither read nor write. Unread bytes wait in the kernel's
//!   socket buffers and read ones in the buffer; on heal they go out in order. Not reading, a
//!   blackholed pump sees its peer's close only after the heal, as a real link would.
//! - delay: each read is a chunk released at `read time + latency ± jitter`, never before the
//!   previous chunk (bytes only ever leave from the head of the buffer, so order holds by
//!   construction); reads go on while chunks wait. Leaving delay mode releases what is held.
//! - bandwidth: writes spend tokens from the link's shared [`TokenBucket`] for this direction.
//! - reset: the pump stops at once and the connection cuts both sockets.

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::watch;

use super::bucket::{TokenBucket, burst_for};
use super::held::HeldBytes;
use super::jitter::Jitter;
use super::stats::Counters;
use super::{Direction, LinkMode};

/// Sleeps until `at`, or forever if there is nothing to wait for. Nothing happens until it is
/// polled, so the pass-mode loop, which never waits on time, does not build a timer per turn.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// What every pump of a link shares.
#[derive(Debug)]
pub(super) struct Shared {
    /// The link's counters.
    pub(super) counters: Counters,
    /// The bandwidth buckets, up then down. A std mutex, not tokio's: it is held for a few
    /// arithmetic operations and never across an await.
    buckets: [Mutex<TokenBucket>; 2],
    /// Whether the upstream accepts connections. While it refuses them, so does the proxy.
    pub(super) upstream_up: tokio::sync::watch::Sender<bool>,
    /// Whether the proxy's port has a listener now.
    pub(super) listening: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Fresh counters and buckets.
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Self {
            counters: Counters::default(),
            buckets: [
                Mutex::new(TokenBucket::new(now)),
                Mutex::new(TokenBucket::new(now)),
            ],
            upstream_up: tokio::sync::watch::channel(true).0,
            listening: std::sync::atomic::AtomicBool::new(true),
        }
    }

    fn bucket(&self, dir: Direction) -> std::sync::MutexGuard<'_, TokenBucket> {
        let slot = match dir {
            Direction::Up => &self.buckets[0],
            Direction::Down => &self.buckets[1],
        };
        // The bucket's state is a few numbers that are valid after any panic.
        slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a pump stopped.
#[derive(Debug)]
pub(super) enum End {
    /// Its source closed and everything it sent was delivered (and the close passed on).
    Eof,
    /// The link went into reset mode.
    Reset,
    /// A socket failed (e.g. the peer reset).
    Failed(io::Error),
    /// The proxy is gone (its mode channel closed).
    Closed,
}

/// Tokens already reserved from the bucket and not yet spent.
#[derive(Debug, Clone, Copy)]
struct Credit {
    bytes: usize,
    usable_at: Instant,
    rate: u64,
}

/// What the next turn of the loop may do.
#[derive(Debug)]
struct Step {
    read: bool,
    grow: bool,
    write: usize,
    wake: Option<Instant>,
}

/// One direction of one connection.
pub(super) struct Pump<'a> {
    dir: Direction,
    from: ReadHalf<'a>,
    to: WriteHalf<'a>,
    modes: watch::Receiver<LinkMode>,
    shared: &'a Shared,
    held: HeldBytes,
    jitter: Jitter,
    /// Release time of the last delayed chunk; the next is never earlier.
    last_release: Instant,
    credit: Option<Credit>,
    eof: bool,
}

impl<'a> Pump<'a> {
    /// A pump moving bytes `from` → `to` in direction `dir`.
    pub(super) fn new(
        dir: Direction,
        from: ReadHalf<'a>,
        to: WriteHalf<'a>,
        modes: watch::Receiver<LinkMode>,
        shared: &'a Shared,
    ) -> Self {
        Self {
            dir,
            from,
            to,
            modes,
            shared,
            held: HeldBytes::new(),
            jitter: Jitter::from_clock(),
            last_release: Instant::now(),
            credit: None,
            eof: false,
        }
    }

    /// Moves bytes until the source closes, the link resets, a socket fails or the proxy goes.
    pub(super) async fn run(mut self) -> End {
        loop {
            let mode = *self.modes.borrow_and_update();
            if mode == LinkMode::Reset {
                return End::Reset;
            }
            if self.eof && self.held.is_empty() {
                // The source has said all it will and all of it was delivered: pass the FIN on.
                return match self.to.shutdown().await {
                    Ok(()) => End::Eof,
                    Err(e) => End::Failed(e),
                };
            }
            let now = Instant::now();
            let step = self.plan(mode, now);
            let room = if step.read {
                self.held.make_room(step.grow)
            } else {
                0
            };
            let (out, free) = self.held.io_slices(step.write);
            tokio::select! {
                // A mode change is looked at before any I/O that is ready at the same moment,
                // so bytes that arrive after `set_mode` always get the new mode (on a busy
                // machine the pump can wake to find both ready).
                biased;
                changed = self.modes.changed() => {
                    if changed.is_err() {
                        return End::Closed;
                    }
                }
                read = self.from.read(free), if room > 0 => match read {
                    Ok(0) => self.eof = true,
                    Ok(n) => {
                        self.shared.counters.read(self.dir, n);
                        self.stamp(n, mode);
                    }
                    Err(e) => return End::Failed(e),
                },
                written = self.to.write(out), if step.write > 0 => match written {
                    Ok(0) => return End::Failed(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.delivered(n),
                    Err(e) => return End::Failed(e),
                },
                () = sleep_until(step.wake) => {}
            }
        }
    }

    /// Decides, for `mode` at `now`, whether to read, how much to write, and when to look again.
    fn plan(&mut self, mode: LinkMode, now: Instant) -> Step {
        let hold = Step {
            read: false,
            grow: false,
            write: 0,
            wake: None,
        };
        let (delayed, rate) = match mode {
            LinkMode::Pass => (false, None),
            LinkMode::Delay { .. } => (true, None),
            LinkMode::Bandwidth { bytes_per_sec } if bytes_per_sec > 0 => {
                (false, Some(bytes_per_sec))
            }
            LinkMode::Blackhole | LinkMode::Bandwidth { .. } | LinkMode::Reset => return hold,
        };
        if self.credit.is_some_and(|c| Some(c.rate) != rate) {
            self.credit = None;
        }
        let mut step = Step {
            read: !self.eof,
            grow: delayed,
            ..hold
        };
        if self.held.is_empty() {
            return step;
        }
        let due = if delayed {
            self.held.due(now)
        } else {
            self.held.len()
        };
        if due == 0 {
            step.wake = self.held.next_release();
            return step;
        }
        let Some(rate) = rate else {
            step.write = due;
            return step;
        };
        let credit = *self.credit.get_or_insert_with(|| {
            let bytes = due.min(burst_for(rate));
            let wait = self.shared.bucket(self.dir).reserve(rate, bytes, now);
            Credit {
                bytes,
                usable_at: now + wait,
                rate,
            }
        });
        if credit.usable_at > now {
            step.wake = Some(credit.usable_at);
        } else {
            step.write = due.min(credit.bytes);
        }
        step
    }

    /// Files `n` freshly read bytes with their release time.
    fn stamp(&mut self, n: usize, mode: LinkMode) {
        let now = Instant::now();
        if let LinkMode::Delay { latency, jitter } = mode {
            let at = (now + self.jitter.delay(latency, jitter)).max(self.last_release);
            self.last_release = at;
            self.held.push(n, at, false);
        } else {
            self.held.push(n, now, true);
        }
    }

    /// Accounts for `n` bytes written.
    fn delivered(&mut self, n: usize) {
        self.held.consume(n);
        if let Some(credit) = &mut self.credit {
            credit.bytes = credit.bytes.saturating_sub(n);
            if credit.bytes == 0 {
                self.credit = None;
            }
        }
        self.shared.counters.delivered(self.dir, n);
    }
}
