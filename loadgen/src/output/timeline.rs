//! `timeline.csv`: one row per second.

use std::io::Write;

use crate::metrics::Snapshot;

/// One row of `timeline.csv`. `leader` and `event` are the caller's to fill.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineRow {
    /// Seconds since the start.
    pub t_s: f64,
    /// Operations per second.
    pub tps: f64,
    /// Operations ok.
    pub ok: u64,
    /// Operations failed or unknown.
    pub errors: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// The leader's node id, when known.
    pub leader: Option<u64>,
    /// What happened this second (a fault, a recovery).
    pub event: Option<String>,
}

impl From<&Snapshot> for TimelineRow {
    fn from(s: &Snapshot) -> Self {
        Self {
            t_s: s.t,
            tps: s.tps,
            ok: s.counts.ok,
            errors: s.counts.fail + s.counts.unknown,
            p50_ms: s.latency.p50,
            p99_ms: s.latency.p99,
            p999_ms: s.latency.p999,
            leader: None,
            event: None,
        }
    }
}

/// Writes `timeline.csv` rows to any writer.
pub struct TimelineWriter<W: Write> {
    out: W,
}

impl<W: Write> TimelineWriter<W> {
    /// Start the file with its header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        writeln!(out, "t_s,tps,ok,errors,p50_ms,p99_ms,p999_ms,leader,event")?;
        Ok(Self { out })
    }

    /// Append a row. Commas, quotes and newlines in `event` are quoted CSV-style.
    pub fn write(&mut self, row: &TimelineRow) -> std::io::Result<()> {
        let event = row.event.as_deref().unwrap_or("");
        let event = if event.contains([',', '"', '\n']) {
            format!("\"{}\"", event.replace('"', "\"\""))
        } else {
            event.to_string()
        };
        writeln!(
            self.out,
            "{:.3},{:.1},{},{},{:.3},{:.3},{:.3},{},{}",
            row.t_s,
            row.tps,
            row.ok,
            row.errors,
            row.p50_ms,
            row.p99_ms,
            row.p999_ms,
            row.leader.map(|l| l.to_string()).unwrap_or_default(),
            event
        )
    }

    /// Flush and hand back the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_header_and_rows() {
        let mut w = TimelineWriter::new(Vec::new()).unwrap();
        let mut row = TimelineRow {
            t_s: 1.0,
            tps: 99.5,
            ok: 99,
            errors: 1,
            p50_ms: 1.5,
            p99_ms: 9.25,
            p999_ms: 12.0,
            ..TimelineRow::default()
        };
        w.write(&row).unwrap();
        row.leader = Some(2);
        row.event = Some("kill node:1, \"leader\"".into());
        w.write(&row).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "t_s,tps,ok,errors,p50_ms,p99_ms,p999_ms,leader,event"
        );
        assert_eq!(lines[1], "1.000,99.5,99,1,1.500,9.250,12.000,,");
        assert_eq!(
            lines[2],
            "1.000,99.5,99,1,1.500,9.250,12.000,2,\"kill node:1, \"\"leader\"\"\""
        );
    }
}
