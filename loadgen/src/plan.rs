//! Load models and plans: how much load, and how it changes over the run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::parse_duration;

/// Closed or open loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadModel {
    /// Open loop: operations start at fixed intended times, `rate` per second, whether or not
    /// earlier ones have finished; at most `max_in_flight` run at once.
    Open {
        /// Operations per second (the peak for a ramp).
        rate: f64,
        /// Size of the worker pool, and so the bound on operations in flight.
        max_in_flight: usize,
    },
    /// Closed loop: `users` workers each run one operation after another.
    Closed {
        /// Number of workers (the peak for a ramp).
        users: usize,
        /// Pause after each operation.
        think: Option<Duration>,
    },
}

impl LoadModel {
    /// Open loop at `rate` ops/s, with the pool [`pool_for_rate`] sizes for it.
    pub fn open(rate: f64) -> Self {
        LoadModel::Open {
            rate,
            max_in_flight: pool_for_rate(rate),
        }
    }

    /// Closed loop with `users` workers.
    pub fn closed(users: usize, think: Option<Duration>) -> Self {
        LoadModel::Closed { users, think }
    }

    /// The rate of an open loop.
    pub fn rate(&self) -> Option<f64> {
        match self {
            LoadModel::Open { rate, .. } => Some(*rate),
            LoadModel::Closed { .. } => None,
        }
    }

    /// The users of a closed loop.
    pub fn users(&self) -> Option<usize> {
        match self {
            LoadModel::Closed { users, .. } => Some(*users),
            LoadModel::Open { .. } => None,
        }
    }

    /// The level: ops/s of an open loop, users of a closed one.
    pub fn level(&self) -> f64 {
        match self {
            LoadModel::Open { rate, .. } => *rate,
            LoadModel::Closed { users, .. } => *users as f64,
        }
    }

    /// `open` or `closed`.
    pub fn name(&self) -> &'static str {
        match self {
            LoadModel::Open { .. } => "open",
            LoadModel::Closed { .. } => "closed",
        }
    }
}

/// Size of the in-flight pool for an open-loop rate: half a second of arrivals, so a stall of
/// that long is absorbed without late starts, bounded for memory and for goose's start-up (it
/// builds one HTTP client per user before the first operation).
pub fn pool_for_rate(rate: f64) -> usize {
    ((rate * 0.5).ceil() as usize).clamp(16, 512)
}

/// How the level (rate or users) changes over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The model's level from start to end.
    #[default]
    Constant,
    /// Linear from 0 to the model's level over `over`, then hold.
    Ramp {
        /// Length of the ramp.
        over: Duration,
    },
    /// A sequence of levels, each held for its time; the run ends after the last.
    Steps(Vec<Step>),
}

/// One step of a [`Plan::Steps`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Rate (open loop) or users (closed loop) during the step.
    pub level: f64,
    /// How long the step lasts.
    pub hold: Duration,
}

/// A plan that cannot be understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// A step is not `LEVEL@DURATION`.
    #[error("bad step {0:?}: expected LEVEL@DURATION such as 100@10s")]
    BadStep(String),
    /// The steps list is empty.
    #[error("a steps plan needs at least one step")]
    NoSteps,
    /// A rate or user count is zero, negative or not a number.
    #[error("bad level {0}: expected a positive number")]
    BadLevel(String),
}

impl Plan {
    /// Parse a steps list such as `100@10s,200@10s,400@10s`.
    pub fn parse_steps(text: &str) -> Result<Plan, PlanError> {
        let mut steps = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (level, hold) = part
                .split_once('@')
                .ok_or_else(|| PlanError::BadStep(part.to_string()))?;
            let level: f64 = level
                .trim()
                .parse()
                .map_err(|_| PlanError::BadStep(part.to_string()))?;
            if !(level.is_finite() && level >= 0.0) {
                return Err(PlanError::BadLevel(level.to_string()));
            }
            let hold = parse_duration(hold).map_err(|_| PlanError::BadStep(part.to_string()))?;
            steps.push(Step { level, hold });
        }
        if steps.is_empty() {
            return Err(PlanError::NoSteps);
        }
        Ok(Plan::Steps(steps))
    }

    /// The highest level the plan reaches, given the model's level.
    pub fn peak(&self, model_level: f64) -> f64 {
        match self {
            Plan::Steps(steps) => steps.iter().map(|s| s.level).fold(0.0, f64::max),
            _ => model_level,
        }
    }

    /// `constant`, `ramp` or `steps`.
    pub fn name(&self) -> &'static str {
        match self {
            Plan::Constant => "constant",
            Plan::Ramp { .. } => "ramp",
            Plan::Steps(_) => "steps",
        }
    }

    /// The plan for `fraction` of the load: a steps plan's levels times `fraction` (the
    /// others follow the model's level, which the caller scales).
    pub fn scaled(&self, fraction: f64) -> Plan {
        match self {
            Plan::Steps(steps) => Plan::Steps(
                steps
                    .iter()
                    .map(|s| Step {
                        level: s.level * fraction,
                        hold: s.hold,
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// When the plan itself ends (steps only).
    pub fn length(&self) -> Option<Duration> {
        match self {
            Plan::Steps(steps) => Some(steps.iter().map(|s| s.hold).sum()),
            _ => None,
        }
    }

    /// The level at `t` after the start.
    pub fn level_at(&self, model_level: f64, t: Duration) -> f64 {
        match self {
            Plan::Constant => model_level,
            Plan::Ramp { over } => {
                if t >= *over || over.is_zero() {
                    model_level
                } else {
                    model_level * t.as_secs_f64() / over.as_secs_f64()
                }
            }
            Plan::Steps(steps) => {
                let mut begin = Duration::ZERO;
                for s in steps {
                    if t < begin + s.hold {
                        return s.level;
                    }
                    begin += s.hold;
                }
                0.0
            }
        }
    }

    /// Open loop: the intended start of operation `n` (from 0), as an offset from the start,
    /// when the cumulative number of operations is the integral of the rate. `None` when the
    /// plan has ended before it.
    pub fn intended_offset(&self, rate: f64, n: u64) -> Option<Duration> {
        let n = n as f64;
        let secs = match self {
            Plan::Constant => (rate > 0.0).then(|| n / rate)?,
            Plan::Ramp { over } => {
                if rate <= 0.0 {
                    return None;
                }
                let d = over.as_secs_f64();
                let during_ramp = rate * d / 2.0;
                if n < during_ramp {
                    (2.0 * n * d / rate).sqrt()
                } else {
                    d + (n - during_ramp) / rate
                }
            }
            Plan::Steps(steps) => {
                let mut begin = 0.0;
                let mut before = 0.0;
                let mut found = None;
                for s in steps {
                    let hold = s.hold.as_secs_f64();
                    let in_step = s.level * hold;
                    if s.level > 0.0 && n < before + in_step {
                        found = Some(begin + (n - before) / s.level);
                        break;
                    }
                    before += in_step;
                    begin += hold;
                }
                found?
            }
        };
        Some(Duration::from_secs_f64(secs))
    }

    /// Closed loop: the number of active users at `t`. A ramp starts one user at once and
    /// adds the rest evenly.
    pub fn users_at(&self, users: usize, t: Duration) -> usize {
        match self {
            Plan::Ramp { over } if t < *over => {
                let share = t.as_secs_f64() / over.as_secs_f64();
                ((users as f64 * share).floor() as usize + 1).min(users)
            }
            _ => self.level_at(users as f64, t).round() as usize,
        }
    }

    /// Closed loop: the first time at or after `t` when user `i` is active, if any.
    pub fn active_from(&self, users: usize, i: usize, t: Duration) -> Option<Duration> {
        match self {
            Plan::Constant => (i < users).then_some(t),
            Plan::Ramp { over } => {
                if i >= users {
                    return None;
                }
                let at = over.mul_f64(i as f64 / users as f64);
                Some(at.max(t))
            }
            Plan::Steps(steps) => {
                let mut begin = Duration::ZERO;
                for s in steps {
                    let end = begin + s.hold;
                    if end > t && (s.level.round() as usize) > i {
                        return Some(begin.max(t));
                    }
                    begin = end;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn parses_steps() {
        let plan = Plan::parse_steps("100@10s, 200@10s,400@500ms").unwrap();
        assert_eq!(
            plan,
            Plan::Steps(vec![
                Step {
                    level: 100.0,
                    hold: secs(10.0)
                },
                Step {
                    level: 200.0,
                    hold: secs(10.0)
                },
                Step {
                    level: 400.0,
                    hold: secs(0.5)
                },
            ])
        );
        assert_eq!(plan.peak(1.0), 400.0);
        assert_eq!(plan.length(), Some(secs(20.5)));
        assert!(matches!(
            Plan::parse_steps("100"),
            Err(PlanError::BadStep(_))
        ));
        assert!(matches!(
            Plan::parse_steps("x@1s"),
            Err(PlanError::BadStep(_))
        ));
        assert!(matches!(
            Plan::parse_steps("1@1q"),
            Err(PlanError::BadStep(_))
        ));
        assert_eq!(Plan::parse_steps(""), Err(PlanError::NoSteps));
    }

    #[test]
    fn constant_rate_offsets() {
        let p = Plan::Constant;
        assert_eq!(p.intended_offset(100.0, 0), Some(secs(0.0)));
        assert_eq!(p.intended_offset(100.0, 250), Some(secs(2.5)));
    }

    #[test]
    fn ramp_offsets_follow_the_integral() {
        // 0 → 100/s over 10 s: 500 ops during the ramp, then 100/s.
        let p = Plan::Ramp { over: secs(10.0) };
        let t = p.intended_offset(100.0, 125).unwrap().as_secs_f64();
        assert!((t - 5.0).abs() < 1e-9, "{t}"); // 100 t²/20 = 125 → t = 5
        let t = p.intended_offset(100.0, 600).unwrap().as_secs_f64();
        assert!((t - 11.0).abs() < 1e-9, "{t}");
    }

    #[test]
    fn step_offsets_and_end() {
        let p = Plan::parse_steps("10@1s,20@1s").unwrap();
        assert_eq!(p.intended_offset(0.0, 5), Some(secs(0.5)));
        assert_eq!(p.intended_offset(0.0, 10), Some(secs(1.0)));
        assert_eq!(p.intended_offset(0.0, 20), Some(secs(1.5)));
        assert_eq!(p.intended_offset(0.0, 30), None);
    }

    #[test]
    fn closed_loop_users() {
        let ramp = Plan::Ramp { over: secs(10.0) };
        assert_eq!(ramp.users_at(10, secs(0.0)), 1);
        assert_eq!(ramp.users_at(10, secs(5.0)), 6);
        assert_eq!(ramp.users_at(10, secs(20.0)), 10);
        assert_eq!(ramp.active_from(10, 5, secs(0.0)), Some(secs(5.0)));
        let steps = Plan::parse_steps("2@1s,4@1s,1@1s").unwrap();
        assert_eq!(steps.users_at(4, secs(1.5)), 4);
        assert_eq!(steps.active_from(4, 3, secs(0.0)), Some(secs(1.0)));
        assert_eq!(steps.active_from(4, 3, secs(2.5)), None);
        assert_eq!(steps.active_from(4, 0, secs(2.5)), Some(secs(2.5)));
    }
}
