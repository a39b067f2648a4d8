//! The fault modes through the kernel: error, full, delay, stall.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use raftdrill_faultfs::{ErrorOn, Mode, Op, PowerLoss};

use crate::support::{ChildGuard, Mounted, durable, errno_of, open_rw, wait_until};

#[tokio::test]
async fn error_mode_fails_writes_and_syncs_until_pass() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"");
    let w = open_rw(&f);
    m.client
        .set_mode(Mode::Error {
            probability: 1.0,
            seed: 1,
            on: ErrorOn::default(),
            drop_dirty: false,
        })
        .await
        .unwrap();
    assert_eq!(errno_of(w.write_all_at(b"x", 0)), libc::EIO);
    assert_eq!(errno_of(w.sync_all()), libc::EIO);
    assert_eq!(errno_of(w.sync_data()), libc::EIO);
    assert_eq!(
        std::fs::read(&f).unwrap(),
        b"",
        "reads still work, nothing was written"
    );
    assert!(m.stats().await.errors_injected >= 3);
    m.client.set_mode(Mode::Pass).await.unwrap();
    w.write_all_at(b"x", 0).unwrap();
    w.sync_all().unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"x");
}

/// Every fsync fails, writes pass; with `drop_dirty` a failure loses the data (fsyncgate).
fn failing_fsyncs(drop_dirty: bool) -> Mode {
    Mode::Error {
        probability: 1.0,
        seed: 1,
        on: ErrorOn::Fsync,
        drop_dirty,
    }
}

#[tokio::test]
async fn a_failed_fsync_with_drop_dirty_loses_the_data_and_the_next_one_succeeds() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"old");
    let w = open_rw(&f);
    m.client.set_mode(failing_fsyncs(true)).await.unwrap();
    w.write_all_at(b"new data", 0).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"new data");
    assert_eq!(errno_of(w.sync_data()), libc::EIO);
    assert_eq!(
        std::fs::read(&f).unwrap(),
        b"old",
        "the failed fsync dropped the dirty data"
    );
    // The retry an application makes succeeds, and persists nothing of the lost write.
    w.sync_all().unwrap();
    let s = m.stats().await;
    assert_eq!((s.dirty_drops, s.dirty_bytes_dropped), (1, 8), "{s:?}");
    m.client.set_mode(Mode::Pass).await.unwrap();
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"old");
}

#[tokio::test]
async fn a_failed_fsync_without_drop_dirty_keeps_the_data_for_a_later_one() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"old");
    let w = open_rw(&f);
    m.client.set_mode(failing_fsyncs(false)).await.unwrap();
    w.write_all_at(b"new data", 0).unwrap();
    assert_eq!(errno_of(w.sync_data()), libc::EIO);
    assert_eq!(std::fs::read(&f).unwrap(), b"new data", "still unsynced");
    assert_eq!(errno_of(w.sync_all()), libc::EIO, "every fsync fails");
    assert_eq!(m.stats().await.dirty_drops, 0);
    m.client.set_mode(Mode::Pass).await.unwrap();
    w.sync_all().unwrap();
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"new data");
}

#[tokio::test]
async fn a_bad_mode_is_refused() {
    let mut m = Mounted::new().await;
    let err = m
        .client
        .set_mode(Mode::Error {
            probability: 2.0,
            seed: 0,
            on: ErrorOn::default(),
            drop_dirty: false,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("probability"), "{err}");
    assert_eq!(m.stats().await.mode, Mode::Pass);
}

#[tokio::test]
async fn full_mode_refuses_growth_but_allows_overwrites() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"0123456789");
    let w = open_rw(&f);
    m.client.set_mode(Mode::Full).await.unwrap();
    w.write_all_at(b"ab", 2).unwrap();
    assert_eq!(errno_of(w.write_all_at(b"xyz", 8)), libc::ENOSPC);
    let mut append = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    assert_eq!(errno_of(append.write_all(b"more")), libc::ENOSPC);
    assert_eq!(std::fs::read(&f).unwrap(), b"01ab456789");
    assert!(m.stats().await.enospc_injected >= 2);
    m.client.set_mode(Mode::Pass).await.unwrap();
    w.write_all_at(b"xyz", 8).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"01ab4567xyz");
}

/// The median of `n` fsyncs of one small write each.
fn fsync_median(file: &File, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            file.write_all_at(b"x", i as u64).unwrap();
            let start = Instant::now();
            file.sync_all().unwrap();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

#[tokio::test]
async fn delay_mode_slows_fsync_by_at_least_the_delay() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"");
    let w = open_rw(&f);
    let baseline = fsync_median(&w, 5);
    m.client
        .set_mode(Mode::Delay {
            latency: Duration::from_millis(50),
            jitter: Duration::ZERO,
            ops: vec![Op::Fsync],
        })
        .await
        .unwrap();
    let delayed = fsync_median(&w, 3);
    eprintln!(
        "fsync median: {baseline:?} in pass mode, {delayed:?} with a 50 ms delay ({:.1}x)",
        delayed.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
    );
    // A lower bound only: a busy machine may take longer, never shorter.
    assert!(delayed >= Duration::from_millis(40), "{delayed:?}");
    assert!(m.stats().await.delayed >= 3);
}

#[tokio::test]
async fn an_fsync_during_a_stall_completes_only_after_the_release() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"");
    let w = open_rw(&f);
    w.write_all_at(b"before the stall", 0).unwrap();
    m.client
        .set_mode(Mode::Stall { duration: None })
        .await
        .unwrap();
    let released = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let seen = released.clone();
    let worker = std::thread::spawn(move || {
        let r = w.sync_all();
        // What the stall flag said when the fsync came back.
        tx.send((r.is_ok(), seen.load(Ordering::SeqCst))).unwrap();
    });
    m.wait_stats("the fsync to be held", |s| s.stalled >= 1)
        .await;
    assert!(rx.try_recv().is_err(), "a held fsync cannot have completed");
    // Lookups and attribute reads still answer during a stall.
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 16);
    released.store(true, Ordering::SeqCst);
    m.client.set_mode(Mode::Pass).await.unwrap();
    let (ok, after_release) =
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)).unwrap())
            .await
            .unwrap();
    worker.join().unwrap();
    assert!(ok);
    assert!(
        after_release,
        "the fsync returned before the stall was released"
    );
}

#[tokio::test]
async fn a_process_killed_during_a_stall_can_be_reaped_and_its_write_never_lands() {
    let mut m = Mounted::new().await;
    m.client
        .set_mode(Mode::Stall { duration: None })
        .await
        .unwrap();
    let target = m.path("from-the-dead");
    let mut child = ChildGuard(
        Command::new("sh")
            .arg("-c")
            .arg("echo hi > \"$0\"")
            .arg(&target)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    m.wait_stats("the create to be held", |s| s.stalled >= 1)
        .await;
    child.0.kill().unwrap();
    // The kernel holds a killed process until its FUSE request is answered; faultfs must
    // answer it for the process to be reaped while the stall goes on.
    let reaped = tokio::task::spawn_blocking(move || {
        let ok = wait_until(Duration::from_secs(20), || {
            matches!(child.0.try_wait(), Ok(Some(_)))
        });
        (ok, child)
    })
    .await
    .unwrap();
    assert!(
        reaped.0,
        "the killed process was not reaped during the stall"
    );
    assert!(m.stats().await.stall_abandoned >= 1);
    m.client.set_mode(Mode::Pass).await.unwrap();
    assert!(!target.exists(), "the dead process's create must not land");
}

#[tokio::test]
async fn a_timed_stall_releases_by_itself() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"");
    m.client
        .set_mode(Mode::Stall {
            duration: Some(Duration::from_millis(200)),
        })
        .await
        .unwrap();
    let w = open_rw(&f);
    tokio::task::spawn_blocking(move || w.sync_all())
        .await
        .unwrap()
        .unwrap();
    let s = m.stats().await;
    assert_eq!(s.mode, Mode::Pass);
    assert!(s.stalled >= 1, "{s:?}");
}

#[tokio::test]
async fn shared_mappings_are_refused() {
    // Direct I/O keeps the page cache out of the way of power loss; the price is that the
    // kernel refuses MAP_SHARED. redb does not map its file (checked by the redb test).
    let m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"0123456789");
    let file = open_rw(&f);
    use std::os::fd::AsRawFd;
    // SAFETY: a plain mmap call; a mapping, if one were made, is unmapped right away.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            10,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    let err = std::io::Error::last_os_error();
    if p != libc::MAP_FAILED {
        // SAFETY: `p` is the 10-byte mapping made above.
        unsafe { libc::munmap(p, 10) };
        panic!("MAP_SHARED unexpectedly worked");
    }
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
}
