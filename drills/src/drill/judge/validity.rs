//! Whether the run loaded the store as planned, where nothing else explains a shortfall: a run
//! that reached only part of its planned rate (the tool or the machine could not keep up) says
//! little through its thresholds and checks, so below the floor the verdict is inconclusive
//! (as etcd's robustness tests refuse a run under their minimum QPS).
//!
//! Every whole second after the warmup that no fault window touches is checked: a window runs
//! from a fault to its undo (or to the end of the load, when it was never undone during it),
//! plus the recovery limit after. Open loop: the operations whose intended start fell in the
//! second and that completed, whatever their outcome, against the plan's rate for it (the
//! scenario's `min_load_share`, 90 % by default). Closed loop: against `min_ops_per_s`, only
//! when the scenario sets one.

use std::time::Duration;

use loadgen::LoadModel;
use serde::Serialize;

use super::Inputs;
use super::RecoveryEntry;
use super::recovery::load_end;
use crate::scenario::DEFAULT_RECOVERY_WITHIN;

/// One second below the floor.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Shortfall {
    /// Its start, seconds from the start of the run.
    pub t_s: f64,
    /// Open loop: the share of the planned operations that completed; closed loop: ops/s.
    pub reached: f64,
}

/// The validity check of the load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Validity {
    /// The floor every fault-free second had to reach (`90% of the planned rate`, `50 ops/s`);
    /// `None` when no floor applies (closed loop without `min_ops_per_s`, or no load).
    pub floor: Option<String>,
    /// Fault-free seconds checked.
    pub seconds_checked: usize,
    /// The seconds below the floor, in time order.
    pub below: Vec<Shortfall>,
}

impl Validity {
    /// Why the run is not valid, when it is not.
    pub fn reason(&self) -> Option<String> {
        let floor = self.floor.as_deref()?;
        let worst = self
            .below
            .iter()
            .min_by(|a, b| a.reached.total_cmp(&b.reached))?;
        let reached = if floor.ends_with("ops/s") {
            format!("{:.0} ops/s", worst.reached)
        } else {
            format!("{:.0}% of it", worst.reached * 100.0)
        };
        Some(format!(
            "the load fell below its floor ({floor}) in {} of {} fault-free seconds, the lowest \
             at {:.0}s with {reached}: the figures say little about the store",
            self.below.len(),
            self.seconds_checked,
            worst.t_s
        ))
    }
}

/// Checks the fault-free seconds of the run against its floor.
pub(super) fn judge(i: &Inputs<'_>, recovery: &[RecoveryEntry]) -> Validity {
    let checks = &i.scenario.checks;
    let load = &i.scenario.load;
    let (floor, planned): (String, Box<dyn Fn(f64) -> f64>) =
        match (&load.model, checks.min_ops_per_s) {
            (LoadModel::Open { rate, .. }, _) => {
                let (rate, plan, share) = (*rate, load.plan.clone(), checks.min_load_share);
                (
                    format!("{:.0}% of the planned rate", share * 100.0),
                    Box::new(move |t| share * plan.level_at(rate, Duration::from_secs_f64(t))),
                )
            }
            (LoadModel::Closed { .. }, Some(min)) => {
                (format!("{min:.0} ops/s"), Box::new(move |_| min))
            }
            (LoadModel::Closed { .. }, None) => return Validity::default(),
        };
    let end = load_end(i);
    let windows = windows(i, recovery, end);
    let mut v = Validity {
        floor: Some(floor),
        ..Validity::default()
    };
    let mut s = load.warmup.as_secs_f64().ceil();
    while s + 1.0 <= end {
        let touched = windows.iter().any(|(a, b)| *a < s + 1.0 && *b > s);
        let need = planned(s + 0.5);
        if !touched && need > 0.0 {
            v.seconds_checked += 1;
            let done = count_in(i.done_intended, s, s + 1.0) as f64;
            if done < need {
                let reached = match load.model {
                    LoadModel::Open { .. } => done / (need / checks.min_load_share),
                    LoadModel::Closed { .. } => done,
                };
                v.below.push(Shortfall { t_s: s, reached });
            }
        }
        s += 1.0;
    }
    v
}

/// The windows in which a fault may explain a shortfall: from the fault to its undo (or the
/// end of the load), plus the recovery limit.
fn windows(i: &Inputs<'_>, recovery: &[RecoveryEntry], end: f64) -> Vec<(f64, f64)> {
    let settle = i
        .scenario
        .checks
        .recovery_within
        .unwrap_or(DEFAULT_RECOVERY_WITHIN)
        .as_secs_f64();
    let fired = recovery.iter().map(|r| r.fault);
    fired
        .map(|n| {
            let f = &i.faults[n];
            let until = f.healed_at_s.unwrap_or(f.at_s).min(end);
            (f.at_s.floor(), until + settle)
        })
        .collect()
}

/// How many of the sorted `times` lie in `[from, to)`.
fn count_in(times: &[f64], from: f64, to: f64) -> usize {
    times.partition_point(|t| *t < to) - times.partition_point(|t| *t < from)
}
