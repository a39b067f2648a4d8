//! The disk probe: during a drill, a 4 KiB write and an `fdatasync` every 100 ms on the
//! filesystem that holds the nodes' data, so a latency figure can be told apart from the
//! disk's own stalls. Ten small syncs a second add nothing measurable to the nodes' load.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Time between probes.
const EVERY: Duration = Duration::from_millis(100);

/// What the probe measured, as summary.json carries it under `disk`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DiskProbe {
    /// The folder whose filesystem was probed.
    pub path: PathBuf,
    /// Number of 4 KiB write + fdatasync pairs.
    pub samples: u64,
    /// fdatasync latency, ms.
    pub fdatasync_p50_ms: f64,
    /// fdatasync latency, ms.
    pub fdatasync_p99_ms: f64,
    /// fdatasync latency, ms.
    pub fdatasync_max_ms: f64,
}

/// A running probe; [`Prober::finish`] stops it and returns the figures.
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Option<DiskProbe>>,
}

impl Prober {
    /// Starts probing the filesystem of `dir` (a file `.raftdrill-disk-probe` is written there
    /// and removed at the end).
    pub fn start(dir: &Path) -> std::io::Result<Prober> {
        let path = dir.join(".raftdrill-disk-probe");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("disk-probe".into())
            .spawn(move || {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok()?;
                let block = [0x5au8; 4096];
                loop {
                    let ok =
                        file.seek(SeekFrom::Start(0)).is_ok() && file.write_all(&block).is_ok();
                    let began = Instant::now();
                    if ok && file.sync_data().is_ok() {
                        let us = began.elapsed().as_micros() as u64;
                        hist.saturating_record(us.max(1));
                    }
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(EVERY);
                }
                drop(file);
                let _ = std::fs::remove_file(&path);
                let ms = |v: u64| v as f64 / 1000.0;
                Some(DiskProbe {
                    path: dir,
                    samples: hist.len(),
                    fdatasync_p50_ms: ms(hist.value_at_quantile(0.5)),
                    fdatasync_p99_ms: ms(hist.value_at_quantile(0.99)),
                    fdatasync_max_ms: ms(hist.max()),
                })
            })?;
        Ok(Prober { stop, thread })
    }

    /// Stops the probe and returns what it measured (`None` if nothing could be measured).
    pub fn finish(self) -> Option<DiskProbe> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok().flatten().filter(|p| p.samples > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_measures_syncs_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = Prober::start(dir.path()).unwrap();
        let figures = p.finish().expect("measured");
        assert!(figures.samples >= 1, "{figures:?}");
        assert!(figures.fdatasync_p50_ms > 0.0);
        assert!(figures.fdatasync_max_ms >= figures.fdatasync_p99_ms);
        assert!(!dir.path().join(".raftdrill-disk-probe").exists());
    }
}
