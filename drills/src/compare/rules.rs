//! How one figure compares: better, worse or within noise, and whether a `compare` limit is
//! crossed. Pure, so the rules are tested on their own.
//!
//! Within noise:
//! - with repeats (either side measured the figure more than once): the min–max ranges of the
//!   two sides overlap, as criterion calls a change insignificant when the intervals meet;
//! - for single runs: the change is within [`NOISE_PCT`] of the base value, or within the
//!   unit's resolution ([`resolution`]: a recovery time is only known to the poller's 150 ms).
//!
//! A limit is crossed only by a change that is worse and not within noise, by more than the
//! limit. A figure BASE measured and NEW did not (a recovery that never came) crosses its limit:
//! a missing figure fails closed.

use serde::{Deserialize, Serialize};

use crate::report::figures::{Better, LimitKind, Spread};

/// Relative change of a single run that counts as noise, percent.
pub const NOISE_PCT: f64 = 5.0;

/// The smallest change a figure of this unit can show: below it, two single runs cannot be
/// told apart.
pub fn resolution(unit: &str) -> f64 {
    match unit {
        // The poller sees the cluster every 150 ms, and recovery is measured from its views.
        "s" => 0.15,
        // Latencies are HDR-recorded at 3 significant digits, and a millisecond is below what
        // a busy 2-core machine repeats.
        "ms" => 0.5,
        "ops/s" => 1.0,
        "%" => 0.1,
        _ => 0.0,
    }
}

/// The verdict on one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Better, beyond noise.
    Better,
    /// Worse, beyond noise.
    Worse,
    /// Within noise.
    WithinNoise,
    /// BASE measured it and NEW did not: worse, and failing closed.
    Missing,
    /// NEW measured what BASE did not.
    New,
}

impl Class {
    /// How the table says it.
    pub fn word(self) -> &'static str {
        match self {
            Class::Better => "better",
            Class::Worse => "worse",
            Class::WithinNoise => "within noise",
            Class::Missing => "worse (not measured)",
            Class::New => "better (now measured)",
        }
    }
}

/// The `compare` limits, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `--max-p99-increase`.
    pub max_p99_increase_pct: f64,
    /// `--max-tps-drop`.
    pub max_tps_drop_pct: f64,
    /// `--max-recovery-increase`.
    pub max_recovery_increase_pct: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_p99_increase_pct: 10.0,
            max_tps_drop_pct: 5.0,
            max_recovery_increase_pct: 20.0,
        }
    }
}

impl Limits {
    /// The limit of a kind, in percent of the base value.
    pub fn pct(&self, kind: LimitKind) -> f64 {
        match kind {
            LimitKind::P99 => self.max_p99_increase_pct,
            LimitKind::Tps => self.max_tps_drop_pct,
            LimitKind::Recovery => self.max_recovery_increase_pct,
        }
    }
}

/// The change from `base` to `new` in percent of `base` (infinite from a base of zero).
pub fn change_pct(base: f64, new: f64) -> f64 {
    if base == 0.0 {
        if new == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(new)
        }
    } else {
        (new - base) / base.abs() * 100.0
    }
}

/// Classifies a figure; `None` when neither side has it.
pub fn classify(
    base: Option<Spread>,
    new: Option<Spread>,
    better: Better,
    unit: &str,
) -> Option<Class> {
    let (b, n) = match (base, new) {
        (None, None) => return None,
        (Some(_), None) => return Some(Class::Missing),
        (None, Some(_)) => return Some(Class::New),
        (Some(b), Some(n)) => (b, n),
    };
    let noise = if b.n > 1 || n.n > 1 {
        n.min <= b.max && b.min <= n.max
    } else {
        let d = (n.median - b.median).abs();
        d <= resolution(unit) || d <= b.median.abs() * NOISE_PCT / 100.0
    };
    if noise {
        return Some(Class::WithinNoise);
    }
    let up = n.median > b.median;
    Some(match (better, up) {
        (Better::Higher, true) | (Better::Lower, false) => Class::Better,
        _ => Class::Worse,
    })
}

/// Whether a figure of this class and change crosses its limit.
pub fn crosses(
    class: Class,
    limit: Option<LimitKind>,
    base: Option<Spread>,
    new: Option<Spread>,
    limits: &Limits,
) -> bool {
    let Some(kind) = limit else { return false };
    match (class, base, new) {
        (Class::Missing, _, _) => true,
        (Class::Worse, Some(b), Some(n)) => {
            // Worse means down for throughput and up for the others; compare the size.
            change_pct(b.median, n.median).abs() > limits.pct(kind)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: f64) -> Option<Spread> {
        Some(Spread::one(v))
    }

    fn range(median: f64, min: f64, max: f64) -> Option<Spread> {
        Some(Spread {
            median,
            min,
            max,
            n: 3,
        })
    }

    #[test]
    fn single_runs_are_within_noise_inside_five_percent_or_the_resolution() {
        let c = |b, n, better, unit| classify(s(b), s(n), better, unit).unwrap();
        assert_eq!(c(100.0, 104.0, Better::Higher, "ops/s"), Class::WithinNoise);
        assert_eq!(c(100.0, 94.0, Better::Higher, "ops/s"), Class::Worse);
        assert_eq!(c(100.0, 106.0, Better::Higher, "ops/s"), Class::Better);
        assert_eq!(c(10.0, 12.0, Better::Lower, "ms"), Class::Worse);
        assert_eq!(
            c(2.0, 2.4, Better::Lower, "ms"),
            Class::WithinNoise,
            "under 0.5 ms"
        );
        assert_eq!(
            c(0.4, 0.5, Better::Lower, "s"),
            Class::WithinNoise,
            "one poll apart"
        );
        assert_eq!(c(0.4, 0.9, Better::Lower, "s"), Class::Worse);
        assert_eq!(
            c(0.0, 2.0, Better::Lower, ""),
            Class::Worse,
            "lost writes appear"
        );
    }

    #[test]
    fn repeats_are_within_noise_when_the_ranges_overlap() {
        let c = |b, n| classify(b, n, Better::Lower, "ms").unwrap();
        // Medians 20 % apart, but the ranges meet.
        assert_eq!(
            c(range(10.0, 8.0, 13.0), range(12.0, 12.5, 15.0)),
            Class::WithinNoise
        );
        assert_eq!(
            c(range(10.0, 8.0, 11.0), range(12.0, 11.5, 15.0)),
            Class::Worse
        );
        assert_eq!(
            c(range(12.0, 11.5, 15.0), range(10.0, 8.0, 11.0)),
            Class::Better
        );
        // A single run on one side: the point must fall in the other's range.
        assert_eq!(c(range(10.0, 8.0, 11.0), s(10.9)), Class::WithinNoise);
    }

    #[test]
    fn a_figure_on_one_side_only() {
        assert_eq!(
            classify(s(1.0), None, Better::Lower, "s"),
            Some(Class::Missing)
        );
        assert_eq!(classify(None, s(1.0), Better::Lower, "s"), Some(Class::New));
        assert_eq!(classify(None, None, Better::Lower, "s"), None);
    }

    #[test]
    fn limits_are_crossed_only_by_worse_changes_past_them() {
        let l = Limits::default();
        let p99 = Some(LimitKind::P99);
        let cross = |b: f64, n: f64, kind: Option<LimitKind>, better| {
            let unit = if kind == Some(LimitKind::Recovery) {
                "s"
            } else {
                "ms"
            };
            let class = classify(s(b), s(n), better, unit).unwrap();
            crosses(class, kind, s(b), s(n), &l)
        };
        assert!(
            !cross(100.0, 109.0, p99, Better::Lower),
            "+9 % is within 10 %"
        );
        assert!(cross(100.0, 111.0, p99, Better::Lower), "+11 %");
        assert!(
            !cross(100.0, 50.0, p99, Better::Lower),
            "better never crosses"
        );
        assert!(
            !cross(100.0, 200.0, None, Better::Lower),
            "no limit on this figure"
        );
        let tps = Some(LimitKind::Tps);
        assert!(!cross(100.0, 95.5, tps, Better::Higher), "−4.5 % is noise");
        assert!(cross(100.0, 90.0, tps, Better::Higher), "−10 %");
        assert!(!cross(100.0, 120.0, tps, Better::Higher));
        let rec = Some(LimitKind::Recovery);
        assert!(cross(1.0, 1.3, rec, Better::Lower), "+30 % > 20 %");
        assert!(!cross(1.0, 1.15, rec, Better::Lower), "+15 %, and one poll");
        assert!(
            crosses(Class::Missing, rec, s(1.0), None, &l),
            "a recovery that never came fails closed"
        );
        // Repeats whose ranges overlap never cross, however far the medians are apart.
        let (b, n) = (range(10.0, 5.0, 30.0), range(20.0, 9.0, 40.0));
        let class = classify(b, n, Better::Lower, "ms").unwrap();
        assert!(!crosses(class, p99, b, n, &l));
    }

    #[test]
    fn change_from_zero() {
        assert_eq!(change_pct(0.0, 0.0), 0.0);
        assert_eq!(change_pct(0.0, 1.0), f64::INFINITY);
        assert_eq!(change_pct(10.0, 5.0), -50.0);
    }
}
