//! The active mode, applied to each request before it runs: run it now, fail it, run it after a
//! delay, or park it until a stall ends.
//!
//! Nothing here blocks a FUSE worker thread: a delayed request sleeps on the tokio timer and
//! then runs on the blocking pool, and a stalled one waits in a list. So a delay on one
//! operation never holds up another, and lookups, attribute reads and listings still answer
//! during a stall (the kernel keeps their results in no cache, since all timeouts are zero).
//!
//! A stalled request holds its caller in the kernel: a process SIGKILLed while it waits cannot
//! exit until its request is answered. So while a stall lasts, a watcher answers EINTR, without
//! running it, to every parked request whose caller has a SIGKILL pending; the controller can
//! then reap a node it killed during a stall, and the dead node's request never lands.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use raftdrill_rng::SplitMix64;

use crate::mode::{Mode, Op};
use crate::stats::{Counters, bump};

/// The work of one request: told whether to run or how to fail.
pub(crate) type Job = Box<dyn FnOnce(Verdict) + Send + 'static>;

/// What the mode decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Run it.
    Run,
    /// Answer this errno without running it (already counted).
    Fail(i32),
    /// A sync under `drop_dirty` fails with EIO: an fsync of a file drops the file's unsynced
    /// data first, unless its previous fsync failed that way (then this one succeeds); an
    /// fsync of a directory just fails. Not counted yet: the receiver knows whether it failed.
    FailDroppingDirty,
}

/// What a request does, for deciding which faults apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// read: delay (when asked for), stall.
    Read,
    /// write: delay, stall, error, full (the full check runs inside the write).
    Write,
    /// fsync, fdatasync, fsync of a directory: delay, stall, error (and `drop_dirty`).
    Sync,
    /// create, mknod, mkdir, unlink, rmdir, rename, open, setattr, fallocate: stall.
    Change,
    /// lookup, getattr, readdir, statfs, access, flush, release: never touched.
    Meta,
}

impl Class {
    /// Whether this class is the operation kind `op` (what delay and error modes name).
    fn is(self, op: Op) -> bool {
        matches!(
            (self, op),
            (Class::Read, Op::Read) | (Class::Write, Op::Write) | (Class::Sync, Op::Fsync)
        )
    }
}

/// How often a stall looks for callers that were killed, and for its own end.
const STALL_TICK: Duration = Duration::from_millis(20);

const PASS: u8 = 0;
const OTHER: u8 = 1;
const FULL: u8 = 2;

struct Parked {
    /// Thread id of the caller, as the kernel reports it.
    caller: u32,
    job: Job,
}

struct State {
    mode: Mode,
    rng: SplitMix64,
    parked: Vec<Parked>,
    /// Bumped on every mode change, so a stall's watcher knows when its stall is over.
    generation: u64,
}

/// The active mode and what it holds.
pub(crate) struct Faults {
    /// `PASS` lets a request skip the lock entirely.
    fast: AtomicU8,
    state: Mutex<State>,
    rt: tokio::runtime::Handle,
    counters: Arc<Counters>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether thread `tid` is gone or has a SIGKILL pending (its own or its process's).
fn caller_killed(tid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return true;
    };
    let sigkill = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|line| {
        let mask = line
            .strip_prefix("SigPnd:")
            .or_else(|| line.strip_prefix("ShdPnd:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & sigkill != 0)
    }) || status
        .lines()
        .any(|l| l.starts_with("State:") && matches!(l.split_whitespace().nth(1), Some("Z" | "X")))
}

impl Faults {
    /// Pass mode; delayed and released requests run on `rt`'s blocking pool.
    pub(crate) fn new(rt: tokio::runtime::Handle, counters: Arc<Counters>) -> Arc<Self> {
        Arc::new(Self {
            fast: AtomicU8::new(PASS),
            state: Mutex::new(State {
                mode: Mode::Pass,
                rng: SplitMix64::new(0),
                parked: Vec::new(),
                generation: 0,
            }),
            rt,
            counters,
        })
    }

    /// The active mode.
    pub(crate) fn mode(&self) -> Mode {
        lock(&self.state).mode.clone()
    }

    /// Whether writes that grow a file must fail with ENOSPC.
    pub(crate) fn disk_full(&self) -> bool {
        self.fast.load(Ordering::Acquire) == FULL
    }

    /// Switches mode. Requests parked by a stall run now, in arrival order.
    pub(crate) fn set_mode(self: &Arc<Self>, mode: Mode) {
        self.switch(mode, None);
    }

    /// Switches mode, only if no other switch happened since `generation` (when given).
    fn switch(self: &Arc<Self>, mode: Mode, generation: Option<u64>) {
        let (released, generation) = {
            let mut st = lock(&self.state);
            if generation.is_some_and(|g| g != st.generation) {
                return;
            }
            st.generation += 1;
            if let Mode::Error { seed, .. } = mode {
                st.rng = SplitMix64::new(seed);
            } else {
                st.rng = SplitMix64::new(st.generation);
            }
            st.mode = mode.clone();
            let fast = match mode {
                Mode::Pass => PASS,
                Mode::Full => FULL,
                _ => OTHER,
            };
            self.fast.store(fast, Ordering::Release);
            (std::mem::take(&mut st.parked), st.generation)
        };
        tracing::info!(mode = ?mode, released = released.len(), "fault mode set");
        if !released.is_empty() {
            self.rt.spawn_blocking(move || {
                for p in released {
                    (p.job)(Verdict::Run);
                }
            });
        }
        if let Mode::Stall { duration } = mode {
            let until = duration.map(|d| Instant::now() + d);
            let me = self.clone();
            self.rt
                .spawn(async move { me.watch_stall(generation, until).await });
        }
    }

    /// While stall `generation` lasts: answer requests of killed callers, end it at `until`.
    async fn watch_stall(self: Arc<Self>, generation: u64, until: Option<Instant>) {
        loop {
            let tick = match until {
                Some(u) => u.saturating_duration_since(Instant::now()).min(STALL_TICK),
                None => STALL_TICK,
            };
            tokio::time::sleep(tick).await;
            if until.is_some_and(|u| Instant::now() >= u) {
                self.switch(Mode::Pass, Some(generation));
                return;
            }
            let abandoned: Vec<Parked> = {
                let mut st = lock(&self.state);
                if st.generation != generation {
                    return;
                }
                let (dead, alive) = std::mem::take(&mut st.parked)
                    .into_iter()
                    .partition(|p| caller_killed(p.caller));
                st.parked = alive;
                dead
            };
            if !abandoned.is_empty() {
                tracing::info!(
                    count = abandoned.len(),
                    "stalled requests of killed callers answered EINTR"
                );
                for p in abandoned {
                    bump(&self.counters.stall_abandoned);
                    (p.job)(Verdict::Fail(libc::EINTR));
                }
            }
        }
    }

    /// Applies the mode to one request of `class` from thread `caller`; `job` runs now, later,
    /// or is told its errno.
    pub(crate) fn submit(self: &Arc<Self>, class: Class, caller: u32, job: Job) {
        if class == Class::Meta || self.fast.load(Ordering::Acquire) != OTHER {
            return job(Verdict::Run);
        }
        let mut st = lock(&self.state);
        match &st.mode {
            Mode::Stall { .. } => {
                bump(&self.counters.stalled);
                st.parked.push(Parked { caller, job });
            }
            Mode::Error {
                probability,
                on,
                drop_dirty,
                ..
            } if [Op::Write, Op::Fsync]
                .into_iter()
                .any(|op| class.is(op) && on.fails(op)) =>
            {
                let (p, dropping) = (*probability, *drop_dirty && class == Class::Sync);
                let fail = st.rng.chance(p);
                drop(st);
                if !fail {
                    job(Verdict::Run);
                } else if dropping {
                    job(Verdict::FailDroppingDirty);
                } else {
                    bump(&self.counters.errors_injected);
                    job(Verdict::Fail(libc::EIO));
                }
            }
            Mode::Delay {
                latency,
                jitter,
                ops,
            } if ops.iter().any(|op| class.is(*op)) => {
                let (latency, jitter) = (*latency, *jitter);
                let wait = st.rng.delay(latency, jitter);
                drop(st);
                bump(&self.counters.delayed);
                let me = self.clone();
                self.rt.spawn(async move {
                    tokio::time::sleep(wait).await;
                    me.after_delay(caller, job);
                });
            }
            _ => {
                drop(st);
                job(Verdict::Run);
            }
        }
    }

    /// A delayed request is due: it runs, unless a stall began meanwhile (then it waits too).
    fn after_delay(&self, caller: u32, job: Job) {
        let mut st = lock(&self.state);
        if matches!(st.mode, Mode::Stall { .. }) {
            bump(&self.counters.stalled);
            st.parked.push(Parked { caller, job });
            return;
        }
        drop(st);
        self.rt.spawn_blocking(move || job(Verdict::Run));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::mode::ErrorOn;

    fn faults() -> Arc<Faults> {
        Faults::new(tokio::runtime::Handle::current(), Arc::default())
    }

    /// A job that reports its verdict on a channel.
    fn probe(tx: &mpsc::Sender<Verdict>) -> Job {
        let tx = tx.clone();
        Box::new(move |r| tx.send(r).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn error_mode_fails_writes_and_syncs_only() {
        let f = faults();
        let (tx, rx) = mpsc::channel();
        f.set_mode(Mode::Error {
            probability: 1.0,
            seed: 1,
            on: ErrorOn::default(),
            drop_dirty: false,
        });
        f.submit(Class::Write, 1, probe(&tx));
        f.submit(Class::Sync, 1, probe(&tx));
        f.submit(Class::Read, 1, probe(&tx));
        f.submit(Class::Change, 1, probe(&tx));
        let got: Vec<_> = rx.try_iter().collect();
        let eio = Verdict::Fail(libc::EIO);
        assert_eq!(got, vec![eio, eio, Verdict::Run, Verdict::Run]);
        assert_eq!(f.counters.errors_injected.load(Ordering::Relaxed), 2);
        f.set_mode(Mode::Pass);
        f.submit(Class::Write, 1, probe(&tx));
        assert_eq!(rx.try_recv(), Ok(Verdict::Run));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn error_mode_on_fsync_fails_syncs_only_and_can_drop_dirty_data() {
        let f = faults();
        let (tx, rx) = mpsc::channel();
        for (on, drop_dirty, sync) in [
            (ErrorOn::Fsync, false, Verdict::Fail(libc::EIO)),
            (ErrorOn::Fsync, true, Verdict::FailDroppingDirty),
            (ErrorOn::WriteOrFsync, true, Verdict::FailDroppingDirty),
        ] {
            f.set_mode(Mode::Error {
                probability: 1.0,
                seed: 1,
                on,
                drop_dirty,
            });
            f.submit(Class::Write, 1, probe(&tx));
            f.submit(Class::Sync, 1, probe(&tx));
            let write = if on == ErrorOn::Fsync {
                Verdict::Run
            } else {
                Verdict::Fail(libc::EIO)
            };
            assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![write, sync]);
        }
        f.set_mode(Mode::Error {
            probability: 1.0,
            seed: 1,
            on: ErrorOn::Write,
            drop_dirty: false,
        });
        f.submit(Class::Sync, 1, probe(&tx));
        assert_eq!(rx.try_recv(), Ok(Verdict::Run), "on = write spares syncs");
        // Counted: the plain failures only; a dropping one is counted where it is answered.
        assert_eq!(f.counters.errors_injected.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stall_parks_until_released_and_meta_still_runs() {
        let f = faults();
        let (tx, rx) = mpsc::channel();
        f.set_mode(Mode::Stall { duration: None });
        // Our own thread id: alive and not killed, so the watcher leaves it parked.
        let me = unsafe { libc::gettid() } as u32;
        f.submit(Class::Sync, me, probe(&tx));
        f.submit(Class::Meta, me, probe(&tx));
        assert_eq!(rx.try_recv(), Ok(Verdict::Run), "meta runs during a stall");
        assert!(rx.try_recv().is_err(), "the sync is parked");
        f.set_mode(Mode::Pass);
        let got = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(got, Ok(Verdict::Run));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_stall_ends_by_itself() {
        let f = faults();
        let (tx, rx) = mpsc::channel();
        f.set_mode(Mode::Stall {
            duration: Some(Duration::from_millis(50)),
        });
        let me = unsafe { libc::gettid() } as u32;
        f.submit(Class::Write, me, probe(&tx));
        let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(got, Ok(Verdict::Run));
        assert_eq!(f.mode(), Mode::Pass);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stalled_requests_of_gone_callers_are_answered_eintr() {
        let f = faults();
        let (tx, rx) = mpsc::channel();
        f.set_mode(Mode::Stall { duration: None });
        // A thread id that cannot exist (above pid_max): its caller counts as gone.
        f.submit(Class::Write, u32::MAX - 1, probe(&tx));
        let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(got, Ok(Verdict::Fail(libc::EINTR)));
        assert_eq!(f.counters.stall_abandoned.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delay_applies_to_the_listed_ops_only() {
        let f = faults();
        let (tx, rx) = mpsc::channel();
        f.set_mode(Mode::Delay {
            latency: Duration::from_millis(30),
            jitter: Duration::ZERO,
            ops: vec![Op::Fsync],
        });
        f.submit(Class::Write, 1, probe(&tx));
        assert_eq!(rx.try_recv(), Ok(Verdict::Run), "writes are not delayed");
        let start = Instant::now();
        f.submit(Class::Sync, 1, probe(&tx));
        let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(got, Ok(Verdict::Run));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(f.counters.delayed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_live_thread_is_not_killed_and_a_missing_one_is() {
        let me = unsafe { libc::gettid() } as u32;
        assert!(!caller_killed(me));
        assert!(caller_killed(u32::MAX - 1));
    }
}
