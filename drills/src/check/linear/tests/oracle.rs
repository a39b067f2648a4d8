//! The search against a brute-force oracle on thousands of small random histories, valid and
//! not: every shortcut of the search (the memo, taking reads at once, trying unknown
//! operations only where they change the register) must leave its verdict unchanged.
//!
//! The oracle tries every subset of the unknown operations and every order of the chosen
//! operations that keeps real time (a before b when a returned before b was called; unknown
//! operations never return), and plays it on a register.

use loadgen::rng::SplitMix64;

use super::*;

/// What the oracle needs of an operation: its interval and what it does.
#[derive(Debug, Clone)]
struct Plain {
    invoke: u64,
    /// `None`: unknown outcome, open-ended and optional.
    complete: Option<u64>,
    kind: OpKind,
    value: Option<u8>,
    expect: Option<u8>,
    applied: bool,
}

/// Plays `order` on a register that starts absent; `true` when every operation is allowed.
fn plays(ops: &[Plain], order: &[usize]) -> bool {
    let mut reg: Option<u8> = None;
    for &i in order {
        let o = &ops[i];
        match o.kind {
            OpKind::Read => {
                if reg != o.value {
                    return false;
                }
            }
            OpKind::Update | OpKind::Insert => reg = o.value,
            OpKind::ReadModifyWrite => match (o.complete, o.applied) {
                // Unknown: chosen, so it took effect; it swaps only on its expected value.
                (None, _) | (Some(_), true) if reg == o.expect => reg = o.value,
                (None, _) => {}
                (Some(_), true) => return false,
                (Some(_), false) => {
                    if reg == o.expect {
                        return false;
                    }
                }
            },
        }
    }
    true
}

/// Depth-first over orders that keep real time.
fn any_order(ops: &[Plain], chosen: &[usize], order: &mut Vec<usize>, used: &mut [bool]) -> bool {
    if order.len() == chosen.len() {
        return plays(ops, order);
    }
    for (slot, &i) in chosen.iter().enumerate() {
        if used[slot] {
            continue;
        }
        // Every chosen operation that returned before i was called must already be placed.
        let waiting = chosen.iter().enumerate().any(|(s, &j)| {
            !used[s] && j != i && ops[j].complete.is_some_and(|c| c < ops[i].invoke)
        });
        if waiting {
            continue;
        }
        used[slot] = true;
        order.push(i);
        if any_order(ops, chosen, order, used) {
            return true;
        }
        order.pop();
        used[slot] = false;
    }
    false
}

fn oracle(ops: &[Plain]) -> bool {
    let required: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].complete.is_some())
        .collect();
    let optional: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].complete.is_none())
        .collect();
    (0..1u32 << optional.len()).any(|mask| {
        let mut chosen = required.clone();
        chosen.extend(
            (0..optional.len())
                .filter(|b| mask & (1 << b) != 0)
                .map(|b| optional[b]),
        );
        let mut used = vec![false; chosen.len()];
        any_order(ops, &chosen, &mut Vec::new(), &mut used)
    })
}

/// A random small history over values 1..=3 (0 stands for absent).
fn random_history(rng: &mut SplitMix64) -> (Vec<Plain>, Vec<HistoryRecord>) {
    let n = 1 + rng.below(7) as usize;
    let value = |rng: &mut SplitMix64| match rng.below(4) {
        0 => None,
        v => Some(v as u8),
    };
    let mut ops = Vec::new();
    let mut records = Vec::new();
    for id in 0..n {
        let invoke = rng.below(40);
        let complete = invoke + rng.below(25);
        let is_unknown = rng.below(4) == 0;
        let kind = [OpKind::Read, OpKind::Update, OpKind::ReadModifyWrite][rng.below(3) as usize];
        let (v, expect, applied) = match kind {
            OpKind::Read => (value(rng), None, false),
            _ => (Some(1 + rng.below(3) as u8), value(rng), rng.below(2) == 0),
        };
        let text = |v: Option<u8>| v.map(|v| format!("v{v}"));
        let r = match kind {
            OpKind::Read => read(id as u64, id, text(v).as_deref(), invoke, complete),
            OpKind::Update => write(
                id as u64,
                id,
                &text(v).unwrap_or_default(),
                invoke,
                complete,
            ),
            _ => cas(
                id as u64,
                id,
                text(expect).as_deref(),
                &text(v).unwrap_or_default(),
                applied,
                invoke,
                complete,
            ),
        };
        // Unknown reads constrain nothing: the check drops them, so the oracle never sees one.
        if is_unknown && kind == OpKind::Read {
            records.push(unknown(r));
            continue;
        }
        records.push(if is_unknown { unknown(r) } else { r });
        ops.push(Plain {
            invoke,
            complete: (!is_unknown).then_some(complete),
            kind,
            value: v,
            expect,
            applied,
        });
    }
    (ops, records)
}

#[test]
fn the_search_agrees_with_brute_force_on_small_random_histories() {
    let mut rng = SplitMix64::new(2024);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..4000 {
        let (ops, records) = random_history(&mut rng);
        let expected = oracle(&ops);
        let report = check(&records);
        let got = match report.status {
            Status::Ok => true,
            Status::Anomaly => false,
            Status::Unknown => panic!("case {case} undecided"),
        };
        assert_eq!(got, expected, "case {case}: {records:#?}");
        if expected {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    // Both verdicts were exercised in earnest.
    assert!(
        valid > 500 && invalid > 500,
        "{valid} valid, {invalid} invalid"
    );
}
