//! The verdict of every path, on hand-made inputs: each fail-closed path ends `inconclusive`
//! (exit 5) and never `pass`.

use std::time::Duration;

use loadgen::LoadReport;
use loadgen::metrics::Accumulator;

use super::*;
use crate::check::CheckStatus;
use crate::check::linear::SummaryStatus;
use crate::drill::poller::NodeExit;
use crate::scenario::Scenario;

/// 100 ops/s of YCSB-A for 10 s, no warmup.
fn scenario(extra: &str) -> Scenario {
    let text = format!(
        "name = \"t\"\nduration = \"10s\"\n[load]\nworkload = \"a\"\nrate = 100\nwarmup = \"0s\"\n{extra}"
    );
    Scenario::parse(&text, "test").unwrap()
}

/// A clean report of 1,000 ok operations at 2 ms over a 10 s window.
fn report() -> LoadReport {
    let mut totals = Accumulator::default();
    totals.counts.ops = 1000;
    totals.counts.ok = 1000;
    for _ in 0..1000 {
        totals.latency.record(2000).unwrap();
    }
    LoadReport {
        elapsed: Duration::from_secs(10),
        planned_duration: Duration::from_secs(10),
        canceled: false,
        started: 1000,
        planned: Some(1000),
        dropped: 0,
        totals,
        history_lines: None,
        warmup: Duration::ZERO,
        snapshots: Vec::new(),
    }
}

fn lost(keys: u64, unreadable: u64) -> LostWriteReport {
    LostWriteReport {
        status: if unreadable > 0 {
            CheckStatus::Unknown
        } else {
            CheckStatus::Ok
        },
        acked: keys,
        keys_checked: keys,
        verified: keys - unreadable,
        unreadable,
        ..Default::default()
    }
}

/// A kill of `nodes` at 5 s, undone at 6 s.
fn kill(nodes: &[u64]) -> FaultRecord {
    FaultRecord {
        scheduled_s: 5.0,
        at_s: 5.0,
        action: "kill".into(),
        target: "all".into(),
        resolved: nodes.to_vec(),
        healed_at_s: Some(6.0),
        hit_leader: None,
        deposes: true,
        error: None,
        heal_error: None,
        corruption: Vec::new(),
        power_loss: Vec::new(),
        pending_undo: false,
        undo: None,
    }
}

/// One run's inputs, clean unless a test changes them.
struct Case {
    scenario: Scenario,
    report: LoadReport,
    poll: PollLog,
    acked: Vec<(f64, f64)>,
    ok: Vec<f64>,
    done: Vec<f64>,
    faults: Vec<FaultRecord>,
    lost: Option<LostWriteReport>,
    linear: LinearSummary,
    session: Option<SessionSummary>,
    behind: Vec<String>,
    panics: Vec<String>,
    aborted: bool,
}

impl Case {
    fn clean() -> Self {
        let even: Vec<f64> = (0..1000).map(|i| f64::from(i) / 100.0).collect();
        let mut poll = PollLog::default();
        poll.leaders = vec![(0.0, Some(1))];
        Case {
            scenario: scenario(""),
            report: report(),
            poll,
            acked: vec![(1.0, 1.1), (6.5, 6.6)],
            ok: even.clone(),
            done: even,
            faults: Vec::new(),
            lost: Some(lost(1000, 0)),
            linear: LinearSummary {
                status: SummaryStatus::Ok,
                ..LinearSummary::skipped("")
            },
            session: None,
            behind: Vec::new(),
            panics: Vec::new(),
            aborted: false,
        }
    }

    fn verdict(&self) -> Verdict {
        judge(&Inputs {
            scenario: &self.scenario,
            report: &self.report,
            snapshots: &[],
            poll: &self.poll,
            acked: &self.acked,
            ok_invoked: &self.ok,
            done_intended: &self.done,
            faults: &self.faults,
            lost: self.lost.as_ref(),
            aborted: self.aborted,
            watched_nodes: true,
            disk: None,
            linear: &self.linear,
            session: self.session.as_ref(),
            behind: &self.behind,
            panics: &self.panics,
        })
    }

    /// The verdict and exit, with a reason containing `why` when given.
    fn expect(&self, verdict: &str, exit: Exit, why: &str) {
        let v = self.verdict();
        assert_eq!((v.verdict, v.exit), (verdict, exit), "{:?}", v.reasons);
        assert!(
            why.is_empty() || v.reasons.iter().any(|r| r.contains(why)),
            "no reason says {why:?}: {:?}",
            v.reasons
        );
    }
}

fn session(status: SummaryStatus) -> SessionSummary {
    SessionSummary {
        status,
        reads_checked: 10,
        reads_unjudged: 0,
        violations: usize::from(status == SummaryStatus::Anomaly),
        examples: Vec::new(),
    }
}

#[test]
fn a_clean_run_with_every_key_read_back_passes() {
    let v = Case::clean().verdict();
    assert_eq!((v.verdict, v.exit), ("pass", Exit::Pass), "{:?}", v.reasons);
    assert_eq!(v.validity.seconds_checked, 10);
}

#[test]
fn a_session_read_that_went_back_in_time_fails_and_an_unjudged_one_is_inconclusive() {
    let mut c = Case::clean();
    c.session = Some(session(SummaryStatus::Ok));
    c.expect("pass", Exit::Pass, "");
    c.session = Some(session(SummaryStatus::Anomaly));
    c.expect("fail", Exit::DataAnomaly, "went back in time");
    c.session = Some(session(SummaryStatus::Unknown));
    c.expect("inconclusive", Exit::Inconclusive, "");
}

#[test]
fn one_unreadable_key_is_inconclusive() {
    let mut c = Case::clean();
    c.lost = Some(lost(1000, 1));
    c.expect("inconclusive", Exit::Inconclusive, "not ruled out");
}

#[test]
fn a_fault_that_did_not_fire_is_inconclusive() {
    let mut c = Case::clean();
    let mut f = kill(&[4]);
    f.healed_at_s = None;
    f.error = Some("node 4 does not exist (yet)".into());
    c.faults = vec![f];
    c.expect(
        "inconclusive",
        Exit::Inconclusive,
        "did not fire: node 4 does not exist",
    );
}

#[test]
fn an_undecided_or_skipped_linearizability_check_is_inconclusive_unless_turned_off() {
    let mut c = Case::clean();
    c.linear = LinearSummary {
        status: SummaryStatus::Unknown,
        undecided: 3,
        ..LinearSummary::skipped("")
    };
    c.linear.reason = None;
    c.expect("inconclusive", Exit::Inconclusive, "3 keys undecided");
    c.linear = LinearSummary::skipped("the load hosts' histories could not be fetched");
    c.expect(
        "inconclusive",
        Exit::Inconclusive,
        "not checked: the load hosts'",
    );
    c.scenario = scenario("[checks]\nlinearizability = false\n");
    c.linear = LinearSummary::skipped("turned off in the scenario's [checks]");
    c.expect("pass", Exit::Pass, "");
}

#[test]
fn a_node_that_exits_on_its_own_is_inconclusive_unless_it_may_stay_down() {
    let mut c = Case::clean();
    c.poll.exits = vec![NodeExit {
        node: 3,
        at_s: 4.2,
        status: "exit status: 101".into(),
        log_tail: "boom".into(),
    }];
    c.expect(
        "inconclusive",
        Exit::Inconclusive,
        "node 3 exited on its own (exit status: 101) at 4.2s",
    );
    c.scenario = scenario("[checks]\nmay_stay_down = [3]\n");
    c.expect("pass", Exit::Pass, "");
}

#[test]
fn a_node_behind_at_the_end_or_a_panicked_check_is_inconclusive() {
    let mut c = Case::clean();
    c.behind = vec!["node 2 did not catch up".into()];
    c.expect(
        "inconclusive",
        Exit::Inconclusive,
        "node 2 did not catch up",
    );
    let mut c = Case::clean();
    c.panics = vec!["the read-back: boom".into()];
    c.expect(
        "inconclusive",
        Exit::Inconclusive,
        "could not finish: the read-back: boom",
    );
}

#[test]
fn a_failed_heal_fails_and_names_the_fault() {
    let mut c = Case::clean();
    let mut f = kill(&[2]);
    f.heal_error = Some("restart failed".into());
    c.faults = vec![f];
    c.expect(
        "fail",
        Exit::ThresholdBroken,
        "the heal of fault 1 (kill all) failed",
    );
}

#[test]
fn an_undone_fault_must_recover_after_its_undo_by_default() {
    let mut c = Case::clean();
    c.faults = vec![kill(&[2])];
    let v = c.verdict();
    assert_eq!(v.verdict, "pass", "{:?}", v.reasons);
    let r = &v.recovery[0];
    assert_eq!(r.after_undo_within_s, Some(10.0), "the default limit");
    assert!((r.figures.after_undo_s.unwrap() - 0.6).abs() < 1e-9);
    // No acknowledged write invoked after the undo: it never recovered.
    c.acked = vec![(1.0, 1.1)];
    c.expect("fail", Exit::ThresholdBroken, "after_undo_s over 10.0s");
    // Recovered, but later than the scenario's own limit.
    c.acked = vec![(1.0, 1.1), (6.5, 9.9)];
    c.scenario = scenario("[checks]\nrecovery_within = \"3s\"\n");
    c.expect("fail", Exit::ThresholdBroken, "after_undo_s over 3.0s");
}

#[test]
fn a_load_below_its_floor_outside_the_fault_windows_is_inconclusive() {
    let mut c = Case::clean();
    // Second 2 carried only half its planned operations.
    c.done.retain(|t| !(2.0..2.5).contains(t));
    c.expect(
        "inconclusive",
        Exit::Inconclusive,
        "1 of 10 fault-free seconds",
    );
    // Inside a fault's window the same shortfall is the fault's.
    c.faults = vec![FaultRecord {
        at_s: 1.5,
        healed_at_s: Some(1.8),
        ..kill(&[2])
    }];
    c.acked.push((1.9, 2.0));
    let v = c.verdict();
    assert_eq!(v.verdict, "pass", "{:?}", v.reasons);
    // A closed loop has no floor unless the scenario sets one.
    let mut c = Case::clean();
    c.scenario = scenario("").clone();
    c.scenario.load.model = loadgen::LoadModel::closed(4, None);
    c.done.retain(|t| !(2.0..2.5).contains(t));
    assert_eq!(c.verdict().verdict, "pass");
    c.scenario.checks.min_ops_per_s = Some(80.0);
    c.expect("inconclusive", Exit::Inconclusive, "80 ops/s");
}

#[test]
fn a_data_anomaly_outranks_an_abort_which_outranks_the_unchecked() {
    let mut c = Case::clean();
    c.lost = Some(lost(1000, 1));
    c.aborted = true;
    c.expect("aborted", Exit::CannotRun, "stopped before the end");
    let mut l = lost(1000, 1);
    l.lost = 2;
    c.lost = Some(l);
    c.expect("fail", Exit::DataAnomaly, "lost acknowledged writes");
}

#[test]
fn a_run_that_measured_nothing_does_not_pass() {
    let mut c = Case::clean();
    c.report.totals = Accumulator::default();
    let v = c.verdict();
    assert_eq!((v.verdict, v.exit), ("fail", Exit::ThresholdBroken));
}
