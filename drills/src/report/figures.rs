//! The figures of a run, named once: what a repeat aggregates and what `compare` sets side by
//! side. Each carries which way is better and which `compare` limit, if any, watches it.

use serde::{Deserialize, Serialize};

use super::doc::RunDoc;

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// More is better (throughput, success rate).
    Higher,
    /// Less is better (latency, recovery, errors).
    Lower,
}

/// The `compare` limit that watches a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitKind {
    /// `--max-p99-increase`.
    P99,
    /// `--max-tps-drop`.
    Tps,
    /// `--max-recovery-increase`.
    Recovery,
}

/// What is known of a figure: one run, or several.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Spread {
    /// The median (the value itself, for one run).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// How many runs measured it.
    pub n: usize,
}

impl Spread {
    /// One measurement.
    pub fn one(v: f64) -> Spread {
        Spread {
            median: v,
            min: v,
            max: v,
            n: 1,
        }
    }

    /// Median, min and max of `values` (none for no values; NaNs are left out).
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// One named figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Figure {
    /// `tps`, `p99_ms`, `recovery.0.kill.first_success_after_s`, ...
    pub name: String,
    /// `ops/s`, `ms`, `s`, `%` or empty for counts.
    #[schemars(extend("enum" = ["ops/s", "ms", "s", "%", ""]))]
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// The limit that watches it.
    pub limit: Option<LimitKind>,
    /// The value; none when it should have been measured and was not (a recovery that never
    /// came).
    pub value: Option<Spread>,
    /// How many runs should have measured it but did not.
    #[serde(default)]
    pub missing: usize,
}

impl Figure {
    /// A figure of one run (`v`: its value, or none when it was not measured).
    pub fn new(
        name: impl Into<String>,
        unit: &str,
        better: Better,
        limit: Option<LimitKind>,
        v: Option<f64>,
    ) -> Figure {
        Figure {
            name: name.into(),
            unit: unit.into(),
            better,
            limit,
            value: v.map(Spread::one),
            missing: usize::from(v.is_none()),
        }
    }
}

/// Every figure of one run, in a fixed order.
pub fn of_run(s: &RunDoc) -> Vec<Figure> {
    use Better::{Higher, Lower};
    let l = &s.latency_ms.overall;
    let mut f = vec![
        Figure::new(
            "tps",
            "ops/s",
            Higher,
            Some(LimitKind::Tps),
            Some(s.totals.tps),
        ),
        Figure::new("success_rate", "%", Higher, None, s.success_rate()),
        Figure::new("errors", "", Lower, None, Some(s.totals.errors as f64)),
        Figure::new("p50_ms", "ms", Lower, None, Some(l.p50)),
        Figure::new("p90_ms", "ms", Lower, None, Some(l.p90)),
        Figure::new("p99_ms", "ms", Lower, Some(LimitKind::P99), Some(l.p99)),
        Figure::new("p999_ms", "ms", Lower, None, Some(l.p999)),
        Figure::new("max_ms", "ms", Lower, None, Some(l.max)),
    ];
    for (op, l) in &s.latency_ms.per_op {
        f.push(Figure::new(
            format!("p99_ms.{op}"),
            "ms",
            Lower,
            None,
            Some(l.p99),
        ));
    }
    if let Some(c) = s.busiest_node_cpu_pct {
        f.push(Figure::new(
            "busiest_node_cpu_pct",
            "%",
            Lower,
            None,
            Some(c),
        ));
    }
    if let Some(e) = s.elections {
        f.push(Figure::new("elections", "", Lower, None, Some(e as f64)));
    }
    if let Some(lw) = &s.checks.lost_writes {
        f.push(Figure::new(
            "lost_writes",
            "",
            Lower,
            None,
            Some(lw.lost as f64),
        ));
    }
    for r in &s.recovery {
        let Some(fault) = s.faults.get(r.fault) else {
            continue;
        };
        for (name, v) in r.figures() {
            // A new leader is only looked for when the fault hit the leader; elsewhere the
            // figure does not apply, rather than missing.
            if name == "leader_elected_after_s" && v.is_none() {
                continue;
            }
            f.push(Figure::new(
                format!("recovery.{}.{}.{name}", r.fault, fault.action),
                "s",
                Lower,
                Some(LimitKind::Recovery),
                v,
            ));
        }
    }
    f
}

/// The figures of several runs of one scenario, each figure's median, min and max over the
/// runs that measured it. A figure is listed if any run has it.
pub fn aggregate(runs: &[Vec<Figure>]) -> Vec<Figure> {
    let mut out: Vec<Figure> = Vec::new();
    for run in runs {
        for f in run {
            if !out.iter().any(|o| o.name == f.name) {
                out.push(Figure {
                    value: None,
                    missing: 0,
                    ..f.clone()
                });
            }
        }
    }
    for o in &mut out {
        let mut values = Vec::new();
        for run in runs {
            match run.iter().find(|f| f.name == o.name) {
                Some(Figure { value: Some(v), .. }) => values.push(v.median),
                Some(_) => o.missing += 1,
                // A run without this figure at all (a fault that did not fire): not measured.
                None => o.missing += 1,
            }
        }
        o.value = Spread::of(&values);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_and_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let even = Spread::of(&[4.0, 1.0, 3.0, 10.0]).unwrap();
        assert_eq!(even.median, 3.5, "the mean of the middle two");
        assert_eq!((even.min, even.max), (1.0, 10.0));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN, 5.0]).unwrap(), Spread::one(5.0));
    }

    #[test]
    fn aggregation_counts_what_a_run_did_not_measure() {
        let fig = |name: &str, v: Option<f64>| Figure::new(name, "s", Better::Lower, None, v);
        let runs = vec![
            vec![fig("tps", Some(100.0)), fig("recovery", Some(1.0))],
            vec![fig("tps", Some(90.0)), fig("recovery", None)],
            vec![fig("tps", Some(120.0))],
        ];
        let agg = aggregate(&runs);
        assert_eq!(agg.len(), 2);
        let tps = agg[0].value.unwrap();
        assert_eq!(
            (tps.median, tps.min, tps.max, tps.n),
            (100.0, 90.0, 120.0, 3)
        );
        assert_eq!(agg[0].missing, 0);
        assert_eq!(agg[1].value, Some(Spread::one(1.0)));
        assert_eq!(
            agg[1].missing, 2,
            "one run never recovered, one had no such fault"
        );
    }
}
