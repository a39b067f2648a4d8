//! Two-level thresholds (warn and break) and their evaluation.
//!
//! The table deserializes from the `[thresholds]` of a scenario file:
//!
//! ```toml
//! p99 = { warn = "800ms", break = "1500ms" }
//! success_rate = { warn = "99.5%", break = "95%" }
//! node_cpu = { warn = "75%", break = "90%" }
//! ```
//!
//! # Boundaries
//!
//! A warn level is strict and a break level inclusive, as in the seed's table. For metrics
//! where higher is worse (latencies, `error_rate`, `node_cpu`): warn when observed > warn,
//! break when observed ≥ break. For metrics where lower is worse (`success_rate`, `tps`, a
//! minimum): warn when observed < warn, break when observed ≤ break. So with the defaults a p99
//! of exactly 800 ms is ok, 800.001 ms warns and exactly 1500 ms breaks; a success rate of
//! exactly 99.5 % is ok and exactly 95 % breaks.
//!
//! Latencies take a duration (`"800ms"`, `"1.5s"`) or a number of milliseconds; rates and CPU
//! take a percentage (`"99.5%"`) or a number of percent; `tps` takes a number.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{parse_duration, parse_percent};

/// A metric a threshold can watch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median latency, ms.
    P50,
    /// 90th percentile latency, ms.
    P90,
    /// 99th percentile latency, ms.
    P99,
    /// 99.9th percentile latency, ms.
    P999,
    /// Largest latency, ms.
    Max,
    /// Percent of operations ok.
    SuccessRate,
    /// Percent of operations failed or unknown.
    ErrorRate,
    /// Operations per second (a minimum).
    Tps,
    /// CPU of the busiest node, percent (observed by the caller).
    NodeCpu,
}

impl Metric {
    const ALL: [Metric; 9] = [
        Metric::P50,
        Metric::P90,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::SuccessRate,
        Metric::ErrorRate,
        Metric::Tps,
        Metric::NodeCpu,
    ];

    /// The name in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Max => "max",
            Metric::SuccessRate => "success_rate",
            Metric::ErrorRate => "error_rate",
            Metric::Tps => "tps",
            Metric::NodeCpu => "node_cpu",
        }
    }

    /// Whether a lower value is worse.
    pub fn lower_is_worse(self) -> bool {
        matches!(self, Metric::SuccessRate | Metric::Tps)
    }

    fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max
        )
    }

    fn is_percent(self) -> bool {
        matches!(
            self,
            Metric::SuccessRate | Metric::ErrorRate | Metric::NodeCpu
        )
    }
}

/// The two levels of one threshold (either may be absent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    /// Warn level, in the metric's unit (ms, percent or ops/s).
    pub warn: Option<f64>,
    /// Break level.
    #[serde(rename = "break")]
    pub brk: Option<f64>,
}

/// Status of a threshold.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing was observed (the load ran against nodes raftdrill cannot sample, say), so the
    /// threshold was not checked: shown as such, never as passed. Ranked lowest, so it never
    /// makes a verdict worse and never hides a breach.
    Unchecked,
    /// Within budget.
    Ok,
    /// Past the warn level.
    Warn,
    /// At or past the break level.
    Break,
}

impl Status {
    /// k6's marks: ✓ ⚠ ✗.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Unchecked => "?",
            Status::Ok => "✓",
            Status::Warn => "⚠",
            Status::Break => "✗",
        }
    }
}

/// A threshold table that cannot be read; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// An unknown metric name.
    #[error(
        "thresholds.{0}: unknown metric (expected p50, p90, p99, p999, max, success_rate, error_rate, tps or node_cpu)"
    )]
    UnknownMetric(String),
    /// A value in the wrong unit or form.
    #[error("thresholds.{field}: bad value {value}: {expected}")]
    BadValue {
        /// `metric.level`.
        field: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// TOML that is not a table of `{ warn, break }`.
    #[error("thresholds: {0}")]
    Toml(String),
}

/// The threshold table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, RawLevels>",
    into = "BTreeMap<Metric, Levels>"
)]
pub struct Thresholds(pub BTreeMap<Metric, Levels>);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevels {
    warn: Option<toml::Value>,
    #[serde(rename = "break")]
    brk: Option<toml::Value>,
}

impl From<Thresholds> for BTreeMap<Metric, Levels> {
    fn from(t: Thresholds) -> Self {
        t.0
    }
}

fn level(
    metric: Metric,
    which: &str,
    raw: Option<toml::Value>,
) -> Result<Option<f64>, ThresholdError> {
    let Some(raw) = raw else { return Ok(None) };
    let (expected, parsed) = match (&raw, metric) {
        (toml::Value::Integer(i), _) => ("a number", Some(*i as f64)),
        (toml::Value::Float(f), _) => ("a number", Some(*f)),
        (toml::Value::String(s), m) if m.is_latency() => (
            "a duration such as \"800ms\"",
            parse_duration(s).ok().map(|d| d.as_secs_f64() * 1000.0),
        ),
        (toml::Value::String(s), m) if m.is_percent() => {
            ("a percentage such as \"99.5%\"", parse_percent(s).ok())
        }
        (toml::Value::String(s), _) => ("a number", s.trim().parse().ok()),
        _ => ("a number or a string", None),
    };
    match parsed {
        Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(ThresholdError::BadValue {
            field: format!("{}.{which}", metric.as_str()),
            value: match &raw {
                toml::Value::String(s) => format!("{s:?}"),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => other.type_str().to_string(),
            },
            expected,
        }),
    }
}

impl TryFrom<BTreeMap<String, RawLevels>> for Thresholds {
    type Error = ThresholdError;

    fn try_from(raw: BTreeMap<String, RawLevels>) -> Result<Self, Self::Error> {
        let mut table = BTreeMap::new();
        for (name, levels) in raw {
            let metric = Metric::ALL
                .into_iter()
                .find(|m| m.as_str() == name)
                .ok_or_else(|| ThresholdError::UnknownMetric(name.clone()))?;
            let warn = level(metric, "warn", levels.warn)?;
            let brk = level(metric, "break", levels.brk)?;
            table.insert(metric, Levels { warn, brk });
        }
        Ok(Thresholds(table))
    }
}

impl Default for Thresholds {
    /// The seed's table: p99 warn > 800 ms, break ≥ 1500 ms; success rate warn < 99.5 %,
    /// break ≤ 95 %; busiest node CPU warn > 75 %, break ≥ 90 %.
    fn default() -> Self {
        let mut t = BTreeMap::new();
        t.insert(
            Metric::P99,
            Levels {
                warn: Some(800.0),
                brk: Some(1500.0),
            },
        );
        t.insert(
            Metric::SuccessRate,
            Levels {
                warn: Some(99.5),
                brk: Some(95.0),
            },
        );
        t.insert(
            Metric::NodeCpu,
            Levels {
                warn: Some(75.0),
                brk: Some(90.0),
            },
        );
        Thresholds(t)
    }
}

/// The observed values to judge; `None` where nothing was observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Latency percentiles, ms.
    pub p50: Option<f64>,
    /// 90th percentile, ms.
    pub p90: Option<f64>,
    /// 99th percentile, ms.
    pub p99: Option<f64>,
    /// 99.9th percentile, ms.
    pub p999: Option<f64>,
    /// Largest, ms.
    pub max: Option<f64>,
    /// Percent ok.
    pub success_rate: Option<f64>,
    /// Percent failed or unknown.
    pub error_rate: Option<f64>,
    /// Operations per second.
    pub tps: Option<f64>,
    /// CPU of the busiest node, percent.
    pub node_cpu: Option<f64>,
}

impl Observed {
    /// Observed values from counts, a latency summary and a rate (node CPU left to the caller).
    pub fn from_load(
        counts: &crate::metrics::Counts,
        latency: &crate::metrics::LatencySummary,
        tps: f64,
    ) -> Self {
        let lat = |v: f64| (latency.count > 0).then_some(v);
        Self {
            p50: lat(latency.p50),
            p90: lat(latency.p90),
            p99: lat(latency.p99),
            p999: lat(latency.p999),
            max: lat(latency.max),
            success_rate: counts.success_rate(),
            error_rate: counts.error_rate(),
            tps: Some(tps),
            node_cpu: None,
        }
    }

    fn get(&self, m: Metric) -> Option<f64> {
        match m {
            Metric::P50 => self.p50,
            Metric::P90 => self.p90,
            Metric::P99 => self.p99,
            Metric::P999 => self.p999,
            Metric::Max => self.max,
            Metric::SuccessRate => self.success_rate,
            Metric::ErrorRate => self.error_rate,
            Metric::Tps => self.tps,
            Metric::NodeCpu => self.node_cpu,
        }
    }
}

/// One evaluated threshold, as it goes into summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdResult {
    /// The metric.
    pub metric: Metric,
    /// Warn level.
    pub warn: Option<f64>,
    /// Break level.
    #[serde(rename = "break")]
    pub brk: Option<f64>,
    /// What was observed.
    pub observed: Option<f64>,
    /// The verdict; unchecked when nothing was observed.
    pub status: Status,
}

/// Judge one value against its levels (see the module docs for the boundaries).
pub fn judge(metric: Metric, levels: &Levels, observed: f64) -> Status {
    let (past_break, past_warn) = if metric.lower_is_worse() {
        (
            levels.brk.is_some_and(|b| observed <= b),
            levels.warn.is_some_and(|w| observed < w),
        )
    } else {
        (
            levels.brk.is_some_and(|b| observed >= b),
            levels.warn.is_some_and(|w| observed > w),
        )
    };
    if past_break {
        Status::Break
    } else if past_warn {
        Status::Warn
    } else {
        Status::Ok
    }
}

impl Thresholds {
    /// Parse a TOML table such as a scenario's `[thresholds]`.
    pub fn from_toml(table: toml::Table) -> Result<Self, ThresholdError> {
        let raw: BTreeMap<String, RawLevels> = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ThresholdError::Toml(e.message().to_string()))?;
        Thresholds::try_from(raw)
    }

    /// The seed's table with `own`'s metrics put over it, one by one (a scenario or a
    /// thresholds file lists only what it changes).
    pub fn over_defaults(own: Thresholds) -> Self {
        let mut merged = Thresholds::default();
        merged.0.extend(own.0);
        merged
    }

    /// Evaluate every threshold against `observed`.
    pub fn evaluate(&self, observed: &Observed) -> Vec<ThresholdResult> {
        self.0
            .iter()
            .map(|(metric, levels)| {
                let value = observed.get(*metric);
                ThresholdResult {
                    metric: *metric,
                    warn: levels.warn,
                    brk: levels.brk,
                    observed: value,
                    status: value.map_or(Status::Unchecked, |v| judge(*metric, levels, v)),
                }
            })
            .collect()
    }
}

/// The worst status among `results` (ok when empty).
pub fn worst(results: &[ThresholdResult]) -> Status {
    results.iter().map(|r| r.status).max().unwrap_or(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Thresholds, ThresholdError> {
        Thresholds::from_toml(text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn parses_the_seed_table() {
        let t = parse(
            r#"
            p99 = { warn = "800ms", break = "1.5s" }
            success_rate = { warn = "99.5%", break = "95%" }
            node_cpu = { warn = "75%", break = 90 }
            tps = { break = 100 }
            "#,
        )
        .unwrap();
        assert_eq!(t, {
            let mut d = Thresholds::default();
            d.0.insert(
                Metric::Tps,
                Levels {
                    warn: None,
                    brk: Some(100.0),
                },
            );
            d
        });
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"p99 = { warn = "800 parsecs" }"#).unwrap_err();
        assert!(e.to_string().contains("thresholds.p99.warn"), "{e}");
        let e = parse(r#"success_rate = { break = "95 parsecs" }"#).unwrap_err();
        assert!(e.to_string().contains("success_rate.break"), "{e}");
        let e = parse(r#"p42 = { warn = "1ms" }"#).unwrap_err();
        assert!(e.to_string().contains("p42"), "{e}");
        assert!(parse(r#"p99 = { warm = "1ms" }"#).is_err());
    }

    #[test]
    fn deserializes_inside_a_scenario_struct() {
        #[derive(Deserialize)]
        struct Scenario {
            thresholds: Thresholds,
        }
        let s: Scenario = toml::from_str("[thresholds]\np99 = { warn = \"1s\" }\n").unwrap();
        assert_eq!(s.thresholds.0[&Metric::P99].warn, Some(1000.0));
        let e = toml::from_str::<Scenario>("[thresholds]\np99 = { warn = \"1q\" }\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("thresholds.p99.warn"), "{e}");
    }

    #[test]
    fn boundaries_are_exact() {
        let t = Thresholds::default();
        let lv = t.0[&Metric::P99];
        assert_eq!(judge(Metric::P99, &lv, 800.0), Status::Ok);
        assert_eq!(judge(Metric::P99, &lv, 800.001), Status::Warn);
        assert_eq!(judge(Metric::P99, &lv, 1499.999), Status::Warn);
        assert_eq!(judge(Metric::P99, &lv, 1500.0), Status::Break);
        let sr = t.0[&Metric::SuccessRate];
        assert_eq!(judge(Metric::SuccessRate, &sr, 99.5), Status::Ok);
        assert_eq!(judge(Metric::SuccessRate, &sr, 99.49), Status::Warn);
        assert_eq!(judge(Metric::SuccessRate, &sr, 95.01), Status::Warn);
        assert_eq!(judge(Metric::SuccessRate, &sr, 95.0), Status::Break);
        let cpu = t.0[&Metric::NodeCpu];
        assert_eq!(judge(Metric::NodeCpu, &cpu, 75.0), Status::Ok);
        assert_eq!(judge(Metric::NodeCpu, &cpu, 90.0), Status::Break);
    }

    #[test]
    fn evaluates_all_three_statuses() {
        let t = Thresholds::default();
        let observed = Observed {
            p99: Some(900.0),
            success_rate: Some(94.0),
            node_cpu: Some(10.0),
            ..Observed::default()
        };
        let r = t.evaluate(&observed);
        let status = |m| r.iter().find(|x| x.metric == m).unwrap().status;
        assert_eq!(status(Metric::P99), Status::Warn);
        assert_eq!(status(Metric::SuccessRate), Status::Break);
        assert_eq!(status(Metric::NodeCpu), Status::Ok);
        assert_eq!(worst(&r), Status::Break);
        // Nothing observed is not a pass: every row says it was not checked.
        let none = t.evaluate(&Observed::default());
        assert_eq!(worst(&none), Status::Unchecked);
        assert!(
            none.iter()
                .all(|x| x.observed.is_none() && x.status == Status::Unchecked)
        );
        assert_eq!(Status::Unchecked.mark(), "?");
        // An unchecked row never hides a breach, nor makes a pass worse.
        let partial = t.evaluate(&Observed {
            p99: Some(1.0),
            ..Observed::default()
        });
        assert_eq!(worst(&partial), Status::Ok);
    }
}
