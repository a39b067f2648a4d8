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

use crate::report::figures::{Better, Figure, LimitKind, Spread};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Which way a `--limit` was written: `+` (may rise by) or `-` (may fall by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Way {
    /// `+N%`.
    Up,
    /// `-N%`.
    Down,
}

/// One `--limit FIGURE=+N%`: how far the figures it names may get worse, in percent of BASE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Limit {
    /// A figure's name (`p50_ms`, `busiest_node_cpu_pct`), the same without its unit
    /// (`p50`, `busiest_node_cpu`), or a pattern where `*` stands for any run of characters
    /// (`recovery.*.first_success_after_s`, `p99.*`).
    pub figure: String,
    /// Percent of the base value.
    pub pct: f64,
    /// The sign as written; none when the limit was written without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub way: Option<Way>,
}

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected FIGURE=+N% (say p50=+20% or tps=-5%), got {s:?}");
        let (figure, v) = s.split_once('=').ok_or_else(bad)?;
        let figure = figure.trim();
        if figure.is_empty() || figure.contains(char::is_whitespace) {
            return Err(bad());
        }
        let v = v.trim();
        let (way, v) = match v.as_bytes().first() {
            Some(b'+') => (Some(Way::Up), &v[1..]),
            Some(b'-') => (Some(Way::Down), &v[1..]),
            _ => (None, v),
        };
        let pct = loadgen::units::percent_value(v)
            .filter(|p| *p >= 0.0 && p.is_finite())
            .ok_or_else(bad)?;
        Ok(Limit {
            figure: figure.into(),
            pct,
            way,
        })
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.way {
            Some(Way::Up) => "+",
            Some(Way::Down) => "-",
            None => "",
        };
        write!(f, "{}={sign}{}%", self.figure, self.pct)
    }
}

impl Limit {
    /// Whether this limit names the figure `name`.
    pub fn matches(&self, name: &str) -> bool {
        glob(&self.figure, name) || glob(&self.figure, &without_units(name))
    }
}

/// `name` with the unit at the end of each dot-separated part left out: `p99_ms.read` is
/// `p99.read`, `busiest_node_cpu_pct` is `busiest_node_cpu`.
fn without_units(name: &str) -> String {
    name.split('.')
        .map(|part| {
            ["_ms", "_pct", "_s"]
                .iter()
                .find_map(|u| part.strip_suffix(u))
                .unwrap_or(part)
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The `compare` limits, in percent: the three defaults, and the `--limit`s over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Limits {
    /// `--max-p99-increase`: `p99_ms` unless a `--limit` names it.
    pub max_p99_increase_pct: f64,
    /// `--max-tps-drop`: `tps` (and a capacity) unless a `--limit` names it.
    pub max_tps_drop_pct: f64,
    /// `--max-recovery-increase`: every recovery figure a `--limit` does not name.
    pub max_recovery_increase_pct: f64,
    /// The `--limit`s, in the order given; where two name a figure, the later one holds.
    #[serde(default)]
    pub figures: Vec<Limit>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_p99_increase_pct: 10.0,
            max_tps_drop_pct: 5.0,
            max_recovery_increase_pct: 20.0,
            figures: Vec::new(),
        }
    }
}

impl Limits {
    /// The limit of a default kind, in percent of the base value.
    pub fn pct(&self, kind: LimitKind) -> f64 {
        match kind {
            LimitKind::P99 => self.max_p99_increase_pct,
            LimitKind::Tps => self.max_tps_drop_pct,
            LimitKind::Recovery => self.max_recovery_increase_pct,
        }
    }

    /// The limit on figure `f` in percent: the last `--limit` that names it, else its default.
    pub fn of(&self, f: &Figure) -> Option<f64> {
        match self.figures.iter().rev().find(|l| l.matches(&f.name)) {
            Some(l) => Some(l.pct),
            None => f.limit.map(|k| self.pct(k)),
        }
    }

    /// Each `--limit` must name a figure of `figures` (a typo gates nothing, so it is an
    /// error), and its sign, when written, must be the way each figure it names gets worse.
    pub fn check<'a>(
        &self,
        figures: impl Iterator<Item = &'a Figure> + Clone,
    ) -> Result<(), String> {
        for l in &self.figures {
            let named: Vec<&Figure> = figures.clone().filter(|f| l.matches(&f.name)).collect();
            if named.is_empty() {
                let mut all: Vec<&str> = figures.clone().map(|f| f.name.as_str()).collect();
                all.sort_unstable();
                all.dedup();
                return Err(format!(
                    "--limit {l}: no figure of these folders is named so; they have {}",
                    all.join(", ")
                ));
            }
            for f in named {
                let worse = match f.better {
                    Better::Lower => Way::Up,
                    Better::Higher => Way::Down,
                };
                if l.way.is_some_and(|w| w != worse) {
                    let (word, sign) = match worse {
                        Way::Up => ("rises", "+"),
                        Way::Down => ("falls", "-"),
                    };
                    return Err(format!(
                        "--limit {l}: {} gets worse when it {word}; write {}={sign}{}%",
                        f.name, l.figure, l.pct
                    ));
                }
            }
        }
        Ok(())
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

/// Whether a figure of this class and change crosses its limit (`limit_pct`, none when no
/// limit watches it).
pub fn crosses(
    class: Class,
    limit_pct: Option<f64>,
    base: Option<Spread>,
    new: Option<Spread>,
) -> bool {
    let Some(pct) = limit_pct else { return false };
    match (class, base, new) {
        (Class::Missing, _, _) => true,
        (Class::Worse, Some(b), Some(n)) => {
            // Worse means down for throughput and up for the others; compare the size.
            change_pct(b.median, n.median).abs() > pct
        }
        _ => false,
    }
}

/// Whether a latency is held at the request timeout (`timeout_ms`) in every run of both sides:
/// past it a request is given up, so such a figure cannot show a change either way.
pub fn saturated(
    base: Option<Spread>,
    new: Option<Spread>,
    unit: &str,
    timeout_ms: Option<f64>,
) -> bool {
    let (Some(b), Some(n), Some(t)) = (base, new, timeout_ms) else {
        return false;
    };
    unit == "ms" && t > 0.0 && b.min >= t * SATURATED && n.min >= t * SATURATED
}

/// The share of the request timeout from which a latency counts as held there: a request
/// given up at the timeout is recorded a little past it or, rounded, a hair below.
pub const SATURATED: f64 = 0.98;

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
            crosses(class, kind.map(|k| l.pct(k)), s(b), s(n))
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
            crosses(Class::Missing, rec.map(|k| l.pct(k)), s(1.0), None),
            "a recovery that never came fails closed"
        );
        // Repeats whose ranges overlap never cross, however far the medians are apart.
        let (b, n) = (range(10.0, 5.0, 30.0), range(20.0, 9.0, 40.0));
        let class = classify(b, n, Better::Lower, "ms").unwrap();
        assert!(!crosses(class, p99.map(|k| l.pct(k)), b, n));
    }

    #[test]
    fn change_from_zero() {
        assert_eq!(change_pct(0.0, 0.0), 0.0);
        assert_eq!(change_pct(0.0, 1.0), f64::INFINITY);
        assert_eq!(change_pct(10.0, 5.0), -50.0);
    }

    #[test]
    fn a_limit_is_read_with_or_without_its_sign() {
        let l: Limit = "p50=+20%".parse().unwrap();
        assert_eq!(
            (l.figure.as_str(), l.pct, l.way),
            ("p50", 20.0, Some(Way::Up))
        );
        let l: Limit = "tps=-5".parse().unwrap();
        assert_eq!((l.pct, l.way), (5.0, Some(Way::Down)));
        let l: Limit = "recovery.*=30%".parse().unwrap();
        assert_eq!((l.pct, l.way), (30.0, None));
        for bad in [
            "p50", "=5%", "p50=", "p50=x", "p50=+-5%", "p 50=5%", "p50=inf",
        ] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_limit_names_figures_by_name_without_units_or_by_pattern() {
        let m = |pattern: &str, name: &str| {
            format!("{pattern}=5%")
                .parse::<Limit>()
                .unwrap()
                .matches(name)
        };
        assert!(m("p50_ms", "p50_ms") && m("p50", "p50_ms"));
        assert!(!m("p50", "p500_ms") && !m("p5", "p50_ms") && !m("p50", "p50_ms.read"));
        assert!(m("p99.*", "p99_ms.read") && !m("p99.*", "p99_ms"));
        assert!(m("busiest_node_cpu", "busiest_node_cpu_pct"));
        assert!(m("recovery.*", "recovery.0.kill.first_success_after_s"));
        assert!(m(
            "recovery.*.first_success_after",
            "recovery.3.pause.first_success_after_s"
        ));
        assert!(!m(
            "recovery.*.first_success_after",
            "recovery.0.kill.leader_elected_after_s"
        ));
        assert!(m("*", "tps") && m("t*s", "tps") && !m("t*x", "tps"));
    }

    fn fig(name: &str, better: Better, limit: Option<LimitKind>) -> Figure {
        Figure::new(name, "ms", better, limit, Some(1.0))
    }

    #[test]
    fn the_last_limit_that_names_a_figure_holds_and_defaults_fill_the_rest() {
        let mut l = Limits {
            figures: vec!["p*=+50%".parse().unwrap(), "p50=+20%".parse().unwrap()],
            ..Limits::default()
        };
        let p50 = fig("p50_ms", Better::Lower, None);
        let p99 = fig("p99_ms", Better::Lower, Some(LimitKind::P99));
        let max = fig("max_ms", Better::Lower, None);
        let tps = fig("tps", Better::Higher, Some(LimitKind::Tps));
        assert_eq!(l.of(&p50), Some(20.0));
        assert_eq!(l.of(&p99), Some(50.0), "a --limit overrides a default");
        assert_eq!(l.of(&max), None);
        assert_eq!(l.of(&tps), Some(5.0));
        let all = [p50, p99, max, tps];
        assert!(l.check(all.iter()).is_ok());
        l.figures = vec!["p55=+20%".parse().unwrap()];
        let e = l.check(all.iter()).unwrap_err();
        assert!(
            e.contains("no figure") && e.contains("p50_ms, p99_ms"),
            "{e}"
        );
        l.figures = vec!["tps=+5%".parse().unwrap()];
        let e = l.check(all.iter()).unwrap_err();
        assert!(e.contains("gets worse when it falls; write tps=-5%"), "{e}");
    }

    #[test]
    fn a_latency_held_at_the_timeout_on_both_sides_is_saturated() {
        let t = Some(2000.0);
        assert!(saturated(s(2001.0), s(1990.0), "ms", t));
        assert!(
            !saturated(s(2001.0), s(900.0), "ms", t),
            "it fell off the timeout"
        );
        assert!(
            !saturated(s(900.0), s(2001.0), "ms", t),
            "it rose to the timeout"
        );
        assert!(
            !saturated(s(2001.0), s(2001.0), "ms", None),
            "timeout unknown"
        );
        assert!(!saturated(s(2001.0), s(2001.0), "s", t));
        assert!(
            !saturated(range(2001.0, 100.0, 2005.0), s(2001.0), "ms", t),
            "a repeat with a run below the timeout can show a change"
        );
    }
}
