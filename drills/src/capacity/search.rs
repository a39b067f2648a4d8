//! The capacity search: double the rate until a step fails, then bisect between the last good
//! and the first bad rate until the gap is within the resolution.
//!
//! Pure logic over step verdicts, so it is tested against synthetic response curves.

/// Where the search stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Relative resolution: stop when `(bad - good) / good <= resolution`.
    pub resolution: f64,
    /// The rate of the first step.
    pub start: f64,
    /// Never try more than this.
    pub ceiling: f64,
    good: Option<f64>,
    bad: Option<f64>,
    tried: Vec<(f64, bool)>,
}

impl Search {
    /// A search from `start` ops/s, doubling up to `ceiling`.
    pub fn new(start: f64, resolution: f64, ceiling: f64) -> Self {
        Self {
            resolution,
            start,
            ceiling,
            good: None,
            bad: None,
            tried: Vec::new(),
        }
    }

    /// Records the verdict of a step at `rate`.
    pub fn record(&mut self, rate: f64, passed: bool) {
        self.tried.push((rate, passed));
        if passed {
            self.good = Some(self.good.map_or(rate, |g| g.max(rate)));
        } else {
            self.bad = Some(self.bad.map_or(rate, |b| b.min(rate)));
        }
    }

    /// The next rate to try, or `None` when the search is over.
    pub fn next(&self) -> Option<f64> {
        match (self.good, self.bad) {
            (None, None) => Some(self.start),
            // Even the first step failed: there is no capacity to report.
            (None, Some(_)) => None,
            (Some(g), None) => {
                let next = (g * 2.0).min(self.ceiling);
                (next > g).then_some(next)
            }
            (Some(g), Some(b)) => {
                if b <= g || (b - g) / g <= self.resolution {
                    None
                } else {
                    Some(((g + b) / 2.0).round().max(g + 1.0))
                }
            }
        }
    }

    /// The highest rate that passed.
    pub fn answer(&self) -> Option<f64> {
        self.good
    }

    /// Every step so far, in order.
    pub fn tried(&self) -> &[(f64, bool)] {
        &self.tried
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a curve that passes at or below `limit`.
    fn search(limit: f64, start: f64, resolution: f64) -> Search {
        let mut s = Search::new(start, resolution, 1e6);
        let mut guard = 0;
        while let Some(rate) = s.next() {
            s.record(rate, rate <= limit);
            guard += 1;
            assert!(guard < 60, "the search does not end: {:?}", s.tried());
        }
        s
    }

    #[test]
    fn doubles_until_a_failure_then_bisects_to_the_resolution() {
        let s = search(730.0, 50.0, 0.05);
        let rates: Vec<f64> = s.tried().iter().map(|t| t.0).collect();
        assert_eq!(
            &rates[..5],
            &[50.0, 100.0, 200.0, 400.0, 800.0],
            "doubling first"
        );
        let answer = s.answer().unwrap();
        assert!(
            (730.0 / 1.05..=730.0).contains(&answer),
            "{answer} within 5 % below the knee"
        );
        let fails: Vec<f64> = s.tried().iter().filter(|t| !t.1).map(|t| t.0).collect();
        let bad = fails.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            (bad - answer) / answer <= 0.05,
            "stopping rule: gap {answer}..{bad}"
        );
    }

    #[test]
    fn a_failing_first_step_has_no_answer() {
        let s = search(10.0, 50.0, 0.05);
        assert_eq!(s.tried().len(), 1);
        assert_eq!(s.answer(), None);
    }

    #[test]
    fn the_ceiling_stops_the_doubling() {
        let mut s = Search::new(100.0, 0.05, 300.0);
        s.record(100.0, true);
        assert_eq!(s.next(), Some(200.0));
        s.record(200.0, true);
        assert_eq!(s.next(), Some(300.0));
        s.record(300.0, true);
        assert_eq!(s.next(), None, "nothing above the ceiling");
        assert_eq!(s.answer(), Some(300.0));
    }

    #[test]
    fn a_noisy_curve_still_ends_with_a_good_rate_below_a_bad_one() {
        // Passes below 500 except a flaky failure at 400.
        let mut s = Search::new(100.0, 0.05, 1e6);
        while let Some(rate) = s.next() {
            s.record(rate, rate < 500.0 && rate != 400.0);
        }
        let a = s.answer().unwrap();
        assert!(
            (200.0..400.0).contains(&a),
            "{a}: the lowest failure bounds the answer"
        );
    }
}
