//! The load's part of `summary.json`, and the k6-like final text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::LoadReport;
use crate::metrics::LatencySummary;
use crate::thresholds::ThresholdResult;

/// `totals` of summary.json.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Totals {
    /// Operations completed.
    pub ops: u64,
    /// Operations ok.
    pub ok: u64,
    /// Operations failed or unknown.
    pub errors: u64,
    /// Operations per second over the judged window.
    pub tps: f64,
    /// The judged window, seconds: the planned duration less warmup.
    pub window_s: f64,
    /// Wall time from the start of the clock to the last completion, seconds (it includes the
    /// drain of the last operations after the planned end).
    pub elapsed_s: f64,
}

/// Latency percentiles in ms, as summary.json has them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl From<LatencySummary> for LatencyMs {
    fn from(s: LatencySummary) -> Self {
        Self {
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
            p999: s.p999,
            max: s.max,
        }
    }
}

/// The load's fields of summary.json: `totals`, `latency_ms` (overall, and per operation under
/// `per_op`) and `thresholds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSummary {
    /// Counts.
    pub totals: Totals,
    /// Latency overall, with a `per_op` map.
    pub latency_ms: LatencyBlock,
    /// Evaluated thresholds.
    pub thresholds: Vec<ThresholdResult>,
}

/// `latency_ms` of summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencyBlock {
    /// Every operation.
    #[serde(flatten)]
    pub overall: LatencyMs,
    /// Per operation kind (`read`, `update`, `insert`, `rmw`).
    pub per_op: BTreeMap<String, LatencyMs>,
}

impl LoadSummary {
    /// Build from a report and the thresholds evaluated over the whole run.
    pub fn new(report: &LoadReport, thresholds: Vec<ThresholdResult>) -> Self {
        let c = report.counts();
        Self {
            totals: Totals {
                ops: c.ops,
                ok: c.ok,
                errors: c.fail + c.unknown,
                tps: report.tps(),
                window_s: report.window().as_secs_f64(),
                elapsed_s: report.elapsed.as_secs_f64(),
            },
            latency_ms: LatencyBlock {
                overall: report.latency().into(),
                per_op: report
                    .per_kind()
                    .into_iter()
                    .map(|(k, s)| (k.as_str().to_string(), s.into()))
                    .collect(),
            },
            thresholds,
        }
    }
}

fn fmt_level(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

/// A k6-like final summary: counts, latency per operation and the threshold table with
/// ✓ ⚠ ✗ marks.
pub fn text_summary(report: &LoadReport, thresholds: &[ThresholdResult]) -> String {
    let c = report.counts();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  ops..........: {} over a {:.1}s window ({:.1}/s); {:.1}s wall time",
        c.ops,
        report.window().as_secs_f64(),
        report.tps(),
        report.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  outcomes.....: ok={} fail={} unknown={} late={} dropped={}",
        c.ok, c.fail, c.unknown, c.late, report.dropped
    );
    let e = c.errors;
    let _ = writeln!(
        out,
        "  errors.......: timeout={} connect={} reset={} no_leader={} 5xx={} 4xx={}",
        e.timeout, e.connect, e.reset, e.no_leader, e.http_5xx, e.http_4xx
    );
    let mut line = |name: &str, s: LatencySummary| {
        let _ = writeln!(
            out,
            "  {:.<13}: p50={:.2}ms p90={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms",
            format!("{name}"),
            s.p50,
            s.p90,
            s.p99,
            s.p999,
            s.max
        );
    };
    line("latency", report.latency());
    line("service", report.service());
    for (k, s) in report.per_kind() {
        line(k.as_str(), s);
    }
    if !thresholds.is_empty() {
        let _ = writeln!(
            out,
            "\n  {:<2} {:<13} {:>10} {:>10} {:>10}",
            "", "threshold", "warn", "break", "observed"
        );
        for t in thresholds {
            let _ = writeln!(
                out,
                "  {:<2} {:<13} {:>10} {:>10} {:>10}",
                t.status.mark(),
                t.metric.as_str(),
                fmt_level(t.warn),
                fmt_level(t.brk),
                fmt_level(t.observed)
            );
        }
    }
    out
}
