//! How long the log writer's durable commits take: a small histogram the writer thread fills
//! once per commit and `/status` reads, so a drill can tell the disk's share of a latency.

use std::sync::Mutex;
use std::time::Duration;

use raftdrill_wire::CommitTimes;

/// Durable commit times of the log writer.
#[derive(Debug)]
pub struct CommitStats {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Microseconds, 1 µs to 60 s, 3 significant digits.
    micros: hdrhistogram::Histogram<u64>,
    jobs: u64,
    errors: u64,
    last_error: Option<String>,
}

impl Default for CommitStats {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                micros: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
                    .expect("constant bounds are valid"),
                jobs: 0,
                errors: 0,
                last_error: None,
            }),
        }
    }
}

impl CommitStats {
    /// One durable commit of `jobs` queued jobs that took `took`.
    pub fn record(&self, took: Duration, jobs: usize) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut i) = self.inner.lock() {
            i.micros.saturating_record(us.max(1));
            i.jobs += jobs as u64;
        }
    }

    /// A commit that failed (it is tried again).
    pub fn error(&self, what: &str) {
        if let Ok(mut i) = self.inner.lock() {
            i.errors += 1;
            i.last_error = Some(what.to_string());
        }
    }

    /// The figures so far.
    pub fn times(&self) -> CommitTimes {
        let i = self.inner.lock().expect("commit stats lock");
        let ms = |q: f64| i.micros.value_at_quantile(q) as f64 / 1000.0;
        CommitTimes {
            commits: i.micros.len(),
            jobs: i.jobs,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: i.micros.max() as f64 / 1000.0,
            errors: i.errors,
            last_error: i.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_commits_and_reports_percentiles() {
        let s = CommitStats::default();
        for ms in 1..=100 {
            s.record(Duration::from_millis(ms), 2);
        }
        let t = s.times();
        assert_eq!((t.commits, t.jobs), (100, 200));
        assert!((t.p50_ms - 50.0).abs() < 0.1, "{t:?}");
        assert!((t.p99_ms - 99.0).abs() < 0.1, "{t:?}");
        assert!((t.max_ms - 100.0).abs() < 0.1, "{t:?}");
    }
}
