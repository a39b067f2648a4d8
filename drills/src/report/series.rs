//! The time series a run folder keeps as CSV: `timeline.csv` (read back here; loadgen writes
//! it) and `nodes.csv` (per node, one sample a second: state, CPU and RSS), which the poller
//! fills through [`NodeSeries`] and this module writes and reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use loadgen::output::TimelineRow;

use super::ReportError;

/// The header of `nodes.csv`.
pub const NODES_HEADER: &str = "t_s,node,state,cpu_pct,rss_bytes";

/// One node over one second, as `nodes.csv` has it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSample {
    /// The last poll of that second, seconds since the start of the run.
    pub t_s: f64,
    /// Node id.
    pub node: u64,
    /// `up`, `paused`, `killed`, `isolated` or `removed`, at that poll.
    pub state: String,
    /// Mean CPU over the polls of the second, percent of one core (none while it had no
    /// process, or on its first poll).
    pub cpu_pct: Option<f64>,
    /// Resident memory at that poll.
    pub rss_bytes: Option<u64>,
}

/// Folds the poller's 150 ms samples into one sample per node per second. The poller sees
/// every node 6–7 times a second; a second's mean CPU keeps what a plot can show without
/// keeping every poll.
#[derive(Debug, Default)]
pub struct NodeSeries {
    done: Vec<NodeSample>,
    /// Per node: the second being filled, its last sample, and the CPU sum and count.
    open: BTreeMap<u64, (i64, NodeSample, f64, u32)>,
}

impl NodeSeries {
    /// Notes one poll of one node.
    pub fn observe(
        &mut self,
        t_s: f64,
        node: u64,
        state: &str,
        cpu_pct: Option<f64>,
        rss: Option<u64>,
    ) {
        let second = t_s.floor() as i64;
        if let Some(open) = self.open.get(&node)
            && open.0 != second
        {
            let closed = self.open.remove(&node).expect("present");
            self.done.push(close(closed));
        }
        let e = self.open.entry(node).or_insert_with(|| {
            (
                second,
                NodeSample {
                    t_s,
                    node,
                    state: state.into(),
                    cpu_pct: None,
                    rss_bytes: None,
                },
                0.0,
                0,
            )
        });
        e.1.t_s = t_s;
        e.1.state = state.into();
        if rss.is_some() {
            e.1.rss_bytes = rss;
        }
        if let Some(c) = cpu_pct {
            e.2 += c;
            e.3 += 1;
        }
    }

    /// Every sample so far, the seconds still open included, in time order.
    pub fn samples(&self) -> Vec<NodeSample> {
        let mut all = self.done.clone();
        all.extend(self.open.values().cloned().map(close));
        all.sort_by(|a, b| a.t_s.total_cmp(&b.t_s).then(a.node.cmp(&b.node)));
        all
    }
}

fn close((_, mut s, sum, n): (i64, NodeSample, f64, u32)) -> NodeSample {
    s.cpu_pct = (n > 0).then(|| sum / f64::from(n));
    s
}

/// `nodes.csv`.
pub fn nodes_csv(samples: &[NodeSample]) -> String {
    let mut o = format!("{NODES_HEADER}\n");
    for s in samples {
        let _ = writeln!(
            o,
            "{:.3},{},{},{},{}",
            s.t_s,
            s.node,
            s.state,
            s.cpu_pct.map(|c| format!("{c:.1}")).unwrap_or_default(),
            s.rss_bytes.map(|r| r.to_string()).unwrap_or_default()
        );
    }
    o
}

/// Reads `nodes.csv` text; `file` names it in errors.
pub fn parse_nodes(text: &str, file: &str) -> Result<Vec<NodeSample>, ReportError> {
    parse_rows(text, NODES_HEADER, file, |line, bad| {
        let f: Vec<&str> = line.split(',').collect();
        let [t, node, state, cpu, rss] = f.as_slice() else {
            return Err(bad("expected 5 fields"));
        };
        Ok(NodeSample {
            t_s: t.parse().map_err(|_| bad("bad t_s"))?,
            node: node.parse().map_err(|_| bad("bad node"))?,
            state: state.to_string(),
            cpu_pct: opt(cpu).map_err(|_| bad("bad cpu_pct"))?,
            rss_bytes: opt(rss).map_err(|_| bad("bad rss_bytes"))?,
        })
    })
}

/// The header of `timeline.csv` (loadgen's `TimelineWriter` writes it).
const TIMELINE_HEADER: &str = "t_s,tps,ok,errors,p50_ms,p99_ms,p999_ms,leader,event";

/// Reads `timeline.csv` text; `file` names it in errors.
pub fn parse_timeline(text: &str, file: &str) -> Result<Vec<TimelineRow>, ReportError> {
    parse_rows(text, TIMELINE_HEADER, file, |line, bad| {
        // Only the last field (event) may be quoted, so the first eight split plainly.
        let mut f = line.splitn(9, ',');
        let mut next = |name: &str| f.next().ok_or_else(|| bad(&format!("no {name}")));
        let (t, tps, ok, errors) = (next("t_s")?, next("tps")?, next("ok")?, next("errors")?);
        let (p50, p99, p999) = (next("p50_ms")?, next("p99_ms")?, next("p999_ms")?);
        let (leader, event) = (next("leader")?, next("event")?);
        let num = |v: &str, name: &str| v.parse::<f64>().map_err(|_| bad(&format!("bad {name}")));
        let int = |v: &str, name: &str| v.parse::<u64>().map_err(|_| bad(&format!("bad {name}")));
        Ok(TimelineRow {
            t_s: num(t, "t_s")?,
            tps: num(tps, "tps")?,
            ok: int(ok, "ok")?,
            errors: int(errors, "errors")?,
            p50_ms: num(p50, "p50_ms")?,
            p99_ms: num(p99, "p99_ms")?,
            p999_ms: num(p999, "p999_ms")?,
            leader: opt(leader).map_err(|_| bad("bad leader"))?,
            event: unquote(event),
        })
    })
}

/// The data lines of a CSV `text` under its `header`, each made a row by `row`, which is
/// handed the line and a maker of errors that name the file, the line and what is wrong.
fn parse_rows<T>(
    text: &str,
    header: &str,
    file: &str,
    row: impl Fn(&str, &dyn Fn(&str) -> ReportError) -> Result<T, ReportError>,
) -> Result<Vec<T>, ReportError> {
    let mut lines = text.lines().enumerate();
    expect_header(lines.next().map(|(_, l)| l), header, file)?;
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let bad = |what: &str| ReportError::Parse {
                file: format!("{file}:{}", n + 1),
                message: format!("{what} in {line:?}"),
            };
            row(line, &bad)
        })
        .collect()
}

fn expect_header(line: Option<&str>, header: &str, file: &str) -> Result<(), ReportError> {
    if line.map(str::trim) == Some(header) {
        return Ok(());
    }
    Err(ReportError::Parse {
        file: format!("{file}:1"),
        message: format!("expected the header {header:?}"),
    })
}

fn opt<T: std::str::FromStr>(v: &str) -> Result<Option<T>, T::Err> {
    if v.is_empty() {
        Ok(None)
    } else {
        v.parse().map(Some)
    }
}

/// The event field: empty is none; a quoted field has its doubled quotes undone.
fn unquote(v: &str) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => Some(inner.replace("\"\"", "\"")),
        None => Some(v.to_string()),
    }
}

/// A leader change in the timeline: when, and the new leader (`None`: no leader).
pub fn leader_changes(rows: &[TimelineRow]) -> Vec<(f64, Option<u64>)> {
    let mut out = Vec::new();
    for r in rows {
        for e in r.event.iter().flat_map(|e| e.split("; ")) {
            if e == "no leader" {
                out.push((r.t_s, None));
            } else if let Some(id) = e.strip_prefix("leader ").and_then(|l| l.parse().ok()) {
                out.push((r.t_s, Some(id)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen::output::TimelineWriter;

    #[test]
    fn timeline_rows_survive_the_writer_and_the_reader() {
        let rows = vec![
            TimelineRow {
                t_s: 1.0,
                tps: 99.5,
                ok: 99,
                errors: 1,
                p50_ms: 1.5,
                p99_ms: 9.25,
                p999_ms: 12.0,
                leader: Some(2),
                event: Some("kill leader [2]; no leader; leader 3".into()),
            },
            TimelineRow {
                t_s: 2.0,
                event: Some("a, \"quoted\" event".into()),
                ..TimelineRow::default()
            },
        ];
        let mut w = TimelineWriter::new(Vec::new()).unwrap();
        for r in &rows {
            w.write(r).unwrap();
        }
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(parse_timeline(&text, "timeline.csv").unwrap(), rows);
        assert_eq!(
            leader_changes(&rows),
            vec![(1.0, None), (1.0, Some(3))],
            "the fault is no leader change"
        );
        let err = parse_timeline("t_s,tps\n1,2\n", "x.csv").unwrap_err();
        assert!(err.to_string().contains("x.csv:1"), "{err}");
    }

    #[test]
    fn node_series_keeps_one_sample_per_node_per_second() {
        let mut s = NodeSeries::default();
        // Node 1 polled three times in second 0 and once in second 1; node 2 dies in second 1.
        s.observe(0.15, 1, "up", None, Some(100));
        s.observe(0.30, 1, "up", Some(10.0), Some(110));
        s.observe(0.45, 1, "up", Some(30.0), Some(120));
        s.observe(0.15, 2, "up", Some(50.0), Some(200));
        s.observe(1.05, 1, "up", Some(5.0), Some(130));
        s.observe(1.05, 2, "killed", None, None);
        let samples = s.samples();
        assert_eq!(samples.len(), 4);
        let first = samples.iter().find(|s| s.node == 1).unwrap();
        assert_eq!(first.t_s, 0.45, "the time of the second's last poll");
        assert_eq!(
            first.cpu_pct,
            Some(20.0),
            "the mean of the second's CPU samples"
        );
        assert_eq!(first.rss_bytes, Some(120), "the last RSS");
        let dead = samples.iter().find(|s| s.state == "killed").unwrap();
        assert_eq!((dead.cpu_pct, dead.rss_bytes), (None, None));
        let text = nodes_csv(&samples);
        assert_eq!(parse_nodes(&text, "nodes.csv").unwrap(), samples);
        assert!(parse_nodes("t_s,node\n", "n.csv").is_err());
    }
}
