//! Recovery times of one fault, computed from what the run observed.
//!
//! - `leader_elected_after_s`: when the fault took the leader out of service, the time until a
//!   leader is seen in a later term than the one at the fault (another node, or the same one
//!   elected again), or the old leader is seen leading again from a process started after the
//!   fault: openraft restores a restarted node that held a committed vote for itself as leader
//!   in its old term, which is what a crash of the whole cluster often ends in;
//! - `first_success_after_s`: the time until the first acknowledged write **invoked after the
//!   fault** completes. A write already in flight when the fault fired can still be acknowledged
//!   afterwards (it was committed just before), which says nothing about recovery; counting it
//!   made recovery look faster than it was (a first success before the new leader);
//! - `tps_90pct_after_s`: the time until a one-second window that starts at or after the fault
//!   holds, among the operations **invoked** in it, at least 90 % of the successes per second of
//!   the 10 s before the fault. Counting by invoke time keeps a backlog of operations invoked
//!   during the outage and completed after it out of the recovered rate.
//!
//! - `after_undo_s`: for a fault undone during the load, the time from the undo until a leader
//!   is seen and the first acknowledged write **invoked after the undo** completes (a leader
//!   alone for a workload without writes): the cluster is back to serving.
//!
//! All times are seconds since the start of the run. A figure that applies but was never
//! reached during the run is listed in [`Recovery::unrecovered`], and it breaks any
//! `recovery_within` limit: a fault that never recovers does not pass.

use serde::Serialize;

/// The observations recovery is measured from.
#[derive(Debug, Clone, Copy)]
pub struct Observations<'a> {
    /// Leader as the poller saw it, in time order: (t, leader).
    pub leaders: &'a [(f64, Option<u64>)],
    /// The highest term any node reported, at each change: (t, term).
    pub terms: &'a [(f64, u64)],
    /// Every node process seen starting during the run: (t, node), in time order.
    pub started: &'a [(f64, u64)],
    /// Acknowledged writes as (invoke, complete), in completion order.
    pub acked: &'a [(f64, f64)],
    /// Invoke times of every operation that completed ok, sorted.
    pub ok_invoked: &'a [f64],
    /// The last moment an operation could be invoked (the end of the load).
    pub load_end: f64,
}

/// Recovery figures of one fault. `None`: not applicable (see `unrecovered` for the figures
/// that applied and were never reached).
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Recovery {
    /// Time to a new leader, when the leader was hit.
    pub leader_elected_after_s: Option<f64>,
    /// Time to the first acknowledged write invoked after the fault.
    pub first_success_after_s: Option<f64>,
    /// Time to a 1 s window at ≥ 90 % of the success rate before the fault.
    pub tps_90pct_after_s: Option<f64>,
    /// Time from the fault's undo to a leader and a first acknowledged write invoked after it,
    /// when the fault was undone during the load and that came before the load ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_undo_s: Option<f64>,
    /// Figures that applied but were never reached before the load ended.
    #[schemars(extend("items" = { "enum": ["leader_elected_after_s", "first_success_after_s", "tps_90pct_after_s"] }))]
    pub unrecovered: Vec<&'static str>,
}

/// Slide step of the window that looks for 90 % of the rate.
const STEP: f64 = 0.1;

/// Measures recovery from a fault fired at `fired_at` that hit the leader `old_leader` (if
/// any). `expects_writes`: the workload writes, so a first acknowledged write must come.
pub fn measure(
    fired_at: f64,
    old_leader: Option<u64>,
    expects_writes: bool,
    obs: Observations<'_>,
) -> Recovery {
    let mut unrecovered = Vec::new();
    let term_at = |t: f64| {
        obs.terms
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |(_, term)| *term)
    };
    let fault_term = term_at(fired_at);
    let leader_elected_after_s = old_leader.and_then(|_| {
        let t = obs
            .leaders
            .iter()
            .find(|(t, l)| {
                *t >= fired_at
                    && l.is_some_and(|l| {
                        term_at(*t) > fault_term
                            || obs
                                .started
                                .iter()
                                .any(|(s, n)| *n == l && *s >= fired_at && *s <= *t)
                    })
            })
            .map(|(t, _)| t - fired_at);
        if t.is_none() {
            unrecovered.push("leader_elected_after_s");
        }
        t
    });
    let first_success_after_s = obs
        .acked
        .iter()
        .find(|(invoked, _)| *invoked >= fired_at)
        .map(|(_, done)| done - fired_at);
    if expects_writes && first_success_after_s.is_none() {
        unrecovered.push("first_success_after_s");
    }
    let tps_90pct_after_s = match baseline(fired_at, obs.ok_invoked) {
        None => None,
        Some(rate) => {
            let t = first_window_at(0.9 * rate, fired_at, obs);
            if t.is_none() {
                unrecovered.push("tps_90pct_after_s");
            }
            t
        }
    };
    Recovery {
        leader_elected_after_s,
        first_success_after_s,
        tps_90pct_after_s,
        after_undo_s: None,
        unrecovered,
    }
}

/// The time from `undone_at` until a leader is seen and the first acknowledged write invoked
/// at or after it completes (the leader alone when `expects_writes` is false); `None` when
/// that did not come before the load ended.
pub fn after_undo(undone_at: f64, expects_writes: bool, obs: Observations<'_>) -> Option<f64> {
    let leader_at = leader_from(undone_at, obs.leaders)?;
    let write_at = if expects_writes {
        obs.acked
            .iter()
            .find(|(invoked, _)| *invoked >= undone_at)
            .map(|(_, done)| *done)?
    } else {
        undone_at
    };
    Some(leader_at.max(write_at) - undone_at)
}

/// When a leader is first seen at or after `t0`: `t0` itself when one leads then.
fn leader_from(t0: f64, leaders: &[(f64, Option<u64>)]) -> Option<f64> {
    let now = leaders.iter().take_while(|(t, _)| *t <= t0).last();
    if now.is_some_and(|(_, l)| l.is_some()) {
        return Some(t0);
    }
    leaders
        .iter()
        .find(|(t, l)| *t > t0 && l.is_some())
        .map(|(t, _)| *t)
}

/// Successes per second among the operations invoked in the 10 s before `fired_at` (or since
/// the start, if that is shorter); `None` with under a second of history.
fn baseline(fired_at: f64, ok_invoked: &[f64]) -> Option<f64> {
    let from = (fired_at - 10.0).max(0.0);
    let span = fired_at - from;
    (span >= 1.0).then(|| count_in(ok_invoked, from, fired_at) as f64 / span)
}

/// The end of the first one-second window starting at or after `fired_at` whose invoked
/// successes reach `target`, as time after the fault.
fn first_window_at(target: f64, fired_at: f64, obs: Observations<'_>) -> Option<f64> {
    let mut start = fired_at;
    while start + 1.0 <= obs.load_end + 1e-9 {
        if count_in(obs.ok_invoked, start, start + 1.0) as f64 >= target {
            return Some(start + 1.0 - fired_at);
        }
        start += STEP;
    }
    None
}

/// How many of the sorted `times` lie in `[from, to)`.
fn count_in(times: &[f64], from: f64, to: f64) -> usize {
    times.partition_point(|t| *t < to) - times.partition_point(|t| *t < from)
}

impl Recovery {
    /// The figures that exceed `limit` or were never reached (by name), for the
    /// `recovery_within` check.
    pub fn over(&self, limit: f64) -> Vec<&'static str> {
        let mut over: Vec<&'static str> = [
            ("leader_elected_after_s", self.leader_elected_after_s),
            ("first_success_after_s", self.first_success_after_s),
            ("tps_90pct_after_s", self.tps_90pct_after_s),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| v > limit))
        .map(|(n, _)| n)
        .collect();
        over.extend(self.unrecovered.iter().copied());
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_second[i]` successes invoked evenly in second i.
    fn invoked(per_second: &[u32]) -> Vec<f64> {
        let mut out = Vec::new();
        for (i, n) in per_second.iter().enumerate() {
            for k in 0..*n {
                out.push(i as f64 + f64::from(k) / f64::from(*n));
            }
        }
        out
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
        // A write invoked at 9.99 and acknowledged at 10.3 was in flight: it does not count.
        let acked = [(9.9, 9.95), (9.99, 10.3), (10.5, 10.7), (10.6, 10.8)];
        let mut tps = vec![100; 10];
        tps.extend([0, 40, 95, 100, 100]);
        let ok = invoked(&tps);
        let r = measure(
            10.0,
            Some(1),
            true,
            Observations {
                leaders: &leaders,
                terms: &[(0.0, 1), (10.45, 2)],
                started: &[],
                acked: &acked,
                ok_invoked: &ok,
                load_end: 15.0,
            },
        );
        assert!((r.leader_elected_after_s.unwrap() - 0.45).abs() < 1e-9);
        assert!(
            (r.first_success_after_s.unwrap() - 0.7).abs() < 1e-9,
            "the write invoked at 10.5 is the first that counts"
        );
        let t = r.tps_90pct_after_s.unwrap();
        assert!(
            (2.6..=3.0).contains(&t),
            "{t}: the window reaches 90 by 12.6..13.0"
        );
        assert!(r.unrecovered.is_empty());
        assert_eq!(r.over(2.5), vec!["tps_90pct_after_s"]);
    }

    /// After a crash of the whole cluster the old leader may well win again: what counts is a
    /// leader in a new term.
    #[test]
    fn the_same_node_elected_in_a_new_term_is_a_new_leader() {
        let leaders = [(0.0, Some(1)), (5.1, None), (7.3, Some(1))];
        // Leader 1 hit at 5 s under a read-only load, with these terms and process starts.
        let elected = |terms: &[(f64, u64)], started: &[(f64, u64)]| {
            let obs = Observations {
                leaders: &leaders,
                terms,
                started,
                acked: &[],
                ok_invoked: &[],
                load_end: 10.0,
            };
            measure(5.0, Some(1), false, obs)
        };
        let r = elected(&[(0.0, 1), (7.3, 2)], &[]);
        assert!((r.leader_elected_after_s.unwrap() - 2.3).abs() < 1e-9);
        let same_term = elected(&[(0.0, 1)], &[]);
        assert_eq!(same_term.unrecovered, vec!["leader_elected_after_s"]);
        let restarted = elected(&[(0.0, 1)], &[(7.1, 2), (7.2, 1)]);
        assert!(
            (restarted.leader_elected_after_s.unwrap() - 2.3).abs() < 1e-9,
            "openraft restores a restarted leader in its old term: {restarted:?}"
        );
        let before_fault = elected(&[(0.0, 1)], &[(0.0, 1)]);
        assert_eq!(
            before_fault.unrecovered,
            vec!["leader_elected_after_s"],
            "a start before the fault is not a restart after it"
        );
    }

    #[test]
    fn a_fault_that_never_recovers_breaks_any_limit() {
        let ok = invoked(&[50, 50, 0, 0, 0, 0]);
        let r = measure(
            2.0,
            Some(3),
            true,
            Observations {
                leaders: &[(2.5, None)],
                terms: &[(0.0, 1)],
                started: &[],
                acked: &[(1.0, 1.1)],
                ok_invoked: &ok,
                load_end: 6.0,
            },
        );
        assert_eq!(r.leader_elected_after_s, None);
        assert_eq!(r.first_success_after_s, None);
        assert_eq!(r.tps_90pct_after_s, None);
        assert_eq!(
            r.unrecovered,
            vec![
                "leader_elected_after_s",
                "first_success_after_s",
                "tps_90pct_after_s"
            ]
        );
        assert_eq!(
            r.over(1000.0).len(),
            3,
            "never recovering is over any limit"
        );
    }

    #[test]
    fn figures_that_do_not_apply_stay_out_of_the_verdict() {
        let ok = invoked(&[50; 5]);
        // A follower fault (no leader hit), a read-only workload, and a fault in the first
        // second (no baseline): nothing applies, nothing is over.
        let r = measure(
            0.5,
            None,
            false,
            Observations {
                leaders: &[],
                terms: &[],
                started: &[],
                acked: &[],
                ok_invoked: &ok,
                load_end: 5.0,
            },
        );
        assert_eq!(r, Recovery::default());
        assert!(r.over(0.1).is_empty());
    }

    #[test]
    fn a_backlog_completed_after_the_outage_is_not_recovery() {
        // Operations invoked during a 3 s outage all completed in one burst at 13.1; only
        // the ones invoked after 13 s count, so the rate recovers once 90 of them fit in a
        // window (13.9 at the earliest), not at the burst.
        let mut ok = invoked(&[100; 10]);
        ok.extend(invoked(&[100, 100]).into_iter().map(|t| t + 13.0));
        ok.sort_by(f64::total_cmp);
        let r = measure(
            10.0,
            None,
            true,
            Observations {
                leaders: &[],
                terms: &[],
                started: &[],
                acked: &[(13.0, 13.05)],
                ok_invoked: &ok,
                load_end: 15.0,
            },
        );
        let t = r.tps_90pct_after_s.unwrap();
        assert!((3.85..=4.0).contains(&t), "{t}");
    }
}
