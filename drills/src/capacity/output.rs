//! What a search leaves: `capacity.json` ([`CapacityReport`]), `capacity.md` and
//! `capacity.svg`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plot;
use super::slo::Slo;
use super::step::StepResult;
use super::verify::Verification;

/// How sure the answer is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Uncertainty {
    /// The highest rate that passed (the answer).
    pub last_good: Option<f64>,
    /// The lowest rate whose failure the search trusted: the knee lies between the two.
    pub first_bad: Option<f64>,
    /// Steps that repeated a failure before the search trusted it.
    pub reruns: usize,
    /// What the store completed when a step fell behind (the highest such measure of the
    /// trusted failures), ops/s.
    pub service_rate: Option<f64>,
    /// The highest rate with headroom under the service rate: the answer stays below it.
    pub limit: Option<f64>,
}

impl Uncertainty {
    /// The rate the knee lies below: the first bad rate or the headroom limit, the lower.
    pub fn upper(&self) -> Option<f64> {
        match (self.first_bad, self.limit) {
            (Some(b), Some(l)) => Some(b.min(l)),
            (b, l) => b.or(l),
        }
    }
}

/// `capacity.json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CapacityReport {
    /// Scenario name.
    pub scenario: String,
    /// The store under test.
    pub target: String,
    /// Nodes.
    pub nodes: u64,
    /// Workload letter.
    pub workload: String,
    /// The SLO.
    pub slo: String,
    /// Relative resolution.
    pub resolution: f64,
    /// Whether the scenario's faults ran in every step.
    pub with_faults: bool,
    /// The measured window of each step, s.
    pub step_duration_s: f64,
    /// The warmup before each step's window, s.
    pub step_warmup_s: f64,
    /// Every step, in order.
    pub steps: Vec<StepResult>,
    /// The best step that met the SLO.
    pub answer: Option<StepResult>,
    /// The answer's rate, ops/s: the highest target rate a step sustained.
    pub answer_rate: Option<f64>,
    /// Between which rates the knee lies, and how many steps were re-run.
    pub uncertainty: Uncertainty,
    /// The closed-loop cross-check (`--verify`).
    pub verify: Option<Verification>,
    /// How long the search took.
    pub search_s: f64,
    /// Whether Ctrl-C cut the search short.
    pub aborted: bool,
    /// Why the search stopped before it converged, when it did.
    pub stopped: Option<String>,
}

impl CapacityReport {
    /// The one-line answer.
    pub fn answer_line(&self) -> String {
        match (&self.answer, self.answer_rate) {
            (Some(a), Some(rate)) => {
                let mut line = format!(
                    "max sustainable: {} ops/s (p99 {:.0} ms, success {:.1} %) on {} nodes, workload {}",
                    thousands(rate),
                    a.p99_ms,
                    a.success_rate,
                    self.nodes,
                    self.workload
                );
                if let Some(upper) = self.uncertainty.upper() {
                    let _ = write!(line, "; knee below {}", thousands(upper));
                }
                line
            }
            _ => format!(
                "no sustainable rate: even the first step failed the SLO ({})",
                self.slo
            ),
        }
    }

    /// The cross-check's line, with `--verify`.
    pub fn verify_line(&self) -> Option<String> {
        self.verify.as_ref().map(|v| format!("verify: {}", v.note))
    }
}

/// `3,150`.
pub fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

type WriteError = (PathBuf, std::io::Error);

/// Writes `capacity.json`, `capacity.md` and `capacity.svg` into `dir`.
pub fn write_outputs(dir: &Path, r: &CapacityReport, slo: &Slo) -> Result<(), WriteError> {
    let p = dir.join("capacity.json");
    let json = crate::versioned::to_json(r, crate::versioned::schema::CAPACITY);
    std::fs::write(&p, json).map_err(|e| (p, e))?;
    let p = dir.join("capacity.md");
    std::fs::write(&p, markdown(r)).map_err(|e| (p, e))?;
    let title = format!("{}: {} nodes, workload {}", r.scenario, r.nodes, r.workload);
    let svg = dir.join("capacity.svg");
    let marks = plot::Marks {
        slo_ms: slo.p99_bound_ms(),
        knee: r.answer_rate,
        upper: r.uncertainty.upper(),
        saturation: r.verify.as_ref().map(|v| v.saturation_rate),
    };
    plot::draw(&svg, &title, &r.steps, &marks).map_err(|e| (svg, std::io::Error::other(e)))
}

/// `capacity.md`.
pub fn markdown(r: &CapacityReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Capacity: {}\n\n**{}**\n", r.scenario, r.answer_line());
    if let Some(text) = bounds(&r.uncertainty) {
        let _ = writeln!(o, "{text}\n");
    }
    if let Some(v) = &r.verify {
        let _ = writeln!(
            o,
            "**Cross-check ({}):** {}. Closed loop: {} users, {:.0} ops/s in a typical second \
             ({:.0} ops/s over the whole {:.0} s window), p50 {:.1} ms, p99 {:.1} ms.\n",
            v.verdict,
            v.note,
            v.users,
            v.saturation_rate,
            v.mean_rate,
            v.window_s,
            v.p50_ms,
            v.p99_ms
        );
    }
    let _ = writeln!(
        o,
        "SLO `{}`, resolution {:.0} %, {} steps of {:.0} s (after {:.0} s of warmup) in {:.0} s{}.\n",
        r.slo,
        r.resolution * 100.0,
        r.steps.len(),
        r.step_duration_s,
        r.step_warmup_s,
        r.search_s,
        if r.with_faults {
            ", each step with the scenario's faults"
        } else {
            ""
        }
    );
    steps_table(&mut o, &r.steps);
    let _ = writeln!(
        o,
        "\n*backlog %/s*: how fast the operations offered and not yet completed grew over the \
         window, in percent of the rate per second; a step that keeps up stays near 0."
    );
    if let Some(why) = &r.stopped {
        let _ = writeln!(o, "\n**The search stopped early:** {why}.");
    }
    let _ = writeln!(o, "\n![latency–throughput curve](capacity.svg)");
    let _ = writeln!(o, "\n![the search over time, steps as bands](timeline.svg)");
    o
}

/// Where the knee lies and how many failures were re-run, when a step passed.
fn bounds(u: &Uncertainty) -> Option<String> {
    let good = u.last_good?;
    let mut bounds = Vec::new();
    if let Some(bad) = u.first_bad {
        bounds.push(format!(
            "{} ops/s, the first failure the search trusted",
            thousands(bad)
        ));
    }
    if let (Some(service), Some(limit)) = (u.service_rate, u.limit) {
        bounds.push(format!(
            "{} ops/s, the headroom limit under the service rate of {} ops/s that the steps \
             which fell behind measured",
            thousands(limit),
            thousands(service)
        ));
    }
    Some(format!(
        "The answer is the last step that passed, {} ops/s; the knee lies below {}. {} \
         step{} re-ran a failure before the search trusted it.",
        thousands(good),
        if bounds.is_empty() {
            "no rate the search tried".into()
        } else {
            bounds.join(" and ")
        },
        u.reruns,
        if u.reruns == 1 { "" } else { "s" }
    ))
}

/// The table of steps, one row each.
fn steps_table(o: &mut String, steps: &[StepResult]) {
    let _ = writeln!(
        o,
        "| step | target ops/s | achieved | backlog %/s | p50 ms | p99 ms | p99.9 ms | success % | late % | drained | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(
            o,
            "| {}{} | {:.0} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {}{} |",
            i + 1,
            if s.rerun { " (re-run)" } else { "" },
            s.target_rate,
            s.achieved_rate,
            s.backlog_growth_pct
                .map_or("–".into(), |g| format!("{g:+.1}")),
            s.p50_ms,
            s.p99_ms,
            s.p999_ms,
            s.success_rate,
            s.late_pct,
            match (s.drained, s.settle_s) {
                (Some(true), Some(t)) => format!("✓ {t:.1} s"),
                (Some(true), None) => "✓".into(),
                (Some(false), _) => "✗".into(),
                (None, _) => "–".into(),
            },
            if s.verdict == "pass" { "✓" } else { "✗" },
            s.reason
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::failure::Failure;

    /// A report with every kind of reason, a re-run, an answer and a cross-check.
    fn report() -> CapacityReport {
        let pass = |rate: f64| StepResult {
            target_rate: rate,
            achieved_rate: rate,
            ok_rate: rate,
            median_ok_rate: rate,
            backlog_growth_pct: Some(0.1),
            p50_ms: 9.0,
            p90_ms: 12.0,
            p99_ms: 40.0,
            p999_ms: 60.0,
            max_ms: 70.0,
            success_rate: 100.0,
            pool: Some(160),
            verdict: "pass".into(),
            drained: Some(true),
            settle_s: Some(0.1),
            ..StepResult::default()
        };
        let mut behind = pass(200.0);
        behind.verdict = "fail".into();
        behind.reasons = vec![
            Failure::Behind {
                growth_pct: 3.1,
                achieved_rate: 194.0,
            },
            Failure::Late { late_pct: 1.4 },
        ];
        behind.reason = Some("fell behind".into());
        let mut again = behind.clone();
        again.rerun = true;
        again.reasons.push(Failure::Slo {
            term: "success_rate>=99.5%".into(),
            observed: Some(99.0),
            errors: Some(loadgen::metrics::ErrorCounts {
                timeout: 3,
                ..Default::default()
            }),
        });
        let mut headroom = pass(192.0);
        headroom.verdict = "fail".into();
        headroom.reasons = vec![Failure::NoHeadroom {
            service_rate: 194.0,
            limit: 190.1,
        }];
        let mut stuck = pass(400.0);
        stuck.verdict = "fail".into();
        stuck.drained = Some(false);
        stuck.backlog_left = Some(812);
        stuck.reasons = vec![Failure::NotDrained {
            settle_timeout_s: 30.0,
            backlog: Some(812),
        }];
        let answer = pass(185.0);
        CapacityReport {
            scenario: "knee".into(),
            target: "reference".into(),
            nodes: 3,
            workload: "w".into(),
            slo: "p99<800ms,success_rate>=99.5%".into(),
            resolution: 0.05,
            with_faults: false,
            step_duration_s: 10.0,
            step_warmup_s: 2.0,
            steps: vec![pass(100.0), behind, again, headroom, answer.clone(), stuck],
            answer_rate: Some(185.0),
            answer: Some(answer),
            uncertainty: Uncertainty {
                last_good: Some(185.0),
                first_bad: Some(200.0),
                reruns: 1,
                service_rate: Some(194.0),
                limit: Some(190.1),
            },
            verify: Some(Verification {
                users: 32,
                window_s: 10.0,
                saturation_rate: 195.0,
                mean_rate: 194.0,
                ok_rate: 194.0,
                p50_ms: 164.0,
                p99_ms: 170.0,
                ratio: Some(185.0 / 195.0),
                verdict: "consistent".into(),
                note: "the answer is 0.95×".into(),
                started_s: 100.0,
                ended_s: 112.0,
            }),
            search_s: 120.0,
            aborted: false,
            stopped: None,
        }
    }

    /// capacity.json matches the schema generated from its types (and checked in), every kind
    /// of reason included.
    #[test]
    fn capacity_json_matches_its_schema() {
        let schema = crate::versioned::checked_in_schema::<CapacityReport>(
            "capacity.schema.json",
            "raftdrill capacity.json",
            crate::versioned::schema::CAPACITY,
        );
        let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
        let mut r = report();
        for _ in 0..2 {
            let json = crate::versioned::to_json(&r, crate::versioned::schema::CAPACITY);
            let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&doc)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{errors:#?}");
            // A search with no answer and no cross-check is valid too.
            r.answer = None;
            r.answer_rate = None;
            r.verify = None;
        }
        let json = crate::versioned::to_json(&report(), crate::versioned::schema::CAPACITY);
        let mut bad: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert!(validator.is_valid(&bad));
        bad["steps"][1]["reasons"][0]["kind"] = "tired".into();
        assert!(!validator.is_valid(&bad), "an unknown reason is refused");
        let unversioned = serde_json::to_value(report()).unwrap();
        assert!(
            !validator.is_valid(&unversioned),
            "a capacity.json of this raftdrill names its version"
        );
    }

    #[test]
    fn the_page_says_between_which_rates_the_knee_lies_and_what_the_check_found() {
        let md = markdown(&report());
        assert!(md.contains("max sustainable: 185 ops/s"), "{md}");
        assert!(md.contains("knee below 190"), "{md}");
        assert!(
            md.contains("200 ops/s, the first failure the search trusted"),
            "{md}"
        );
        assert!(md.contains("service rate of 194 ops/s"), "{md}");
        assert!(md.contains("1 step re-ran"), "{md}");
        assert!(md.contains("**Cross-check (consistent):**"), "{md}");
        assert!(md.contains("| 3 (re-run) | 200 |"), "{md}");
        assert!(md.contains("✗ fell behind"), "{md}");
    }

    #[test]
    fn large_rates_get_thousands_separators() {
        assert_eq!(thousands(3150.4), "3,150");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }
}
