//! Recovery times of one fault, computed from what the run observed.
//!
//! - `leader_elected_after_s`: when the fault hit the leader, the time until another node is
//!   seen reporting itself leader;
//! - `first_success_after_s`: the time until the first acknowledged write completes;
//! - `tps_90pct_after_s`: the time until a one-second window that lies wholly after the fault
//!   carries at least 90 % of the mean TPS of the 10 s before it.
//!
//! All times are seconds since the start of the run.

use serde::Serialize;

/// The observations recovery is measured from.
#[derive(Debug, Clone, Copy)]
pub struct Observations<'a> {
    /// Leader as the poller saw it, in time order: (t, leader).
    pub leaders: &'a [(f64, Option<u64>)],
    /// Completion times of acknowledged writes, in time order.
    pub acked_at: &'a [f64],
    /// One-second windows: (end of window, ops completed per second), in time order.
    pub tps: &'a [(f64, f64)],
}

/// Recovery figures of one fault (`None`: not applicable, or never reached during the run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Recovery {
    /// Time to a new leader, when the leader was hit.
    pub leader_elected_after_s: Option<f64>,
    /// Time to the first acknowledged write.
    pub first_success_after_s: Option<f64>,
    /// Time to a 1 s window at ≥ 90 % of the TPS before the fault.
    pub tps_90pct_after_s: Option<f64>,
}

/// Slack for the instant a fault fired versus the window edges, which lie on whole seconds.
const EDGE_SLACK: f64 = 0.05;

/// Measures recovery from a fault fired at `fired_at` that hit the leader `old_leader` (if any).
pub fn measure(fired_at: f64, old_leader: Option<u64>, obs: Observations<'_>) -> Recovery {
    let leader_elected_after_s = old_leader.and_then(|old| {
        obs.leaders
            .iter()
            .find(|(t, l)| *t >= fired_at && l.is_some_and(|l| l != old))
            .map(|(t, _)| t - fired_at)
    });
    let first_success_after_s = obs
        .acked_at
        .iter()
        .find(|t| **t >= fired_at)
        .map(|t| t - fired_at);
    let before: Vec<f64> = obs
        .tps
        .iter()
        .filter(|(end, _)| *end <= fired_at + EDGE_SLACK && *end > fired_at - 10.0)
        .map(|(_, tps)| *tps)
        .collect();
    let tps_90pct_after_s = if before.is_empty() {
        None
    } else {
        let baseline = before.iter().sum::<f64>() / before.len() as f64;
        obs.tps
            .iter()
            .find(|(end, tps)| end - 1.0 >= fired_at - EDGE_SLACK && *tps >= 0.9 * baseline)
            .map(|(end, _)| end - fired_at)
    };
    Recovery {
        leader_elected_after_s,
        first_success_after_s,
        tps_90pct_after_s,
    }
}

impl Recovery {
    /// The figures that exceed `limit` (by name), for the `recovery_within` check.
    pub fn over(&self, limit: f64) -> Vec<&'static str> {
        [
            ("leader_elected_after_s", self.leader_elected_after_s),
            ("first_success_after_s", self.first_success_after_s),
            ("tps_90pct_after_s", self.tps_90pct_after_s),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| v > limit))
        .map(|(n, _)| n)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(tps: &[f64]) -> Vec<(f64, f64)> {
        tps.iter()
            .enumerate()
            .map(|(i, t)| ((i + 1) as f64, *t))
            .collect()
    }

    #[test]
    fn a_leader_kill_is_measured_on_all_three_figures() {
        let leaders = [
            (9.0, Some(1)),
            (10.1, Some(1)),
            (10.2, None),
            (10.45, Some(2)),
            (11.0, Some(2)),
        ];
        let acked = [9.9, 10.0, 10.7, 10.8];
        // 100 tps for ten seconds, a dip, then back.
        let mut tps = vec![100.0; 10];
        tps.extend([20.0, 60.0, 95.0, 100.0]);
        let tps = windows(&tps);
        let r = measure(
            10.0,
            Some(1),
            Observations {
                leaders: &leaders,
                acked_at: &acked,
                tps: &tps,
            },
        );
        assert!((r.leader_elected_after_s.unwrap() - 0.45).abs() < 1e-9);
        assert!(
            (r.first_success_after_s.unwrap() - 0.0).abs() < 1e-9,
            "the ack at 10.0 counts"
        );
        assert_eq!(
            r.tps_90pct_after_s,
            Some(3.0),
            "window 12..13 is the first at ≥ 90"
        );
        assert_eq!(r.over(2.5), vec!["tps_90pct_after_s"]);
    }

    #[test]
    fn a_follower_fault_has_no_election_and_never_recovered_stays_none() {
        let tps = windows(&[50.0; 5]);
        let r = measure(
            2.0,
            None,
            Observations {
                leaders: &[(2.5, Some(3))],
                acked_at: &[],
                tps: &tps,
            },
        );
        assert_eq!(r.leader_elected_after_s, None);
        assert_eq!(r.first_success_after_s, None);
        assert_eq!(r.tps_90pct_after_s, Some(1.0));
        let dead = windows(&[50.0, 50.0, 0.0, 0.0]);
        let r = measure(
            2.0,
            None,
            Observations {
                leaders: &[],
                acked_at: &[],
                tps: &dead,
            },
        );
        assert_eq!(r.tps_90pct_after_s, None);
    }

    #[test]
    fn a_fault_in_the_first_second_has_no_baseline() {
        let tps = windows(&[50.0; 5]);
        let r = measure(
            0.5,
            None,
            Observations {
                leaders: &[],
                acked_at: &[],
                tps: &tps,
            },
        );
        assert_eq!(r.tps_90pct_after_s, None);
    }
}
