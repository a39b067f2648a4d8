//! The capacity search: double the rate until a step fails, then bisect between the last good
//! and the first bad rate until the gap is within the resolution.
//!
//! Three rules make it robust to a noisy machine:
//!
//! - **A failure is confirmed before it is trusted.** Noise on a shared machine (another
//!   process's burst of CPU or fsyncs) adds latency and backlog; it never makes an overloaded
//!   store keep up. So a failed step can be noise and a passed one cannot: a failure that
//!   would lower the upper bound is run again once at the same rate, and the re-run's verdict
//!   stands. A step over capacity beyond doubt ([`Outcome::Overloaded`]) needs no re-run, as
//!   long as it still completed as much as the best rate that passed: one that completed less
//!   met a stall (seen: 321 ops/s completed at 462 offered, right after 441 passed).
//! - **A step that falls behind measures the service rate.** Offered a little more than it can
//!   serve, a store completes what it can. A trusted failure whose backlog grew gives that rate;
//!   the highest such measure (noise only lowers a throughput) is the service rate. A step far
//!   over capacity ([`Outcome::Overloaded`]) does not: with its whole worker pool in flight and
//!   most starts late, the store and the generator work differently than near the knee (on a
//!   busy machine, the 2 ms plant completed a median 352 ops/s a second at 800 offered, after a
//!   clean pass at 400). Its throughput only points the bisection at the knee, so it does not
//!   halve its way down from a rate twice too high.
//! - **No answer without headroom.** A rate within the backlog test's own tolerance of the
//!   service rate cannot be told from one as far above it (see [`super::judge`]), so the
//!   answer stays below [`headroom_limit`] of the service rate. A pass at or above the limit,
//!   run before the service rate was known, no longer counts.
//!
//! Pure logic over step outcomes, so it is tested against synthetic response curves.

use super::judge::{Outcome, headroom_limit};

/// One step the search asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    /// The rate.
    pub rate: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether it repeated a failure at the same rate.
    pub rerun: bool,
}

/// Where the search stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Relative resolution: stop when `(bad - good) / good <= resolution`.
    pub resolution: f64,
    /// The rate of the first step.
    pub start: f64,
    /// Never try more than this.
    pub ceiling: f64,
    passes: Vec<f64>,
    bad: Option<f64>,
    /// A failure waiting for its re-run, with the throughput it measured.
    unconfirmed: Option<(f64, Option<f64>)>,
    service: Option<f64>,
    /// Where an overloaded step's throughput puts the knee (not a rate a step ran, not a bound).
    estimate: Option<f64>,
    tried: Vec<Trial>,
}

impl Search {
    /// A search from `start` ops/s, doubling up to `ceiling`.
    pub fn new(start: f64, resolution: f64, ceiling: f64) -> Self {
        Self {
            resolution,
            start,
            ceiling,
            passes: Vec::new(),
            bad: None,
            unconfirmed: None,
            service: None,
            estimate: None,
            tried: Vec::new(),
        }
    }

    /// Whether a step at `rate` now would be a re-run.
    pub fn is_rerun(&self, rate: f64) -> bool {
        self.unconfirmed.is_some_and(|(r, _)| r == rate)
    }

    /// Records how a step at `rate` ended.
    pub fn record(&mut self, rate: f64, outcome: Outcome) {
        let first = self.unconfirmed.filter(|(r, _)| *r == rate);
        if first.is_some() {
            self.unconfirmed = None;
        }
        self.tried.push(Trial {
            rate,
            outcome,
            rerun: first.is_some(),
        });
        match outcome {
            Outcome::Pass => self.passes.push(rate),
            Outcome::Overloaded { throughput } => {
                // Beyond doubt only while the store still completed as much as a rate that
                // passed: a long stall can leave an overloaded-looking step under it.
                let consistent = self.answer().is_none_or(|g| throughput >= g);
                if first.is_some() || consistent {
                    self.lower_bad(rate);
                    let at = (throughput * (1.0 + self.resolution)).round();
                    self.estimate = Some(self.estimate.map_or(at, |e| e.max(at)));
                } else {
                    self.doubt(rate, None);
                }
            }
            Outcome::Fail { throughput } => match first {
                Some((_, before)) => {
                    self.lower_bad(rate);
                    self.measured(throughput);
                    self.measured(before);
                }
                None => self.doubt(rate, throughput),
            },
        }
    }

    /// A failure to run again before it is trusted (unless a lower one already is).
    fn doubt(&mut self, rate: f64, throughput: Option<f64>) {
        if self.bad.is_none_or(|b| rate < b) {
            self.unconfirmed = Some((rate, throughput));
        }
    }

    fn lower_bad(&mut self, rate: f64) {
        self.bad = Some(self.bad.map_or(rate, |b| b.min(rate)));
    }

    fn measured(&mut self, throughput: Option<f64>) {
        if let Some(t) = throughput.filter(|t| *t > 0.0) {
            self.service = Some(self.service.map_or(t, |s| s.max(t)));
        }
    }

    /// The service rate that trusted failures measured, if any did.
    pub fn service_rate(&self) -> Option<f64> {
        self.service
    }

    /// Rates at or above this have no headroom under the service rate.
    pub fn limit(&self) -> Option<f64> {
        self.service.map(headroom_limit)
    }

    /// The highest rate that passed and has headroom.
    pub fn answer(&self) -> Option<f64> {
        let limit = self.limit();
        self.passes
            .iter()
            .copied()
            .filter(|r| limit.is_none_or(|l| *r < l))
            .reduce(f64::max)
    }

    /// The lowest rate a step ran at whose failure the search trusted.
    pub fn first_bad(&self) -> Option<f64> {
        self.bad
    }

    /// The rate the answer must stay under: the first bad rate or the headroom limit.
    fn upper(&self) -> Option<f64> {
        match (self.bad, self.limit()) {
            (Some(b), Some(l)) => Some(b.min(l)),
            (b, l) => b.or(l),
        }
    }

    /// The next rate to try, or `None` when the search is over.
    pub fn next(&self) -> Option<f64> {
        if let Some((rate, _)) = self.unconfirmed {
            return Some(rate);
        }
        match (self.answer(), self.upper()) {
            (None, None) => Some(self.start),
            // Passes that all lost their headroom: probe below the limit.
            (None, Some(u))
                if !self.passes.is_empty() && self.tried.iter().all(|t| t.rate >= u) =>
            {
                Some((u * (1.0 - self.resolution)).round())
            }
            // Even the lowest step failed: there is no capacity to report.
            (None, Some(_)) => None,
            (Some(g), None) => {
                let next = (g * 2.0).min(self.ceiling);
                (next > g).then_some(next)
            }
            (Some(g), Some(u)) => {
                if u <= g || (u - g) / g <= self.resolution {
                    return None;
                }
                // An overloaded step's estimate narrows the bracket while it lies inside it; a
                // rate near it then runs and bounds the knee for real.
                let towards = self
                    .estimate
                    .filter(|e| *e > g + 1.0 && *e < u)
                    .unwrap_or(u);
                let next = if (towards - g) / g <= self.resolution {
                    towards
                } else {
                    ((g + towards) / 2.0).round().max(g + 1.0)
                };
                (next < u).then_some(next)
            }
        }
    }

    /// Every step so far, in order.
    pub fn tried(&self) -> &[Trial] {
        &self.tried
    }

    /// How many steps were re-runs.
    pub fn reruns(&self) -> usize {
        self.tried.iter().filter(|t| t.rerun).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against `verdict`, which sees the rate and how many steps ran before.
    fn search_with(
        start: f64,
        resolution: f64,
        mut verdict: impl FnMut(f64, usize) -> Outcome,
    ) -> Search {
        let mut s = Search::new(start, resolution, 1e6);
        let mut guard = 0;
        while let Some(rate) = s.next() {
            let n = s.tried().len();
            s.record(rate, verdict(rate, n));
            guard += 1;
            assert!(guard < 60, "the search does not end: {:?}", s.tried());
        }
        s
    }

    /// A store that serves `knee` ops/s: at or below it steps pass; above it they fall behind
    /// and complete `knee` ops/s, beyond doubt when that is under three quarters of the rate.
    fn store(knee: f64) -> impl FnMut(f64, usize) -> Outcome {
        move |rate, _| {
            if rate <= knee {
                Outcome::Pass
            } else if knee < 0.75 * rate {
                Outcome::Overloaded { throughput: knee }
            } else {
                Outcome::Fail {
                    throughput: Some(knee),
                }
            }
        }
    }

    /// A store whose failures say nothing of its service rate (an SLO bound, not a backlog).
    fn slo_bound(limit: f64) -> impl FnMut(f64, usize) -> Outcome {
        move |rate, _| {
            if rate <= limit {
                Outcome::Pass
            } else {
                Outcome::Fail { throughput: None }
            }
        }
    }

    fn rates(s: &Search) -> Vec<f64> {
        s.tried().iter().map(|t| t.rate).collect()
    }

    #[test]
    fn doubles_until_a_failure_then_bisects_to_the_resolution() {
        let s = search_with(50.0, 0.05, slo_bound(730.0));
        assert_eq!(
            &rates(&s)[..6],
            &[50.0, 100.0, 200.0, 400.0, 800.0, 800.0],
            "doubling first; a failure is re-run before it is trusted"
        );
        assert!(s.tried()[5].rerun);
        let answer = s.answer().unwrap();
        assert!(
            (730.0 / 1.05..=730.0).contains(&answer),
            "{answer} within 5 % below the knee"
        );
        let bad = s.first_bad().unwrap();
        assert!(
            (bad - answer) / answer <= 0.05,
            "stopping rule: gap {answer}..{bad}"
        );
        for t in s.tried().iter().filter(|t| t.outcome != Outcome::Pass) {
            assert!(
                s.tried().iter().any(|u| u.rerun && u.rate == t.rate),
                "every failure was re-run: {:?}",
                s.tried()
            );
        }
        assert_eq!(s.service_rate(), None, "no step fell behind");
    }

    /// The throughput of an overloaded step points the bisection at the knee: a 460 ops/s
    /// store from 50 ops/s takes the doubling to 800 and then only steps near 460; the bound is
    /// set by a step that ran and fell behind, and the answer keeps its headroom under it.
    #[test]
    fn an_overloaded_step_points_the_bisection_at_its_throughput() {
        let s = search_with(50.0, 0.05, store(460.0));
        let r = rates(&s);
        assert_eq!(&r[..5], &[50.0, 100.0, 200.0, 400.0, 800.0]);
        assert!(
            r[5..].iter().all(|x| (400.0..=483.0).contains(x)),
            "after the overload only rates near the knee: {r:?}"
        );
        let limit = headroom_limit(460.0);
        let answer = s.answer().unwrap();
        assert!(
            (limit / 1.05..limit).contains(&answer),
            "{answer} within 5 % under {limit}"
        );
        assert_eq!(
            s.service_rate(),
            Some(460.0),
            "measured by a step that fell behind"
        );
        assert!(s.first_bad().unwrap() < 800.0 && s.first_bad().unwrap() > 460.0);
        assert!(r.len() <= 11, "{r:?}");
        // Plain halving from 400..800 would need more steps for the same bracket.
        let plain = search_with(50.0, 0.05, |r, _| {
            if r <= 460.0 {
                Outcome::Pass
            } else {
                Outcome::Fail {
                    throughput: Some(460.0),
                }
            }
        });
        assert!(
            plain.tried().len() >= s.tried().len(),
            "{:?}",
            rates(&plain)
        );
    }

    /// An overloaded step that completed less than a rate that passed cleanly (a stall of the
    /// machine, the generator's own overload) is doubted, re-run, and measures no service rate;
    /// the pass stands.
    #[test]
    fn an_overloaded_step_under_a_clean_pass_is_re_run_and_revokes_nothing() {
        let mut s = Search::new(400.0, 0.05, 1e6);
        s.record(400.0, Outcome::Pass);
        s.record(800.0, Outcome::Overloaded { throughput: 352.0 });
        assert_eq!(s.next(), Some(800.0), "doubted: run again");
        assert_eq!(s.first_bad(), None);
        s.record(800.0, Outcome::Overloaded { throughput: 352.0 });
        assert!(s.tried()[2].rerun);
        assert_eq!(s.first_bad(), Some(800.0));
        assert_eq!(s.answer(), Some(400.0));
        assert_eq!(s.service_rate(), None);
        assert_eq!(
            s.next(),
            Some(600.0),
            "the estimate lies below the answer: halve"
        );
        // Consistent with the pass: trusted at once.
        let mut s = Search::new(400.0, 0.05, 1e6);
        s.record(400.0, Outcome::Pass);
        s.record(800.0, Outcome::Overloaded { throughput: 455.0 });
        assert_eq!(s.first_bad(), Some(800.0));
        assert_ne!(s.next(), Some(800.0));
    }

    /// A store at 194 ops/s found from 50: 200 falls behind twice (a re-run), which measures
    /// the service rate, and 194, which a short step at the service rate would pass, is never
    /// the answer.
    #[test]
    fn the_answer_keeps_headroom_under_a_service_rate_just_below_the_first_failure() {
        let s = search_with(50.0, 0.05, store(194.0));
        assert_eq!(&rates(&s)[..4], &[50.0, 100.0, 200.0, 200.0]);
        let answer = s.answer().unwrap();
        assert!(answer < headroom_limit(194.0), "{answer}");
        assert!(answer >= headroom_limit(194.0) / 1.05, "{answer}");
        assert_eq!(s.reruns(), 1);
    }

    /// A pass at the service rate that ran before any step measured it is dropped once one
    /// does, and the search goes on below it.
    #[test]
    fn a_pass_without_headroom_is_dropped_when_the_service_rate_is_known() {
        let s = search_with(48.0, 0.05, store(194.0));
        assert_eq!(&rates(&s)[..4], &[48.0, 96.0, 192.0, 384.0]);
        assert_eq!(s.tried()[2].outcome, Outcome::Pass, "192 passed at first");
        let answer = s.answer().unwrap();
        assert!(answer < headroom_limit(194.0) && answer > 150.0, "{answer}");
        // A start above the knee whose pass is dropped probes under the limit.
        let mut s = Search::new(200.0, 0.05, 1e6);
        s.record(200.0, Outcome::Pass);
        s.record(
            230.0,
            Outcome::Fail {
                throughput: Some(190.0),
            },
        );
        s.record(
            230.0,
            Outcome::Fail {
                throughput: Some(185.0),
            },
        );
        assert_eq!(s.answer(), None);
        assert_eq!(s.next(), Some((headroom_limit(190.0) * 0.95).round()));
    }

    /// A failure on one step that does not repeat (noise) does not set the bound: the re-run
    /// passes and the search goes on above it. Neither does a one-off failure's throughput set
    /// the service rate.
    #[test]
    fn a_failure_that_does_not_repeat_does_not_bound_the_answer() {
        let mut noisy = store(460.0);
        let s = search_with(100.0, 0.05, move |r, n| {
            if n == 2 {
                // The first step at 400 meets a stall.
                Outcome::Fail {
                    throughput: Some(377.0),
                }
            } else {
                noisy(r, n)
            }
        });
        assert_eq!(&rates(&s)[..4], &[100.0, 200.0, 400.0, 400.0]);
        assert!(s.tried()[3].rerun && s.tried()[3].outcome == Outcome::Pass);
        let answer = s.answer().unwrap();
        assert!(answer > 400.0 && answer < headroom_limit(460.0), "{answer}");
        assert_eq!(
            s.service_rate(),
            Some(460.0),
            "the one-off failure's 377 ops/s measured nothing"
        );
    }

    /// A failure that repeats is trusted even when it is noise every time: the search reports
    /// the rate below it, and says it re-ran it.
    #[test]
    fn a_repeated_failure_is_trusted() {
        let s = search_with(100.0, 0.05, slo_bound(399.0));
        assert!(s.answer().unwrap() < 400.0);
        assert!(s.reruns() >= 1);
        let confirmed = s
            .tried()
            .iter()
            .filter(|t| t.rerun && t.outcome != Outcome::Pass)
            .map(|t| t.rate)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(s.first_bad(), Some(confirmed));
    }

    #[test]
    fn a_failing_first_step_has_no_answer() {
        let s = search_with(50.0, 0.05, store(10.0));
        assert_eq!(s.tried().len(), 1, "overloaded at once: no re-run");
        assert_eq!(s.answer(), None);
        let s = search_with(50.0, 0.05, |_, _| Outcome::Fail { throughput: None });
        assert_eq!(rates(&s), [50.0, 50.0], "a plain failure is re-run first");
        assert_eq!(s.answer(), None);
    }

    #[test]
    fn the_ceiling_stops_the_doubling() {
        let mut s = Search::new(100.0, 0.05, 300.0);
        s.record(100.0, Outcome::Pass);
        assert_eq!(s.next(), Some(200.0));
        s.record(200.0, Outcome::Pass);
        assert_eq!(s.next(), Some(300.0));
        s.record(300.0, Outcome::Pass);
        assert_eq!(s.next(), None, "nothing above the ceiling");
        assert_eq!(s.answer(), Some(300.0));
    }

    #[test]
    fn a_noisy_curve_still_ends_with_a_good_rate_below_a_bad_one() {
        // Passes below 500 except a failure at 400 that repeats.
        let s = search_with(100.0, 0.05, |r, _| {
            if r < 500.0 && r != 400.0 {
                Outcome::Pass
            } else {
                Outcome::Fail { throughput: None }
            }
        });
        let a = s.answer().unwrap();
        assert!(
            (200.0..400.0).contains(&a),
            "{a}: the lowest failure bounds the answer"
        );
    }
}
