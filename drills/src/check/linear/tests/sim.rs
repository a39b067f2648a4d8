//! Long histories from a simulated linearizable register: workers run operations back to back,
//! each takes effect at a random instant inside its interval (an unknown write at a random
//! instant after its call, or never), and reads return the value at their instant. Such a
//! history is linearizable by construction; breaking one read of it must be caught.

use loadgen::rng::SplitMix64;

use super::super::history::split_by_key;
use super::super::search::{Limits, Verdict, search};
use super::*;

/// A simulated history of `ops` operations on one key from `workers` workers.
fn simulate(ops: usize, workers: usize, seed: u64) -> Vec<HistoryRecord> {
    let mut rng = SplitMix64::new(seed);
    let mut clock = vec![0u64; workers];
    // (instant it takes effect, record index); `None`: it never does.
    let mut effects: Vec<(u64, usize)> = Vec::new();
    let mut records = Vec::with_capacity(ops);
    for id in 0..ops {
        let worker = (0..workers).min_by_key(|&w| clock[w]).unwrap_or(0);
        let t0 = clock[worker] + rng.below(20);
        let t1 = t0 + 1 + rng.below(300);
        clock[worker] = t1;
        let at = t0 + rng.below(t1 - t0 + 1);
        let value = format!("v{id}");
        let r = match rng.below(10) {
            0..5 => read(id as u64, worker, None, t0, t1),
            5..8 => write(id as u64, worker, &value, t0, t1),
            _ => cas(id as u64, worker, None, &value, false, t0, t1),
        };
        let r = if r.kind != OpKind::Read && rng.below(20) == 0 {
            unknown(r)
        } else {
            r
        };
        let at = match (r.outcome, rng.below(3)) {
            (Outcome::Unknown, 0) => None,
            (Outcome::Unknown, _) => Some(t0 + rng.below(5_000)),
            _ => Some(at),
        };
        if let Some(at) = at {
            effects.push((at, records.len()));
        }
        records.push(r);
    }
    // Play the effects in time order on one register.
    effects.sort_unstable();
    let mut register: Option<String> = None;
    for (_, i) in effects {
        let r = &mut records[i];
        match r.kind {
            OpKind::Read => r.returned = register.clone(),
            OpKind::ReadModifyWrite => {
                // Expect what is there half of the time, else a value long gone.
                let expect = if rng.below(2) == 0 {
                    register.clone()
                } else {
                    Some("v-gone".to_string())
                };
                let swaps = expect == register;
                if r.outcome == Outcome::Ok {
                    r.applied = Some(swaps);
                }
                r.expect = Some(expect);
                if swaps {
                    register = r.value.clone();
                }
            }
            _ => register = r.value.clone(),
        }
    }
    // A swap that never took effect still sent some expectation.
    for r in &mut records {
        if r.kind == OpKind::ReadModifyWrite && r.expect.is_none() {
            r.expect = Some(Some("v-gone".to_string()));
        }
    }
    records
}

#[test]
fn a_valid_500_operation_history_is_accepted_and_exercises_the_memo() {
    let records = simulate(500, 6, 1);
    assert_ok(&records);

    let no_initial = Default::default();
    let (keys, _) = split_by_key(&records, &no_initial).unwrap();
    let limits = Limits {
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(3600),
        cancel: None,
    };
    let (verdict, effort) = search(&keys[0], &limits);
    assert_eq!(verdict, Verdict::Linearizable);
    assert!(
        effort.revisits > 0 && effort.configs >= keys[0].ops.iter().filter(|o| !o.optional).count(),
        "the memo cut off revisited configurations: {effort:?}"
    );
}

#[test]
fn many_simulated_histories_are_accepted() {
    for seed in 0..40 {
        let records = simulate(300, 1 + seed as usize % 8, seed);
        let report = check(&records);
        assert_eq!(
            report.status,
            Status::Ok,
            "seed {seed}: {:#?}",
            report.anomalies
        );
    }
}

#[test]
fn a_simulated_history_with_one_read_made_stale_is_caught() {
    let records = simulate(500, 6, 3);
    // Find a read that returned a value while a different, older value exists that was
    // overwritten before the read was invoked: make the read return that older value.
    let writes: Vec<&HistoryRecord> = records
        .iter()
        .filter(|r| r.kind == OpKind::Update && r.outcome == Outcome::Ok)
        .collect();
    let (i, stale) = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == OpKind::Read && r.returned.is_some())
        .find_map(|(i, r)| {
            // A write that completed, then another write that completed, both before r began.
            let old = writes
                .iter()
                .find(|w| w.complete_us + 2_000 < r.invoke_us)?;
            let newer = writes
                .iter()
                .find(|w| w.invoke_us > old.complete_us && w.complete_us < r.invoke_us)?;
            (newer.value != r.returned && old.value != r.returned).then(|| (i, old.value.clone()))
        })
        .expect("the simulation has such a read");
    let mut broken = records.clone();
    broken[i].returned = stale;
    let report = check(&broken);
    assert_eq!(report.status, Status::Anomaly);
    let a = &report.anomalies[0];
    assert!(a.window.iter().any(|w| w.stuck));
    assert!(a.prefix.len() < broken.len());
}
