//! The service-level objective a capacity step must meet: `p99<800ms,success>=99.5%`.

use std::fmt;

use loadgen::thresholds::{Metric, Thresholds};
use loadgen::units::{parse_duration, parse_percent};

/// One term of an SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// The metric.
    pub metric: Metric,
    /// `<`, `<=`, `>`, `>=`.
    pub op: &'static str,
    /// The bound, in ms for latencies and percent for rates.
    pub value: f64,
}

/// A conjunction of terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo(pub Vec<Term>);

impl Slo {
    /// Parses `p99<800ms,success>=99.5%` (metrics: p50 p90 p99 p999 max, success, errors, tps;
    /// latencies take a duration or a number of ms, rates a percentage, tps a number).
    pub fn parse(text: &str) -> Result<Slo, String> {
        let mut terms = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let at = raw
                .find(['<', '>'])
                .ok_or_else(|| format!("bad SLO term {raw:?}: expected METRIC<VALUE"))?;
            let (name, rest) = raw.split_at(at);
            let (op, value) = match rest
                .strip_prefix("<=")
                .map(|v| ("<=", v))
                .or_else(|| rest.strip_prefix(">=").map(|v| (">=", v)))
            {
                Some(x) => x,
                None => (if rest.starts_with('<') { "<" } else { ">" }, &rest[1..]),
            };
            let metric = match name.trim() {
                "p50" => Metric::P50,
                "p90" => Metric::P90,
                "p99" => Metric::P99,
                "p999" => Metric::P999,
                "max" => Metric::Max,
                "success" | "success_rate" => Metric::SuccessRate,
                "errors" | "error_rate" => Metric::ErrorRate,
                "tps" => Metric::Tps,
                other => {
                    return Err(format!(
                        "unknown SLO metric {other:?}; use p50, p90, p99, p999, max, success, errors or tps"
                    ));
                }
            };
            let value = parse_value(metric, value.trim())
                .ok_or_else(|| format!("bad SLO value in {raw:?}"))?;
            terms.push(Term { metric, op, value });
        }
        if terms.is_empty() {
            return Err("empty SLO".into());
        }
        Ok(Slo(terms))
    }

    /// The warn levels of a threshold table as an SLO (node CPU and TPS left out); an error
    /// when that leaves no term, since an empty SLO would pass every step.
    pub fn from_warn_levels(t: &Thresholds) -> Result<Slo, String> {
        let terms =
            t.0.iter()
                .filter_map(|(m, l)| {
                    let warn = l.warn?;
                    match m {
                        Metric::SuccessRate => Some(Term {
                            metric: *m,
                            op: ">=",
                            value: warn,
                        }),
                        Metric::NodeCpu | Metric::Tps => None,
                        _ => Some(Term {
                            metric: *m,
                            op: "<=",
                            value: warn,
                        }),
                    }
                })
                .collect::<Vec<_>>();
        if terms.is_empty() {
            return Err(
                "the scenario's thresholds set no warn level on latency or success to use as the SLO; give --slo".into(),
            );
        }
        Ok(Slo(terms))
    }

    /// Whether observed values meet every term; a metric without an observation fails.
    pub fn met(&self, observed: impl Fn(Metric) -> Option<f64>) -> bool {
        self.missed(observed).is_empty()
    }

    /// The terms the observed values do not meet, each with its observation (`None`: the
    /// metric was not observed, which fails the term).
    pub fn missed(&self, observed: impl Fn(Metric) -> Option<f64>) -> Vec<(&Term, Option<f64>)> {
        self.0
            .iter()
            .map(|t| (t, observed(t.metric)))
            .filter(|(t, v)| !v.is_some_and(|v| t.holds(v)))
            .collect()
    }

    /// The largest latency bound of the SLO (p50 to max), in ms: no operation slower than
    /// this can count towards a passing step's p99.
    pub fn latency_budget_ms(&self) -> Option<f64> {
        self.0
            .iter()
            .filter(|t| {
                matches!(
                    t.metric,
                    Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max
                )
            })
            .map(|t| t.value)
            .reduce(f64::max)
    }

    /// The p99 bound, in ms, when the SLO has one.
    pub fn p99_bound_ms(&self) -> Option<f64> {
        self.0
            .iter()
            .find(|t| t.metric == Metric::P99)
            .map(|t| t.value)
    }
}

impl Term {
    /// Whether `v` meets this term.
    pub fn holds(&self, v: f64) -> bool {
        match self.op {
            "<" => v < self.value,
            "<=" => v <= self.value,
            ">" => v > self.value,
            _ => v >= self.value,
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.metric {
            Metric::SuccessRate | Metric::ErrorRate => "%",
            Metric::Tps => "",
            _ => "ms",
        };
        write!(f, "{}{}{}{unit}", self.metric.as_str(), self.op, self.value)
    }
}

fn parse_value(metric: Metric, v: &str) -> Option<f64> {
    match metric {
        Metric::SuccessRate | Metric::ErrorRate => parse_percent(v).ok(),
        Metric::Tps => v.parse::<f64>().ok().filter(|r| r.is_finite() && *r >= 0.0),
        _ => match v.parse::<f64>() {
            Ok(ms) => Some(ms),
            Err(_) => parse_duration(v).ok().map(|d| d.as_secs_f64() * 1000.0),
        },
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Term::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_form() {
        let s = Slo::parse("p99<800ms,success>=99.5%").unwrap();
        assert_eq!(
            s.0[0],
            Term {
                metric: Metric::P99,
                op: "<",
                value: 800.0
            }
        );
        assert_eq!(
            s.0[1],
            Term {
                metric: Metric::SuccessRate,
                op: ">=",
                value: 99.5
            }
        );
        assert!(s.met(|m| Some(if m == Metric::P99 { 799.0 } else { 99.5 })));
        assert!(
            !s.met(|m| Some(if m == Metric::P99 { 800.0 } else { 99.9 })),
            "strict <"
        );
        assert!(!s.met(|m| Some(if m == Metric::P99 { 10.0 } else { 99.4 })));
        assert!(!s.met(|_| None), "no observation, no pass");
        assert_eq!(Slo::parse("p99<1s").unwrap().0[0].value, 1000.0);
        assert!(Slo::parse("p42<1ms").is_err());
        assert!(Slo::parse("p99 800ms").is_err());
    }

    #[test]
    fn the_missed_terms_are_named_with_what_was_observed() {
        let s = Slo::parse("p50<10ms,p99<800ms,success>=99.5%").unwrap();
        let missed = s.missed(|m| match m {
            Metric::P50 => Some(4.0),
            Metric::P99 => Some(912.0),
            _ => None,
        });
        let named: Vec<(String, Option<f64>)> =
            missed.iter().map(|(t, v)| (t.to_string(), *v)).collect();
        assert_eq!(
            named,
            [
                ("p99<800ms".to_string(), Some(912.0)),
                ("success_rate>=99.5%".to_string(), None)
            ]
        );
        assert_eq!(
            s.latency_budget_ms(),
            Some(800.0),
            "the largest latency bound"
        );
        assert_eq!(s.p99_bound_ms(), Some(800.0));
        let rates_only = Slo::parse("success>=99%,tps>=10").unwrap();
        assert_eq!(rates_only.latency_budget_ms(), None);
        assert_eq!(rates_only.p99_bound_ms(), None);
    }

    #[test]
    fn defaults_come_from_the_warn_levels() {
        let s = Slo::from_warn_levels(&Thresholds::default()).unwrap();
        assert_eq!(s.to_string(), "p99<=800ms,success_rate>=99.5%");
        let only_cpu = Thresholds(
            [(
                Metric::NodeCpu,
                loadgen::thresholds::Levels {
                    warn: Some(75.0),
                    brk: None,
                },
            )]
            .into(),
        );
        assert!(
            Slo::from_warn_levels(&only_cpu).is_err(),
            "an empty SLO is refused"
        );
        assert!(Slo::parse(" , ").is_err());
    }
}
