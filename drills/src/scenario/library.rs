//! The built-in scenario library: `drills/scenarios/*.toml`, embedded in the binary.

use super::{Scenario, ScenarioError};

/// Name and text of every built-in scenario, in the order `raftdrill scenarios` lists them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("baseline", include_str!("../../scenarios/baseline.toml")),
    (
        "leader-kill",
        include_str!("../../scenarios/leader-kill.toml"),
    ),
    (
        "follower-kill",
        include_str!("../../scenarios/follower-kill.toml"),
    ),
    (
        "leader-pause",
        include_str!("../../scenarios/leader-pause.toml"),
    ),
    (
        "isolate-leader",
        include_str!("../../scenarios/isolate-leader.toml"),
    ),
    (
        "minority-partition",
        include_str!("../../scenarios/minority-partition.toml"),
    ),
    (
        "one-way-partition",
        include_str!("../../scenarios/one-way-partition.toml"),
    ),
    ("slow-link", include_str!("../../scenarios/slow-link.toml")),
    ("bandwidth", include_str!("../../scenarios/bandwidth.toml")),
    (
        "rolling-restart",
        include_str!("../../scenarios/rolling-restart.toml"),
    ),
    (
        "full-cluster-crash",
        include_str!("../../scenarios/full-cluster-crash.toml"),
    ),
    (
        "membership-churn",
        include_str!("../../scenarios/membership-churn.toml"),
    ),
    (
        "wipe-follower",
        include_str!("../../scenarios/wipe-follower.toml"),
    ),
    (
        "disk-stall-leader",
        include_str!("../../scenarios/disk-stall-leader.toml"),
    ),
    (
        "slow-disk-follower",
        include_str!("../../scenarios/slow-disk-follower.toml"),
    ),
    (
        "power-loss-all",
        include_str!("../../scenarios/power-loss-all.toml"),
    ),
    (
        "limping-leader",
        include_str!("../../scenarios/limping-leader.toml"),
    ),
    (
        "power-loss-torn",
        include_str!("../../scenarios/power-loss-torn.toml"),
    ),
    (
        "corrupt-follower-log",
        include_str!("../../scenarios/corrupt-follower-log.toml"),
    ),
    (
        "lost-fsync-follower",
        include_str!("../../scenarios/lost-fsync-follower.toml"),
    ),
    (
        "slow-clock-leader",
        include_str!("../../scenarios/slow-clock-leader.toml"),
    ),
    (
        "lossy-follower",
        include_str!("../../scenarios/lossy-follower.toml"),
    ),
];

/// The scenario `raftdrill run` uses without a file.
pub const DEFAULT: &str = "leader-kill";

/// Parses the built-in scenario `name`, if there is one.
pub fn builtin(name: &str) -> Option<Result<Scenario, ScenarioError>> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Scenario::parse(text, &format!("builtin:{n}")))
}
