//! `latency.hlog`: every second's latency histograms in HdrHistogram's interval log format
//! (what `HistogramLogProcessor` and the other HdrHistogram tools read), written by a thread
//! of its own so the merger only sends on a channel. The untagged line of each second holds
//! every operation; lines tagged with an operation kind (`read`, `update`, ...) hold that
//! kind's. Values are microseconds; times count from the run's origin (`#[StartTime]`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use tokio::sync::mpsc;

use crate::RunClock;
use crate::stream::Interval;

/// The interval log could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the interval log {path}: {detail}")]
pub struct HlogError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub detail: String,
}

/// The writer thread: resolves to the number of seconds written.
pub type HlogTask = tokio::task::JoinHandle<Result<u64, HlogError>>;

/// Creates `path` and starts its writer; the log ends when every sender is dropped.
pub fn spawn_writer(
    path: &Path,
    clock: Arc<RunClock>,
) -> Result<(mpsc::UnboundedSender<Interval>, HlogTask), HlogError> {
    let err = |detail: String| HlogError {
        path: path.to_path_buf(),
        detail,
    };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Interval>();
    let path = path.to_path_buf();
    let task = tokio::task::spawn_blocking(move || {
        let err = |detail: String| HlogError {
            path: path.clone(),
            detail,
        };
        let mut out = std::io::BufWriter::new(file);
        let mut serializer = V2DeflateSerializer::new();
        // The origin is known once the first second arrives.
        let Some(first) = rx.blocking_recv() else {
            return Ok(0);
        };
        let origin = UNIX_EPOCH
            + Duration::from_micros(
                clock
                    .origin_unix_us()
                    .unwrap_or_else(crate::clock::unix_us_now),
            );
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("raftdrill load: latency in microseconds; untagged = every operation")
            .with_start_time(origin)
            .with_base_time(origin)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| err(e.to_string()))?;
        let mut written = 0;
        let mut next = Some(first);
        while let Some(i) = next {
            let start = Duration::from_secs_f64((i.snapshot.t - i.snapshot.interval).max(0.0));
            let length = Duration::from_secs_f64(i.snapshot.interval.max(0.0));
            log.write_histogram(&i.acc.latency, start, length, None)
                .map_err(|e| err(e.to_string()))?;
            for (kind, h) in &i.acc.latency_per_kind {
                let tag = Tag::new(kind.as_str());
                log.write_histogram(h, start, length, tag)
                    .map_err(|e| err(e.to_string()))?;
            }
            written += 1;
            next = rx.blocking_recv();
        }
        drop(log);
        out.flush().map_err(|e| err(e.to_string()))?;
        Ok(written)
    });
    Ok((tx, task))
}

/// One histogram of an interval log.
#[derive(Debug, Clone)]
pub struct HlogEntry {
    /// Its tag (an operation kind), or `None` for every operation.
    pub tag: Option<String>,
    /// Seconds from the log's base time to the interval's start.
    pub start_s: f64,
    /// The interval's length, seconds.
    pub length_s: f64,
    /// The latencies, µs.
    pub histogram: hdrhistogram::Histogram<u64>,
}

/// Reads an interval log (this module's, or any HdrHistogram tool's with V2 histograms).
pub fn read(path: &Path) -> Result<Vec<HlogEntry>, HlogError> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let err = |detail: String| HlogError {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let LogEntry::Interval(i) = entry.map_err(|e| err(format!("{e:?}")))? else {
            continue;
        };
        let histogram =
            crate::stream::decode(i.encoded_histogram()).map_err(|e| err(e.to_string()))?;
        out.push(HlogEntry {
            tag: i.tag().map(|t| t.as_str().to_string()),
            start_s: i.start_timestamp().as_secs_f64(),
            length_s: i.duration().as_secs_f64(),
            histogram,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Accumulator, Snapshot, new_histogram};
    use crate::workload::OpKind;

    #[tokio::test]
    async fn seconds_are_written_as_an_interval_log_hdrhistogram_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.hlog");
        let clock = Arc::new(RunClock::new());
        clock.start_now();
        let (tx, task) = spawn_writer(&path, clock).unwrap();
        for n in 1..=3u64 {
            let mut acc = Accumulator::default();
            let mut h = new_histogram::<u64>();
            for v in 0..100 * n {
                h.record(1_000 + v).unwrap();
            }
            acc.add(OpKind::Read, &h, &h);
            let snapshot = Snapshot {
                t: n as f64,
                interval: 1.0,
                ..Snapshot::default()
            };
            tx.send(Interval { snapshot, acc }).unwrap();
        }
        drop(tx);
        assert_eq!(task.await.unwrap().unwrap(), 3);
        let entries = read(&path).unwrap();
        let counts: Vec<u64> = entries
            .iter()
            .filter(|e| e.tag.is_none())
            .map(|e| e.histogram.len())
            .collect();
        let tagged = entries
            .iter()
            .filter(|e| e.tag.as_deref() == Some("read"))
            .count();
        assert_eq!(
            entries.len(),
            6,
            "one untagged and one tagged line a second"
        );
        assert_eq!(entries[2].start_s, 1.0);
        assert_eq!(counts, vec![100, 200, 300]);
        assert_eq!(tagged, 3);
    }
}
