//! The read-back after the load: every key a write may have changed is read linearizably,
//! for the lost-write check; each successful read also joins the history, at its real time,
//! for the linearizability check.

use std::collections::BTreeMap;
use std::time::Duration;

use loadgen::history::HistoryRecord;
use loadgen::outcome::Outcome;
use loadgen::workload::OpKind;
use raftdrill_wire::GetResponse;

use super::consistency::{FINAL_READ_IDS, FINAL_READ_WORKER};
use super::rig::Rig;
use crate::check::{LostWriteReport, WriteTracker};

/// How long the cluster gets to elect a leader after the final heal.
const SETTLE_DEADLINE: Duration = Duration::from_secs(20);
/// Final reads in flight at once.
const READ_CONCURRENCY: usize = 32;
/// How long the final reads may keep retrying keys that do not answer.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// Reads every key a write may have changed, linearizably, and runs the lost-write check.
/// Returns the report and each successful read as a history record at its real time, for
/// the linearizability check.
pub async fn final_reads(
    rig: &Rig,
    tracker: &WriteTracker,
) -> (LostWriteReport, Vec<HistoryRecord>) {
    let leader = rig.wait_for_leader(SETTLE_DEADLINE).await;
    let urls: Vec<String> = {
        let c = rig.cluster.lock().await;
        let mut ids: Vec<u64> = c
            .nodes()
            .keys()
            .copied()
            .filter(|id| !rig.is_removed(*id))
            .collect();
        // The leader first: a read there needs no forwarding.
        ids.sort_by_key(|id| Some(*id) != leader);
        ids.into_iter().map(|id| c.url(id)).collect()
    };
    let keys = tracker.keys_to_check();
    let deadline = tokio::time::Instant::now() + READ_DEADLINE;
    let mut reads: BTreeMap<String, Result<Option<String>, String>> = BTreeMap::new();
    let mut history = Vec::new();
    let mut pending = keys.into_iter();
    let mut set = tokio::task::JoinSet::new();
    loop {
        while set.len() < READ_CONCURRENCY {
            let Some(key) = pending.next() else { break };
            let (http, urls) = (rig.http.clone(), urls.clone());
            set.spawn(async move {
                let res = read_key(&http, &urls, &key, deadline).await;
                (key, res)
            });
        }
        match set.join_next().await {
            Some(Ok((key, res))) => {
                if let Ok(read) = &res {
                    let us =
                        |at: tokio::time::Instant| (rig.clock.secs_at(at).max(0.0) * 1e6) as u64;
                    history.push(HistoryRecord {
                        id: FINAL_READ_IDS + history.len() as u64,
                        worker: FINAL_READ_WORKER,
                        kind: OpKind::Read,
                        key: key.clone(),
                        value: None,
                        expect: None,
                        invoke_us: us(read.sent),
                        complete_us: us(read.done),
                        outcome: Outcome::Ok,
                        error: None,
                        returned: read.value.clone(),
                        applied: None,
                        index: None,
                    });
                }
                reads.insert(key, res.map(|r| r.value));
            }
            Some(Err(e)) => tracing::warn!(error = %e, "final read task failed"),
            None => break,
        }
    }
    (tracker.report(&reads), history)
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
    http: &reqwest::Client,
    urls: &[String],
    key: &str,
    deadline: tokio::time::Instant,
) -> Result<Read, String> {
    let mut last = String::from("no node to read from");
    for attempt in 0u64.. {
        let Some(url) = urls.get(attempt as usize % urls.len().max(1)) else {
            break;
        };
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let sent = tokio::time::Instant::now();
        let resp = http
            .get(format!(
                "{url}/kv/{}?consistency=linearizable",
                loadgen::reference::encode_key(key)
            ))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == 200 => match r.json::<GetResponse>().await {
                Ok(g) => {
                    return Ok(Read {
                        value: Some(g.value),
                        sent,
                        done: tokio::time::Instant::now(),
                    });
                }
                Err(e) => last = e.to_string(),
            },
            Ok(r) if r.status() == 404 => {
                return Ok(Read {
                    value: None,
                    sent,
                    done: tokio::time::Instant::now(),
                });
            }
            Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis((100 * (attempt + 1)).min(1000))).await;
    }
    Err(last)
}
