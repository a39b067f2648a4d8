//! Whether a step counts as sustainable, and if not, why: one [`Failure`] per cause, so that
//! `capacity.json`, `capacity.md`, the SVG and the live view can each say which.
//!
//! A step passes when it meets every SLO term, keeps up with its rate (its backlog does not
//! grow), starts its operations on time, and leaves a log that drains before the next step.
//! The SLO alone cannot tell a rate just above the store's service rate from one just below it:
//! a backlog that grows by 2 % of the rate adds only 0.2 s of queueing over a 10 s step, far
//! inside an 800 ms p99 bound, yet it grows without end. The backlog term catches that.
//!
//! The backlog term in turn cannot tell a rate within [`MAX_GROWTH_PCT`] of the service rate
//! from one that far above it, and a step at the service rate itself keeps up in a short
//! window only because it starts on an empty queue: the first stall leaves a backlog it never
//! drains. So once a step has fallen behind and measured the service rate (what a store
//! completes when offered more than it can do), a rate within that margin of it has no
//! headroom and does not count as sustainable ([`Failure::NoHeadroom`]).

use loadgen::thresholds::Metric;

use super::failure::{Failure, MAX_GROWTH_PCT, MAX_LATE_PCT};
use super::slo::Slo;
use super::step::StepResult;

/// A step that completed fewer than this share of its rate successfully is over capacity beyond
/// doubt: a stall of the machine would have to last a quarter of the step to do that. Such a
/// failure is trusted without a re-run, and its throughput bounds the service rate.
pub const OVERLOAD_SHARE: f64 = 0.75;

/// How a step ended, as far as the search is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The step met the SLO and kept up.
    Pass,
    /// The step failed; near the knee this may be noise.
    Fail {
        /// When its backlog grew: the rate it completed (the service rate, if the failure
        /// holds).
        throughput: Option<f64>,
    },
    /// The step failed so clearly that noise cannot explain it: the store completed only
    /// `throughput` ops/s.
    Overloaded {
        /// Successful operations per second in the step's window.
        throughput: f64,
    },
}

/// Judges a step's figures: sets its verdict, its reasons and the one-line reason. Every metric
/// an SLO can name is observed here (node CPU is not an SLO metric), so no term can fail for
/// want of a figure.
pub fn judge(slo: &Slo, s: &mut StepResult, settle_timeout_s: f64) {
    let observed = |m: Metric| match m {
        Metric::P50 => Some(s.p50_ms),
        Metric::P90 => Some(s.p90_ms),
        Metric::P99 => Some(s.p99_ms),
        Metric::P999 => Some(s.p999_ms),
        Metric::Max => Some(s.max_ms),
        Metric::SuccessRate => Some(s.success_rate),
        Metric::ErrorRate => Some(100.0 - s.success_rate),
        Metric::Tps => Some(s.achieved_rate),
        Metric::NodeCpu => None,
    };
    let mut reasons: Vec<Failure> = slo
        .missed(observed)
        .into_iter()
        .map(|(t, v)| Failure::Slo {
            term: t.to_string(),
            observed: v,
            errors: matches!(t.metric, Metric::SuccessRate | Metric::ErrorRate).then_some(s.errors),
        })
        .collect();
    if let Some(g) = s.backlog_growth_pct
        && g > MAX_GROWTH_PCT
    {
        reasons.push(Failure::Behind {
            growth_pct: g,
            achieved_rate: s.achieved_rate,
        });
    }
    let behind = reasons.iter().any(|r| matches!(r, Failure::Behind { .. }));
    if behind && s.late_pct > MAX_LATE_PCT {
        reasons.push(Failure::Late {
            late_pct: s.late_pct,
        });
    }
    if s.drained == Some(false) {
        reasons.push(Failure::NotDrained {
            settle_timeout_s,
            backlog: s.backlog_left,
        });
    }
    s.verdict = if reasons.is_empty() { "pass" } else { "fail" }.into();
    s.reason = (!reasons.is_empty()).then(|| {
        reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    });
    s.reasons = reasons;
}

/// What a judged step tells the search: a failure over capacity beyond doubt (see
/// [`OVERLOAD_SHARE`]) or one that fell behind carries what the step completed ok per second
/// in its window.
pub fn outcome(s: &StepResult) -> Outcome {
    if s.verdict == "pass" {
        return Outcome::Pass;
    }
    let throughput = s.ok_rate;
    if s.ok_rate < OVERLOAD_SHARE * s.target_rate {
        return Outcome::Overloaded { throughput };
    }
    let behind = s
        .reasons
        .iter()
        .any(|r| matches!(r, Failure::Behind { .. }));
    Outcome::Fail {
        throughput: behind.then_some(throughput),
    }
}

/// The highest rate with headroom under a measured service rate.
pub fn headroom_limit(service_rate: f64) -> f64 {
    service_rate * (1.0 - MAX_GROWTH_PCT / 100.0)
}

/// Fails a step that passed its own terms but lies at or above the headroom limit of
/// `service_rate` (measured by a later step, or an earlier one).
pub fn deny_headroom(s: &mut StepResult, service_rate: f64) {
    let limit = headroom_limit(service_rate);
    if s.verdict != "pass" || s.target_rate < limit {
        return;
    }
    let r = Failure::NoHeadroom {
        service_rate,
        limit,
    };
    s.verdict = "fail".into();
    s.reason = Some(r.to_string());
    s.reasons = vec![r];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> StepResult {
        StepResult {
            target_rate: 100.0,
            achieved_rate: 100.0,
            ok_rate: 100.0,
            backlog_growth_pct: Some(0.1),
            p50_ms: 1.0,
            p90_ms: 5.0,
            p99_ms: 10.0,
            p999_ms: 20.0,
            max_ms: 30.0,
            success_rate: 100.0,
            ..StepResult::default()
        }
    }

    #[test]
    fn a_step_fails_on_the_slo_and_late_starts_alone_fail_nothing() {
        let slo = Slo::parse("p99<800ms,success>=99.5%").unwrap();
        let mut s = step();
        judge(&slo, &mut s, 30.0);
        assert_eq!(s.verdict, "pass");
        assert!(s.reasons.is_empty() && s.reason.is_none());
        s.late_pct = 3.4;
        judge(&slo, &mut s, 30.0);
        assert_eq!(s.verdict, "pass", "latency counts from the intended start");
        s.backlog_growth_pct = Some(5.0);
        judge(&slo, &mut s, 30.0);
        assert_eq!(s.verdict, "fail");
        assert_eq!(
            s.reasons[1..],
            [Failure::Late { late_pct: 3.4 }],
            "beside a growing backlog, late starts are named"
        );
        s.late_pct = 0.0;
        s.backlog_growth_pct = Some(0.0);
        s.p99_ms = 900.0;
        judge(&slo, &mut s, 30.0);
        assert_eq!(s.reasons.len(), 1);
        assert!(
            matches!(&s.reasons[0], Failure::Slo { term, observed: Some(v), errors: None } if term == "p99<800ms" && *v == 900.0),
            "{:?}",
            s.reasons
        );
        assert!(s.reason.clone().unwrap().contains("p99<800ms"));
    }

    /// Each cause is named, all of them when several hold, with the errors by class for a
    /// success term.
    #[test]
    fn every_cause_is_named() {
        let slo = Slo::parse("p99<800ms,success>=99.5%").unwrap();
        let mut s = step();
        s.p99_ms = 1200.0;
        s.success_rate = 97.0;
        s.errors.timeout = 12;
        s.errors.no_leader = 3;
        s.backlog_growth_pct = Some(6.0);
        s.achieved_rate = 94.0;
        s.late_pct = 4.0;
        s.drained = Some(false);
        s.backlog_left = Some(812);
        judge(&slo, &mut s, 30.0);
        let kinds: Vec<&str> = s
            .reasons
            .iter()
            .map(|r| match r {
                Failure::Slo { .. } => "slo",
                Failure::Behind { .. } => "behind",
                Failure::Late { .. } => "late",
                Failure::NoHeadroom { .. } => "no_headroom",
                Failure::NotDrained { .. } => "not_drained",
            })
            .collect();
        assert_eq!(kinds, ["slo", "slo", "behind", "late", "not_drained"]);
        let text = s.reason.unwrap();
        for part in [
            "p99<800ms",
            "success_rate>=99.5%",
            "12 timeout, 3 no_leader",
            "6.0 %",
            "4.0 %",
            "812 entries",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        let json = serde_json::to_value(&s.reasons).unwrap();
        assert_eq!(json[1]["kind"], "slo");
        assert_eq!(json[1]["errors"]["timeout"], 12);
        assert_eq!(json[2]["kind"], "behind");
        assert_eq!(json[4]["backlog"], 812);
        assert_eq!(s.reasons[0].label(), "p99 1200");
        assert_eq!(s.reasons[2].label(), "behind +6%/s");
    }

    /// A step whose backlog grows passes the SLO in its short window but does not keep up.
    #[test]
    fn a_growing_backlog_fails_a_step_that_met_the_slo() {
        let slo = Slo::parse("p99<800ms").unwrap();
        let mut s = step();
        s.backlog_growth_pct = Some(MAX_GROWTH_PCT + 0.5);
        judge(&slo, &mut s, 30.0);
        assert_eq!(s.verdict, "fail");
        s.backlog_growth_pct = Some(MAX_GROWTH_PCT - 0.5);
        judge(&slo, &mut s, 30.0);
        assert_eq!(s.verdict, "pass");
    }

    /// Every metric the SLO parser takes is observed by a step, so a step that meets a
    /// p90, max or tps term passes (they used to be accepted and never observed: every step
    /// failed).
    #[test]
    fn every_slo_metric_is_observed() {
        let mut s = step();
        for text in [
            "p90<10ms",
            "max<50ms",
            "tps>=99",
            "p50<2ms,p999<25ms,errors<1%",
        ] {
            let slo = Slo::parse(text).unwrap();
            judge(&slo, &mut s, 30.0);
            assert_eq!(s.verdict, "pass", "{text}: {:?}", s.reason);
        }
        judge(&Slo::parse("tps>=150").unwrap(), &mut s, 30.0);
        assert_eq!(s.verdict, "fail");
    }

    #[test]
    fn only_a_deep_shortfall_is_an_overload_beyond_doubt() {
        let slo = Slo::parse("p99<800ms").unwrap();
        let mut s = step();
        s.target_rate = 800.0;
        s.ok_rate = 455.0;
        s.backlog_growth_pct = Some(40.0);
        judge(&slo, &mut s, 30.0);
        assert_eq!(outcome(&s), Outcome::Overloaded { throughput: 455.0 });
        s.ok_rate = 700.0;
        assert_eq!(
            outcome(&s),
            Outcome::Fail {
                throughput: Some(700.0)
            },
            "12 % short may be a stall: a failure to confirm, with the rate it completed"
        );
        s.backlog_growth_pct = Some(0.0);
        s.p99_ms = 900.0;
        judge(&slo, &mut s, 30.0);
        assert_eq!(
            outcome(&s),
            Outcome::Fail { throughput: None },
            "a store that kept up measured no service rate"
        );
        s.ok_rate = 100.0;
        s.p99_ms = 10.0;
        judge(&slo, &mut s, 30.0);
        assert_eq!(
            outcome(&s),
            Outcome::Pass,
            "a passing step is never overloaded"
        );
    }

    #[test]
    fn a_pass_at_the_service_rate_has_no_headroom() {
        let slo = Slo::parse("p99<800ms").unwrap();
        let mut s = step();
        s.target_rate = 194.0;
        judge(&slo, &mut s, 30.0);
        deny_headroom(&mut s, 200.0);
        assert_eq!(s.verdict, "pass", "196 is the limit of 200");
        deny_headroom(&mut s, 194.0);
        assert_eq!(s.verdict, "fail");
        assert!(matches!(s.reasons[..], [Failure::NoHeadroom { .. }]));
        assert!(s.reason.unwrap().contains("194 ops/s"));
        assert!((headroom_limit(194.0) - 190.12).abs() < 1e-9);
    }
}
