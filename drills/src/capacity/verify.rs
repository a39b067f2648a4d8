//! `--verify`: an independent cross-check of the answer. After the search, a closed-loop run
//! (users with no think time) on the same cluster drives the store as hard as it goes; its
//! throughput is the store's saturation, measured without any open-loop machinery. The answer
//! is reported as a fraction of it:
//!
//! - above saturation (beyond the noise of two measurements) is impossible: a store cannot
//!   sustain an open-loop rate it cannot reach when pushed;
//! - far below it while the latency at the answer sat far inside the SLO is suspicious: the
//!   search stopped for some reason other than the SLO, and the steps' reasons say which.

use std::fmt::Write as _;

use loadgen::LoadModel;
use loadgen::output::TimelineRow;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::CapacityOptions;
use super::step::{flow, run_load};
use crate::drill::DrillError;
use crate::nodes::Nodes;

/// An answer above saturation by more than this share is impossible rather than noise: two
/// runs a minute apart on a shared two-core machine differ by a few percent.
pub const ABOVE_TOLERANCE: f64 = 0.05;

/// An answer below this share of saturation is far below it.
pub const FAR_BELOW: f64 = 0.9;

/// A p99 under this share of the SLO's p99 bound is far inside the SLO.
pub const FAR_INSIDE: f64 = 0.25;

/// What the closed-loop run measured, and what it says about the answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verification {
    /// Closed-loop users, no think time.
    pub users: usize,
    /// The measured window, s.
    pub window_s: f64,
    /// The saturation throughput: the median of the window's once-a-second ok completion rates.
    /// The store's own rate, as the search's steps see it: a step that met a stall of the
    /// machine (another process's build, say) fails and is re-run, so the answer is a rate the
    /// store sustains when the machine lets it run; the mean would charge those stalls to the
    /// store and put saturation below what it sustains.
    pub saturation_rate: f64,
    /// Operations completed per second over the whole window (stalls included).
    pub mean_rate: f64,
    /// Successful operations per second in the window.
    pub ok_rate: f64,
    /// Latency at saturation, ms.
    pub p50_ms: f64,
    /// Latency at saturation, ms.
    pub p99_ms: f64,
    /// The answer's rate over the saturation rate; `None` without an answer.
    pub ratio: Option<f64>,
    /// `consistent`, `impossible` (above saturation), `suspicious` (far below it, far inside
    /// the SLO), or `unknown` (no answer or no saturation figure to compare).
    #[schemars(extend("enum" = ["consistent", "impossible", "suspicious", "unknown"]))]
    pub verdict: String,
    /// What the verdict means, in a sentence.
    pub note: String,
    /// When the closed loop started, seconds from the start of the search.
    #[serde(default)]
    pub started_s: f64,
    /// When it ended.
    #[serde(default)]
    pub ended_s: f64,
}

/// Runs the closed loop on the shared cluster and judges `answer` against it. `answer` is the
/// answer's rate and its p99; `p99_bound` the SLO's p99 bound, if any. Returns the run's
/// timeline rows too.
pub async fn verify(
    c: &Nodes,
    opts: &CapacityOptions,
    users: usize,
    answer: Option<(f64, f64)>,
    p99_bound: Option<f64>,
    dir: &std::path::Path,
    stop: CancellationToken,
) -> Result<(Verification, Vec<TimelineRow>), DrillError> {
    if let Some(p) = &opts.progress {
        p.send_modify(|p| {
            p.current_rate = None;
            p.verifying = Some(users);
            p.current = Default::default();
        });
    }
    let out = dir.join("verify");
    let report = run_load(c, opts, LoadModel::closed(users, None), &out, stop).await?;
    let end_s = (opts.step_warmup + opts.step_duration).as_secs_f64();
    let f = flow(&report.snapshots, None, end_s);
    let latency = report.latency();
    let mut v = Verification {
        users,
        window_s: opts.step_duration.as_secs_f64(),
        saturation_rate: f.median_ok_rate,
        mean_rate: f.achieved_rate,
        ok_rate: f.ok_rate,
        p50_ms: latency.p50,
        p99_ms: latency.p99,
        ..Verification::default()
    };
    assess(&mut v, answer, p99_bound);
    Ok((v, report.snapshots.iter().map(TimelineRow::from).collect()))
}

/// Sets the ratio, the verdict and the note.
pub fn assess(v: &mut Verification, answer: Option<(f64, f64)>, p99_bound: Option<f64>) {
    let Some((rate, p99)) = answer else {
        v.verdict = "unknown".into();
        v.note = "no answer to compare with saturation".into();
        return;
    };
    if v.saturation_rate <= 0.0 {
        v.verdict = "unknown".into();
        v.note = "the closed-loop run completed nothing: no saturation to compare with".into();
        return;
    }
    let ratio = rate / v.saturation_rate;
    v.ratio = Some(ratio);
    let mut note = format!(
        "the answer is {:.2}× the closed-loop saturation of {:.0} ops/s ({} users)",
        ratio, v.saturation_rate, v.users
    );
    let far_inside = p99_bound.is_some_and(|b| p99 < FAR_INSIDE * b);
    v.verdict = if ratio > 1.0 + ABOVE_TOLERANCE {
        let _ = write!(
            note,
            ": impossible, an open-loop rate above saturation cannot be sustained; one of the \
             two measurements is wrong (did the machine's load change between them?)"
        );
        "impossible"
    } else if ratio < FAR_BELOW && far_inside {
        let _ = write!(
            note,
            ": suspicious, far below saturation while the p99 at the answer ({p99:.0} ms) was \
             far inside the SLO; the failed steps' reasons say what stopped the search"
        );
        "suspicious"
    } else {
        "consistent"
    }
    .into();
    v.note = note;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sat(rate: f64) -> Verification {
        Verification {
            users: 32,
            saturation_rate: rate,
            ..Verification::default()
        }
    }

    #[test]
    fn an_answer_just_under_saturation_is_consistent() {
        let mut v = sat(460.0);
        assess(&mut v, Some((440.0, 60.0)), Some(800.0));
        assert_eq!(v.verdict, "consistent");
        assert!((v.ratio.unwrap() - 440.0 / 460.0).abs() < 1e-12);
        assert!(v.note.contains("0.96×"), "{}", v.note);
    }

    #[test]
    fn an_answer_above_saturation_is_impossible() {
        let mut v = sat(460.0);
        assess(&mut v, Some((500.0, 60.0)), Some(800.0));
        assert_eq!(v.verdict, "impossible");
        let mut v = sat(460.0);
        assess(&mut v, Some((470.0, 60.0)), Some(800.0));
        assert_eq!(v.verdict, "consistent", "within the noise of two runs");
    }

    /// The case: 365 ops/s against a saturation of 460 with a p99 of 54 ms under an
    /// 800 ms bound.
    #[test]
    fn far_below_and_far_inside_the_slo_is_suspicious() {
        let mut v = sat(460.0);
        assess(&mut v, Some((365.0, 54.0)), Some(800.0));
        assert_eq!(v.verdict, "suspicious");
        let mut v = sat(460.0);
        assess(&mut v, Some((365.0, 700.0)), Some(800.0));
        assert_eq!(
            v.verdict, "consistent",
            "the SLO's latency bound explains it"
        );
        let mut v = sat(460.0);
        assess(&mut v, Some((365.0, 54.0)), None);
        assert_eq!(
            v.verdict, "consistent",
            "no latency bound to be far inside of"
        );
    }

    #[test]
    fn nothing_to_compare_is_unknown() {
        let mut v = sat(460.0);
        assess(&mut v, None, Some(800.0));
        assert_eq!((v.verdict.as_str(), v.ratio), ("unknown", None));
        let mut v = sat(0.0);
        assess(&mut v, Some((100.0, 1.0)), Some(800.0));
        assert_eq!(v.verdict, "unknown");
    }
}
