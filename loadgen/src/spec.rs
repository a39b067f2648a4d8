//! [`LoadSpec`]: what a load is, as one value. A scenario file (`[load]`, `duration`,
//! `[thresholds]`) or `raftdrill load`'s flags build it once; it then travels whole: into
//! [`crate::LoadConfig`] for the engine, into `summary.json`, and as JSON to a load generator
//! on another machine, which runs its [`LoadSpec::share`].

use std::time::Duration;

use raftdrill_wire::Consistency;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::keys::Distribution;
use crate::plan::{LoadModel, Plan};
use crate::thresholds::Thresholds;
use crate::workload::{WorkloadKind, WorkloadSpec};

/// Everything that says what a load is; where it runs and against what (endpoints, seed,
/// files) is [`crate::LoadConfig`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSpec {
    /// YCSB workload.
    pub workload: WorkloadKind,
    /// Key space size.
    pub keys: u64,
    /// Overrides the workload's key distribution.
    pub distribution: Option<Distribution>,
    /// Bytes per value.
    pub value_size: usize,
    /// Open loop (a rate and the pool in flight) or closed loop (users and think time).
    pub model: LoadModel,
    /// How the level changes over the run (constant in scenario files; `raftdrill load` can
    /// ramp or step).
    pub plan: Plan,
    /// Length of the run, warmup included (a steps plan may end it sooner).
    pub duration: Duration,
    /// Leading part of the run whose figures are not judged (snapshots still cover it).
    pub warmup: Duration,
    /// Read consistency.
    pub consistency: Consistency,
    /// Per-request timeout, retries on other endpoints included.
    pub timeout: Duration,
    /// Record every operation to `history.jsonl` (the linearizability check reads it).
    pub history: bool,
    /// Goose users (they write goose's report) or plain tasks.
    pub engine: Engine,
    /// The two-level thresholds the run is judged by.
    pub thresholds: Thresholds,
}

/// A load that cannot be shared among generators.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{users} users cannot be shared by {generators} load hosts (at least one each)")]
pub struct ShareError {
    /// The load's users.
    pub users: usize,
    /// The generators asked to share them.
    pub generators: usize,
}

impl LoadSpec {
    /// `workload` at `model` for `duration`, with the defaults: 10 000 keys, the workload's
    /// distribution, 256-byte values, constant level, no warmup, linearizable reads, 2 s
    /// timeout, no history, goose, the seed's thresholds.
    pub fn new(workload: WorkloadKind, model: LoadModel, duration: Duration) -> Self {
        Self {
            workload,
            keys: 10_000,
            distribution: None,
            value_size: 256,
            model,
            plan: Plan::Constant,
            duration,
            warmup: Duration::ZERO,
            consistency: Consistency::Linearizable,
            timeout: Duration::from_secs(2),
            history: false,
            engine: Engine::Goose,
            thresholds: Thresholds::default(),
        }
    }

    /// The operation generator's input: this load's workload with `seed`.
    pub fn workload_spec(&self, seed: u64) -> WorkloadSpec {
        WorkloadSpec {
            kind: self.workload,
            keys: self.keys,
            distribution: self.distribution,
            value_size: self.value_size,
            consistency: self.consistency,
            seed,
        }
    }

    /// The distribution in force: the override, else the workload's own.
    pub fn distribution(&self) -> Distribution {
        self.distribution
            .unwrap_or_else(|| self.workload.default_distribution())
    }

    /// Generator `g`'s part of this load run by `n` generators: rate / n with the pool in
    /// flight split alike (rounded up), or the users split as evenly as whole users allow
    /// (the first `users % n` get one more); a steps plan's levels shrink in proportion.
    pub fn share(&self, g: usize, n: usize) -> Result<LoadSpec, ShareError> {
        let (model, fraction) = match &self.model {
            LoadModel::Open {
                rate,
                max_in_flight,
            } => (
                LoadModel::Open {
                    rate: rate / n as f64,
                    max_in_flight: max_in_flight.div_ceil(n),
                },
                1.0 / n as f64,
            ),
            LoadModel::Closed { users, think } => {
                let u = users / n + usize::from(g < users % n);
                if u == 0 {
                    return Err(ShareError {
                        users: *users,
                        generators: n,
                    });
                }
                (
                    LoadModel::closed(u, *think),
                    u as f64 / (*users).max(1) as f64,
                )
            }
        };
        Ok(LoadSpec {
            model,
            plan: self.plan.scaled(fraction),
            ..self.clone()
        })
    }

    /// The seed of generator `g` of a run seeded `seed`: its own, so that no two generators
    /// write the same values.
    pub fn generator_seed(seed: u64, g: usize) -> u64 {
        seed.wrapping_mul(1_000_003).wrapping_add(g as u64 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(users: usize) -> LoadSpec {
        LoadSpec::new(
            WorkloadKind::A,
            LoadModel::closed(users, Some(Duration::from_millis(5))),
            Duration::from_secs(10),
        )
    }

    #[test]
    fn an_open_loop_is_shared_by_rate_and_pool() {
        let spec = LoadSpec::new(
            WorkloadKind::B,
            LoadModel::Open {
                rate: 300.0,
                max_in_flight: 150,
            },
            Duration::from_secs(10),
        );
        let part = spec.share(1, 4).unwrap();
        assert_eq!(
            part.model,
            LoadModel::Open {
                rate: 75.0,
                max_in_flight: 38
            }
        );
        assert_eq!(
            LoadSpec {
                model: spec.model.clone(),
                ..part
            },
            spec,
            "nothing else changes"
        );
    }

    #[test]
    fn users_are_shared_as_whole_users() {
        let users = |g, n| closed(5).share(g, n).map(|s| s.model.users());
        assert_eq!(
            (users(0, 2), users(1, 2)),
            (Ok(Some(3)), Ok(Some(2))),
            "the first gets the odd one"
        );
        assert_eq!(
            closed(1).share(1, 2),
            Err(ShareError {
                users: 1,
                generators: 2
            })
        );
        assert_eq!(
            closed(1).share(1, 2).unwrap_err().to_string(),
            "1 users cannot be shared by 2 load hosts (at least one each)"
        );
    }

    #[test]
    fn a_steps_plan_shrinks_with_the_share() {
        let mut spec = LoadSpec::new(
            WorkloadKind::A,
            LoadModel::open(100.0),
            Duration::from_secs(20),
        );
        spec.plan = Plan::parse_steps("100@10s,200@10s").unwrap();
        assert_eq!(
            spec.share(0, 2).unwrap().plan,
            Plan::parse_steps("50@10s,100@10s").unwrap()
        );
    }

    #[test]
    fn a_spec_travels_as_json_unchanged() {
        let mut spec = closed(3);
        spec.distribution = Some(Distribution::Uniform);
        spec.plan = Plan::Ramp {
            over: Duration::from_millis(1500),
        };
        spec.warmup = Duration::from_nanos(1_333_333_333);
        spec.thresholds = Thresholds::from_toml(
            toml::from_str("p50 = { warn = \"2ms\" }\nsuccess_rate = { break = \"90%\" }").unwrap(),
        )
        .unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<LoadSpec>(&json).unwrap(), spec);
        let open = LoadSpec::new(WorkloadKind::W, LoadModel::open(1.0 / 3.0), spec.duration);
        let json = serde_json::to_string(&open.share(0, 7).unwrap()).unwrap();
        assert_eq!(
            serde_json::from_str::<LoadSpec>(&json).unwrap(),
            open.share(0, 7).unwrap()
        );
    }

    #[test]
    fn generators_get_seeds_of_their_own() {
        assert_eq!(LoadSpec::generator_seed(1, 0), 1_000_004);
        assert_ne!(
            LoadSpec::generator_seed(1, 0),
            LoadSpec::generator_seed(1, 1)
        );
    }
}
