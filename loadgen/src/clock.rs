//! The run's clock: one origin (t = 0) shared by the load, the snapshots, the history and, in a
//! drill, the fault schedule, the poller and the recovery figures.
//!
//! The origin is not the moment a run is asked for but the moment its whole worker pool can
//! claim work: goose builds one user (with its own HTTP client) at a time, and a pool of a few
//! hundred takes a good part of a second on a busy machine. Had the open-loop clock started
//! before that, every slot of the start-up would begin late and its latency would be goose's,
//! not the store's. So the schedule sets the origin once every worker has arrived at its first
//! claim (or a start deadline has passed), and everything that reports a time reads it here.

use std::sync::OnceLock;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The origin of a run, set once.
#[derive(Debug, Default)]
pub struct RunClock {
    origin: OnceLock<Instant>,
    /// The origin on the wall clock, Unix microseconds (for logs other machines merge).
    wall: OnceLock<u64>,
    started: Notify,
}

impl RunClock {
    /// A clock that has not started.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the origin to now, unless it is already set; returns the origin.
    pub fn start_now(&self) -> Instant {
        let mut set = false;
        let origin = *self.origin.get_or_init(|| {
            set = true;
            Instant::now()
        });
        if set {
            let _ = self.wall.set(unix_us_now());
            self.started.notify_waiters();
        }
        origin
    }

    /// Sets the origin to `at` (which `unix_us` is on the wall clock), unless it is already
    /// set: a controller's clock for generators that all start at one agreed moment.
    pub fn start_at(&self, at: Instant, unix_us: u64) -> Instant {
        let mut set = false;
        let origin = *self.origin.get_or_init(|| {
            set = true;
            at
        });
        if set {
            let _ = self.wall.set(unix_us);
            self.started.notify_waiters();
        }
        origin
    }

    /// The origin on this machine's wall clock, in Unix microseconds, once set.
    pub fn origin_unix_us(&self) -> Option<u64> {
        self.origin.get()?;
        // Set right after the origin; a reader between the two sees it a moment later.
        Some(*self.wall.get().unwrap_or(&unix_us_now()))
    }

    /// The origin, once set.
    pub fn origin(&self) -> Option<Instant> {
        self.origin.get().copied()
    }

    /// Waits for the origin.
    pub async fn started(&self) -> Instant {
        loop {
            let notified = self.started.notified();
            if let Some(o) = self.origin() {
                return o;
            }
            notified.await;
        }
    }

    /// Seconds from the origin to `at` (negative before it); 0 while the clock has not started.
    pub fn secs_at(&self, at: Instant) -> f64 {
        match self.origin() {
            Some(o) if at >= o => (at - o).as_secs_f64(),
            Some(o) => -(o - at).as_secs_f64(),
            None => 0.0,
        }
    }

    /// Seconds since the origin; 0 while the clock has not started.
    pub fn now_s(&self) -> f64 {
        self.secs_at(Instant::now())
    }
}

/// Now on the wall clock, Unix microseconds.
pub fn unix_us_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waiters_wake_when_the_origin_is_set_and_it_is_set_once() {
        let clock = Arc::new(RunClock::new());
        assert_eq!(clock.now_s(), 0.0);
        let c = clock.clone();
        let waiter = tokio::spawn(async move { c.started().await });
        tokio::time::sleep(Duration::from_secs(2)).await;
        let first = clock.start_now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(clock.start_now(), first, "a second call keeps the origin");
        assert_eq!(waiter.await.unwrap(), first);
        assert!((clock.now_s() - 1.0).abs() < 1e-9);
        assert!((clock.secs_at(first - Duration::from_millis(500)) + 0.5).abs() < 1e-9);
    }
}
