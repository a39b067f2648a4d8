//! Why a step failed: one [`Failure`] per cause, in words for `capacity.json`, `capacity.md`,
//! the SVG and the live view, and the limits past which the backlog and late starts are named.
//! Whether a step failed is [`super::judge`]'s to say.

use std::fmt;

use loadgen::metrics::ErrorCounts;
use serde::{Deserialize, Serialize};

/// Above this share of late starts, in percent, a step that fell behind also names them: the
/// load generator did not offer the rate on schedule. Late starts alone fail no step: their
/// latency counts from the intended start (so the SLO terms see them), and a generator that
/// cannot offer the rate leaves a growing backlog. Alone they were the load generator's own
/// trouble: on a busy two-core machine a step at 50 or 100 ops/s, p99 under 250 ms, started
/// 2–3.4 % of its operations more than 10 ms late and failed for it.
pub const MAX_LATE_PCT: f64 = 1.0;

/// The fastest a step's backlog may grow, in percent of its rate per second, and still count as
/// keeping up. Below the service rate the backlog's slope is zero give or take the queue's own
/// fluctuations; see the measurements in the capacity notes (`results/baselines/capacity.md`).
pub const MAX_GROWTH_PCT: f64 = 2.0;

/// One reason a step failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// An SLO term was not met.
    Slo {
        /// The term, as the SLO spells it (`p99<800ms`).
        term: String,
        /// What the step measured (`None`: not observed, which fails the term).
        observed: Option<f64>,
        /// For a success or error-rate term: the step's errors by class.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errors: Option<ErrorCounts>,
    },
    /// The store fell behind: the backlog of operations offered and not yet completed grew
    /// through the measured window.
    Behind {
        /// How fast, in percent of the rate per second.
        growth_pct: f64,
        /// Operations completed per second in the window.
        achieved_rate: f64,
    },
    /// Too many operations started late while the backlog grew: the load generator did not
    /// offer the rate on schedule (a cause beside [`Failure::Behind`], never alone).
    Late {
        /// Percent of operations.
        late_pct: f64,
    },
    /// The rate is within [`MAX_GROWTH_PCT`] of the service rate a step that fell behind
    /// measured: the backlog term could not have told it from a rate that far above it.
    NoHeadroom {
        /// The service rate, ops/s.
        service_rate: f64,
        /// The highest rate with headroom, ops/s.
        limit: f64,
    },
    /// The log had not drained when the settle timeout ran out after the step, so no later step
    /// could start clean.
    NotDrained {
        /// The settle timeout, s.
        settle_timeout_s: f64,
        /// Entries the leader had not applied yet, when known.
        backlog: Option<u64>,
    },
}

impl Failure {
    /// A few words, for the SVG's labels and the live view.
    pub fn label(&self) -> String {
        match self {
            Failure::Slo {
                term, observed: v, ..
            } => match v {
                Some(v) => format!("{} {}", term_metric(term), short(*v)),
                None => format!("{term}: not observed"),
            },
            Failure::Behind { growth_pct, .. } => format!("behind +{growth_pct:.0}%/s"),
            Failure::Late { late_pct } => format!("late {late_pct:.1}%"),
            Failure::NoHeadroom { service_rate, .. } => {
                format!("no headroom (service {service_rate:.0}/s)")
            }
            Failure::NotDrained { .. } => "not drained".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Slo {
                term,
                observed,
                errors,
            } => {
                match observed {
                    Some(v) => write!(f, "SLO term {term} not met (observed {})", short(*v))?,
                    None => write!(f, "SLO term {term} not met (not observed)")?,
                }
                match errors.map(|e| error_classes(&e)) {
                    Some(classes) if !classes.is_empty() => write!(f, "; errors: {classes}"),
                    _ => Ok(()),
                }
            }
            Failure::Behind {
                growth_pct,
                achieved_rate,
            } => write!(
                f,
                "fell behind: the backlog grew by {growth_pct:.1} % of the rate per second \
                 ({achieved_rate:.0} ops/s completed)"
            ),
            Failure::Late { late_pct } => write!(
                f,
                "{late_pct:.1} % of operations started late: the rate was not offered on schedule"
            ),
            Failure::NoHeadroom {
                service_rate,
                limit,
            } => write!(
                f,
                "no headroom: within {MAX_GROWTH_PCT:.0} % of the service rate of \
                 {service_rate:.0} ops/s that a step which fell behind measured (highest rate \
                 with headroom {limit:.0} ops/s)"
            ),
            Failure::NotDrained {
                settle_timeout_s,
                backlog,
            } => {
                write!(
                    f,
                    "the log did not drain within {settle_timeout_s:.0} s after the step"
                )?;
                match backlog {
                    Some(n) => write!(f, " ({n} entries not applied)"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The metric part of a term, `p99` of `p99<800ms`.
fn term_metric(term: &str) -> &str {
    term.split(['<', '>']).next().unwrap_or(term)
}

fn short(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `12 timeout, 3 no_leader`.
fn error_classes(e: &ErrorCounts) -> String {
    let parts = [
        (e.timeout, "timeout"),
        (e.connect, "connect"),
        (e.reset, "reset"),
        (e.no_leader, "no_leader"),
        (e.http_5xx, "5xx"),
        (e.http_4xx, "4xx"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}
