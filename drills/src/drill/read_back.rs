//! The read-back after the load: every key a write may have changed is read linearizably,
//! for the lost-write check; each successful read also joins the history, at its real time,
//! for the linearizability check.

use std::collections::BTreeMap;
use std::time::Duration;

use loadgen::history::HistoryRecord;
use loadgen::outcome::Outcome;
use loadgen::target::{Store, Target, TargetKind};
use loadgen::workload::OpKind;
use raftdrill_wire::Consistency;

use super::consistency::{FINAL_READ_IDS, FINAL_READ_WORKER};
use super::track::panic_text;
use crate::check::{LostWriteReport, WriteTracker};
use crate::fault::Rig;

/// How long the cluster gets to elect a leader after the final heal.
const SETTLE_DEADLINE: Duration = Duration::from_secs(20);
/// Final reads in flight at once.
const READ_CONCURRENCY: usize = 32;
/// The budget of one read attempt (failover to another node included).
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the final reads may keep retrying keys that do not answer.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// What the read-back found.
pub struct ReadBack {
    /// The lost-write check.
    pub report: LostWriteReport,
    /// Each successful read as a history record at its real time.
    pub history: Vec<HistoryRecord>,
    /// Read tasks that panicked (their keys count as unreadable).
    pub panics: Vec<String>,
}

/// Reads every key a write may have changed, linearizably, and runs the lost-write check.
/// Every key is accounted for: a read that failed, or whose task panicked, leaves its key
/// unreadable, never left out.
pub async fn final_reads(rig: &Rig, tracker: &WriteTracker) -> ReadBack {
    let n = &rig.nodes;
    let leader = n.answers_agree_within(SETTLE_DEADLINE).await;
    let mut ids: Vec<u64> = n
        .ids()
        .into_iter()
        .filter(|id| !n.is_removed(*id))
        .collect();
    // The leader first: a read there needs no forwarding.
    ids.sort_by_key(|id| Some(*id) != leader);
    let kind: TargetKind = n.target();
    let urls: Vec<String> = ids.into_iter().map(|id| n.url(id)).collect();
    let keys = tracker.keys_to_check();
    let mut back = match Store::new(kind, &urls, READ_TIMEOUT) {
        Ok(store) => read_all(rig, &store, keys).await,
        Err(e) => Reads {
            values: keys.into_iter().map(|k| (k, Err(e.to_string()))).collect(),
            ..Reads::default()
        },
    };
    ReadBack {
        report: tracker.report(&back.values),
        history: std::mem::take(&mut back.history),
        panics: back.panics,
    }
}

/// What the read tasks brought back.
#[derive(Default)]
struct Reads {
    /// Per key: its value (`None`: absent), or why it could not be read.
    values: BTreeMap<String, Result<Option<String>, String>>,
    /// The successful reads as history records.
    history: Vec<HistoryRecord>,
    /// Read tasks that panicked.
    panics: Vec<String>,
}

/// Reads `keys` with [`READ_CONCURRENCY`] tasks at a time until [`READ_DEADLINE`].
async fn read_all(rig: &Rig, store: &Store, keys: Vec<String>) -> Reads {
    let deadline = tokio::time::Instant::now() + READ_DEADLINE;
    let panic_first = crate::testing::hook(crate::testing::Hook::PanicReadBack);
    let mut pending = keys.into_iter().enumerate();
    let mut set = tokio::task::JoinSet::new();
    let mut in_flight = BTreeMap::new();
    let mut out = Reads::default();
    loop {
        while set.len() < READ_CONCURRENCY {
            let Some((n, key)) = pending.next() else {
                break;
            };
            let (store, k) = (store.clone(), key.clone());
            let task = set.spawn(async move {
                if panic_first && n == 0 {
                    panic!("the read-back of {k}: {}", crate::testing::PLANTED);
                }
                let res = read_key(&store, &k, deadline).await;
                (k, res)
            });
            in_flight.insert(task.id(), key);
        }
        match set.join_next_with_id().await {
            Some(Ok((id, (key, res)))) => {
                in_flight.remove(&id);
                if let Ok(read) = &res {
                    let id = FINAL_READ_IDS + out.history.len() as u64;
                    out.history.push(record(rig, id, &key, read));
                }
                out.values.insert(key, res.map(|r| r.value));
            }
            Some(Err(e)) => {
                let key = in_flight.remove(&e.id()).unwrap_or_default();
                let why = panic_text(e);
                tracing::warn!(%key, error = %why, "a final read task failed");
                out.values
                    .insert(key, Err(format!("its read task failed: {why}")));
                out.panics.push(format!("the read-back: {why}"));
            }
            None => return out,
        }
    }
}

/// A successful final read as a history record, at its real time on the run's clock.
fn record(rig: &Rig, id: u64, key: &str, read: &Read) -> HistoryRecord {
    let us = |at: tokio::time::Instant| (rig.clock.secs_at(at).max(0.0) * 1e6) as u64;
    HistoryRecord {
        id,
        worker: FINAL_READ_WORKER,
        kind: OpKind::Read,
        key: key.to_string(),
        value: None,
        expect: None,
        invoke_us: us(read.sent),
        complete_us: us(read.done),
        outcome: Outcome::Ok,
        error: None,
        returned: read.value.clone(),
        applied: None,
        index: None,
    }
}

/// One successful read: the value (`None`: absent) and when the attempt that got it was sent
/// and answered.
struct Read {
    value: Option<String>,
    sent: tokio::time::Instant,
    done: tokio::time::Instant,
}

/// Reads `key` linearizably, trying the nodes in turn until one answers or `deadline`.
async fn read_key(
    store: &Store,
    key: &str,
    deadline: tokio::time::Instant,
) -> Result<Read, String> {
    let mut last = String::from("the deadline passed before the first try");
    for attempt in 0u64.. {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let sent = tokio::time::Instant::now();
        match store.get(0, key, Consistency::Linearizable).await {
            Ok(value) => {
                return Ok(Read {
                    value,
                    sent,
                    done: tokio::time::Instant::now(),
                });
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis((100 * (attempt + 1)).min(1000))).await;
    }
    Err(last)
}
