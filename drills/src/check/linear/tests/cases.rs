//! Hand-made histories: each anomaly the check exists for, with the valid history next to it
//! that differs in one detail, so a check that rejected everything (or nothing) fails here.

use super::*;

#[test]
fn a_stale_read_after_a_completed_write_is_an_anomaly() {
    // w1 and w2 complete one after the other; a later read still sees 1.
    let h = [
        write(1, 0, "1", 0, 10),
        write(2, 1, "2", 20, 30),
        read(3, 2, Some("1"), 40, 50),
    ];
    let report = assert_anomaly(&h, 3);
    let a = &report.anomalies[0];
    assert_eq!(a.state.as_deref(), Some("2"), "the register held 2");
    assert_eq!(a.prefix, vec![1, 2]);
    let ids = a.op_ids();
    assert!(ids.contains(&2) && ids.contains(&3), "{ids:?}");
    assert!(a.explanation.contains("read of 1"), "{}", a.explanation);

    // The same read, overlapping w2, may have come before it.
    assert_ok(&[
        write(1, 0, "1", 0, 10),
        write(2, 1, "2", 20, 45),
        read(3, 2, Some("1"), 40, 50),
    ]);
}

#[test]
fn a_read_of_an_absent_key_after_its_write_completed_is_an_anomaly() {
    assert_ok(&[read(1, 0, None, 0, 5), write(2, 0, "a", 10, 20)]);
    assert_anomaly(&[write(1, 0, "a", 0, 10), read(2, 1, None, 20, 30)], 2);
}

#[test]
fn a_swap_that_wins_against_an_overwritten_value_is_an_anomaly() {
    let h = [
        write(1, 0, "a", 0, 10),
        write(2, 1, "b", 20, 30),
        cas(3, 2, Some("a"), "c", true, 40, 50),
    ];
    let report = assert_anomaly(&h, 3);
    assert_eq!(report.anomalies[0].state.as_deref(), Some("b"));

    // Refused against the overwritten value: fine. Refused against the current one: not.
    assert_ok(&[
        write(1, 0, "a", 0, 10),
        write(2, 1, "b", 20, 30),
        cas(3, 2, Some("a"), "c", false, 40, 50),
        read(4, 2, Some("b"), 60, 70),
    ]);
    assert_anomaly(
        &[
            write(1, 0, "a", 0, 10),
            write(2, 1, "b", 20, 30),
            cas(3, 2, Some("b"), "c", false, 40, 50),
        ],
        3,
    );
}

#[test]
fn a_swap_from_absent_needs_the_key_absent() {
    assert_ok(&[
        cas(1, 0, None, "a", true, 0, 10),
        read(2, 0, Some("a"), 20, 30),
    ]);
    assert_anomaly(
        &[write(1, 0, "x", 0, 10), cas(2, 1, None, "a", true, 20, 30)],
        2,
    );
}

#[test]
fn a_read_of_a_value_before_its_write_was_invoked_is_an_anomaly() {
    let h = [
        read(1, 0, Some("x"), 0, 10),
        write(2, 1, "x", 20, 30),
        read(3, 0, Some("x"), 40, 50),
    ];
    let report = assert_anomaly(&h, 1);
    let a = &report.anomalies[0];
    assert!(a.prefix.is_empty());
    assert_eq!(a.state, None);
    assert!(
        a.op_ids().contains(&2),
        "the write that could have explained it is shown: {:?}",
        a.op_ids()
    );

    // Invoked before the read returned: it may have taken effect first.
    assert_ok(&[
        read(1, 0, Some("x"), 0, 10),
        write(2, 1, "x", 10, 30),
        read(3, 0, Some("x"), 40, 50),
    ]);
}

#[test]
fn an_unknown_write_may_become_visible_long_after_the_client_gave_up() {
    let h = [
        write(1, 0, "a", 0, 10),
        // The client gave up on b at 30.
        unknown(write(2, 1, "b", 20, 30)),
        read(3, 2, Some("a"), 40, 50),
        read(4, 2, Some("a"), 900, 910),
        read(5, 0, Some("b"), 1_000_000, 1_000_010),
        read(6, 1, Some("b"), 2_000_000, 2_000_010),
    ];
    assert_ok(&h);

    // Once visible it stays: a later read of a is stale.
    let mut stale = h.to_vec();
    stale.push(read(7, 2, Some("a"), 3_000_000, 3_000_010));
    assert_anomaly(&stale, 7);

    // Had b definitely failed, reading it would be an anomaly.
    let mut wrong = h.to_vec();
    wrong[1] = failed(write(2, 1, "b", 20, 30));
    assert_anomaly(&wrong, 5);
}

#[test]
fn an_unknown_write_may_also_never_take_effect() {
    assert_ok(&[
        write(1, 0, "a", 0, 10),
        unknown(write(2, 1, "b", 20, 30)),
        read(3, 2, Some("a"), 5_000_000, 5_000_010),
    ]);
}

#[test]
fn an_unknown_write_cannot_take_effect_before_its_call() {
    assert_anomaly(
        &[
            read(1, 0, Some("b"), 0, 10),
            unknown(write(2, 1, "b", 20, 30)),
        ],
        1,
    );
}

#[test]
fn an_unknown_swap_takes_effect_only_on_its_expected_value() {
    let base = [
        write(1, 0, "a", 0, 10),
        unknown(cas(2, 1, Some("a"), "c", false, 20, 30)),
    ];
    let mut ok = base.to_vec();
    ok.push(read(3, 2, Some("c"), 100, 110));
    assert_ok(&ok);
    // Overwritten before the swap could happen, and never back to a: c cannot appear.
    let bad = [
        write(1, 0, "a", 0, 10),
        write(4, 0, "b", 11, 15),
        unknown(cas(2, 1, Some("a"), "c", false, 20, 30)),
        read(3, 2, Some("c"), 100, 110),
    ];
    assert_anomaly(&bad, 3);
}

#[test]
fn concurrent_writes_may_be_read_in_either_order() {
    let writes = [write(1, 0, "a", 0, 100), write(2, 1, "b", 10, 110)];
    for (first, second) in [("a", "b"), ("b", "a")] {
        let mut h = writes.to_vec();
        h.push(read(3, 2, Some(first), 20, 30));
        h.push(read(4, 2, Some(second), 40, 50));
        h.push(read(5, 3, Some(second), 200, 210));
        assert_ok(&h);
    }
    // But once both are done, every later read agrees on the one that came last.
    let mut h = writes.to_vec();
    h.push(read(3, 2, Some("a"), 200, 210));
    h.push(read(4, 3, Some("b"), 220, 230));
    assert_anomaly(&h, 4);
}

#[test]
fn failed_operations_and_reads_that_did_not_complete_constrain_nothing() {
    let h = [
        write(1, 0, "a", 0, 10),
        failed(write(2, 1, "b", 20, 30)),
        unknown(read(3, 2, Some("zzz"), 40, 50)),
        failed(read(4, 2, Some("zzz"), 60, 70)),
        failed(cas(5, 2, Some("q"), "r", true, 80, 90)),
        read(6, 0, Some("a"), 100, 110),
    ];
    let report = check(&h);
    assert_eq!(report.status, Status::Ok);
    assert_eq!((report.ops, report.dropped, report.records), (2, 4, 6));
}

#[test]
fn a_swap_whose_read_failed_constrains_nothing() {
    let mut never_sent = cas(2, 1, Some("zzz"), "b", true, 20, 30);
    never_sent.expect = None;
    never_sent.outcome = loadgen::outcome::Outcome::Fail;
    let report = check(&[write(1, 0, "a", 0, 10), never_sent]);
    assert_eq!((report.status, report.dropped), (Status::Ok, 1));
}

#[test]
fn keys_are_checked_apart_and_only_the_bad_one_is_reported() {
    let mut other = vec![write(10, 0, "a", 0, 10), read(11, 1, Some("a"), 20, 30)];
    for r in &mut other {
        r.key = "good".into();
    }
    let mut h = vec![write(1, 0, "1", 0, 10), read(2, 1, None, 20, 30)];
    h.extend(other);
    let report = check(&h);
    assert_eq!(report.status, Status::Anomaly);
    assert_eq!(report.keys, 2);
    let keys: Vec<&str> = report.anomalies.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, vec!["k"]);
}

#[test]
fn an_initial_value_replaces_absent_for_its_key() {
    let h = [read(1, 0, Some("seed"), 0, 10)];
    assert_anomaly(&h, 1);
    let opts = CheckOptions {
        initial_values: [("k".to_string(), "seed".to_string())].into(),
        ..CheckOptions::default()
    };
    assert_eq!(check_records(&h, &opts).unwrap().status, Status::Ok);
    let absent = [read(1, 0, None, 0, 10)];
    assert_eq!(
        check_records(&absent, &opts).unwrap().status,
        Status::Anomaly
    );
}

#[test]
fn extra_records_such_as_final_reads_join_the_history() {
    let run = vec![write(1, 0, "a", 0, 10), write(2, 0, "b", 20, 30)];
    let mut with_final = run.clone();
    with_final.push(read(99, 7, Some("b"), 1_000, 1_010));
    assert_ok(&with_final);
    let mut lost = run;
    lost.push(read(99, 7, Some("a"), 1_000, 1_010));
    assert_anomaly(&lost, 99);
}

/// A write answered `503 shutting_down` may have been proposed before its node stopped; the
/// load records it as unknown (`loadgen::outcome`), and a later read of its value is then no
/// anomaly. Recorded as failed, the same history would accuse the store of a value nobody wrote.
#[test]
fn a_write_answered_shutting_down_is_unknown_and_may_show_up() {
    let shutting_down = loadgen::outcome::OpError::from_status(503, Some("shutting_down"));
    assert_eq!(shutting_down.outcome, Outcome::Unknown);
    let w = write(1, 0, "a", 0, 10);
    assert_ok(&[unknown(w.clone()), read(2, 1, Some("a"), 20, 30)]);
    assert_anomaly(&[failed(w), read(2, 1, Some("a"), 20, 30)], 2);
}
