//! Proposal batching: client writes that arrive together go to Raft as one entry.
//!
//! openraft 0.9's core waits for each log append to be durable before it handles the next
//! message (`RaftCore::append_to_log` awaits the flush callback), so every `client_write` costs
//! the leader one fsync in series, whatever the log store batches: at 64 concurrent writers a
//! write waited ~11 ms for its turn and the replication streams ~16 ms between round trips
//! (`/admin/stages`). Batching proposals makes that one fsync per batch.
//!
//! One task takes the proposals in arrival order. It keeps at most [`IN_FLIGHT`] entries
//! proposed and not yet answered; while they are out, new proposals wait and then go together,
//! so a lone writer still goes at once and a crowd forms batches as large as the wait makes
//! them. A batch holds at most one request per key (a later one for the same key waits for the
//! next batch), so each key's writes keep distinct log indexes, which the lost-write check and
//! session reads order them by. A batch of one is proposed as the plain request.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use openraft::error::ClientWriteError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::typ::{NodeId, Raft, Request, Response};

/// Entries proposed and not yet answered, at most.
const IN_FLIGHT: usize = 4;
/// Requests in one entry, at most.
const MAX_BATCH: usize = 256;

/// A write applied by the state machine.
#[derive(Debug, Clone)]
pub(super) struct Applied {
    /// The entry's log index.
    pub index: u64,
    /// The entry's term.
    pub term: u64,
    /// The leader that proposed it.
    pub leader: NodeId,
    /// What applying this request produced.
    pub data: Response,
}

/// Why a proposal was not applied.
#[derive(Debug, Clone)]
pub(super) enum Refused {
    /// This node is not the leader (it may know who is).
    NotLeader(Option<NodeId>),
    /// Raft refused the entry for another reason.
    Other(String),
    /// Raft has stopped: the node is shutting down.
    Stopped(String),
}

type Reply = oneshot::Sender<Result<Applied, Refused>>;

struct Proposal {
    req: Request,
    reply: Reply,
}

/// The handle the API proposes through; the batching task ends when every handle is gone.
#[derive(Clone)]
pub(super) struct Proposer {
    tx: mpsc::UnboundedSender<Proposal>,
}

impl Proposer {
    /// Starts the batching task for `raft`.
    pub(super) fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Self { tx }
    }

    /// Proposes `req`; the answer comes once it is applied or refused. `Err` when the batching
    /// task has stopped.
    pub(super) fn propose(
        &self,
        req: Request,
    ) -> Result<oneshot::Receiver<Result<Applied, Refused>>, Refused> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Proposal { req, reply })
            .map_err(|_| Refused::Stopped("the proposer has stopped".into()))?;
        Ok(answer)
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Proposal>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut waiting: VecDeque<Proposal> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(p) => waiting.push_back(p),
                None => return,
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        while let Ok(p) = rx.try_recv() {
            waiting.push_back(p);
        }
        let batch = take_batch(&mut waiting);
        let (reqs, replies): (Vec<Request>, Vec<Reply>) =
            batch.into_iter().map(|p| (p.req, p.reply)).unzip();
        let entry = if reqs.len() == 1 {
            reqs.into_iter().next().expect("one request")
        } else {
            Request::Batch(reqs)
        };
        // Sent to Raft here, in order; the answer is awaited elsewhere.
        let answer = raft.client_write_ff(entry).await;
        tokio::spawn(async move {
            let outcome = match answer {
                Err(fatal) => Err(Refused::Stopped(fatal.to_string())),
                Ok(rx) => match rx.await {
                    Err(_) => Err(Refused::Stopped("raft dropped the proposal".into())),
                    Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                        Err(Refused::NotLeader(f.leader_id))
                    }
                    Ok(Err(ClientWriteError::ChangeMembershipError(e))) => {
                        Err(Refused::Other(e.to_string()))
                    }
                    Ok(Ok(r)) => Ok(r),
                },
            };
            drop(slot);
            answer_each(outcome, replies);
        });
    }
}

/// Takes the next batch from the front of `waiting`: in arrival order, at most one request
/// per key, at most [`MAX_BATCH`]; the rest keep their order.
fn take_batch(waiting: &mut VecDeque<Proposal>) -> Vec<Proposal> {
    let mut keys = HashSet::new();
    let mut batch = Vec::new();
    let mut rest = VecDeque::with_capacity(waiting.len());
    for p in waiting.drain(..) {
        if p.reply.is_closed() {
            // Its client gave up waiting (and was told the outcome is unknown): a proposal
            // that has not gone out yet is dropped rather than applied late.
            continue;
        }
        let fresh = p.req.key().is_none_or(|k| !keys.contains(k));
        if batch.len() < MAX_BATCH && fresh {
            if let Some(k) = p.req.key() {
                keys.insert(k.to_string());
            }
            batch.push(p);
        } else {
            rest.push_back(p);
        }
    }
    *waiting = rest;
    batch
}

/// Hands each proposer its own part of the entry's outcome.
fn answer_each(
    outcome: Result<openraft::raft::ClientWriteResponse<crate::typ::TypeConfig>, Refused>,
    replies: Vec<Reply>,
) {
    let n = replies.len();
    match outcome {
        Err(refused) => {
            for reply in replies {
                let _ = reply.send(Err(refused.clone()));
            }
        }
        Ok(r) => {
            let (index, term, leader) = (
                r.log_id.index,
                r.log_id.leader_id.term,
                r.log_id.leader_id.node_id,
            );
            let data: Vec<Response> = match r.data {
                Response::Batch(each) if n > 1 && each.len() == n => each,
                one if n == 1 => vec![one],
                other => {
                    let msg = format!("a batch of {n} came back as {other:?}");
                    for reply in replies {
                        let _ = reply.send(Err(Refused::Other(msg.clone())));
                    }
                    return;
                }
            };
            for (reply, data) in replies.into_iter().zip(data) {
                let _ = reply.send(Ok(Applied {
                    index,
                    term,
                    leader,
                    data,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> (Proposal, oneshot::Receiver<Result<Applied, Refused>>) {
        let (reply, rx) = oneshot::channel();
        let req = Request::Put {
            key: key.into(),
            value: "v".into(),
        };
        (Proposal { req, reply }, rx)
    }

    fn keys(batch: &[Proposal]) -> Vec<&str> {
        batch.iter().map(|p| p.req.key().unwrap()).collect()
    }

    #[test]
    fn a_batch_holds_one_request_per_key_in_arrival_order() {
        let (proposals, _answers): (Vec<_>, Vec<_>) =
            ["a", "b", "a", "c", "b", "a"].map(put).into_iter().unzip();
        let mut waiting: VecDeque<Proposal> = proposals.into();
        let first = take_batch(&mut waiting);
        assert_eq!(keys(&first), ["a", "b", "c"]);
        let second = take_batch(&mut waiting);
        assert_eq!(keys(&second), ["a", "b"]);
        let third = take_batch(&mut waiting);
        assert_eq!(keys(&third), ["a"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn a_proposal_whose_client_gave_up_is_not_sent() {
        let (kept, _rx) = put("a");
        let (gone, rx) = put("b");
        drop(rx);
        let mut waiting: VecDeque<Proposal> = [gone, kept].into();
        assert_eq!(keys(&take_batch(&mut waiting)), ["a"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn a_batch_is_at_most_max_batch() {
        let (proposals, _answers): (Vec<_>, Vec<_>) =
            (0..MAX_BATCH + 3).map(|i| put(&format!("k{i}"))).unzip();
        let mut waiting: VecDeque<Proposal> = proposals.into();
        assert_eq!(take_batch(&mut waiting).len(), MAX_BATCH);
        assert_eq!(take_batch(&mut waiting).len(), 3);
    }

    #[test]
    fn each_proposer_gets_its_own_result_or_the_shared_refusal() {
        let (a, ra) = oneshot::channel();
        let (b, rb) = oneshot::channel();
        let response = |data| openraft::raft::ClientWriteResponse::<crate::typ::TypeConfig> {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(3, 1), 42),
            data,
            membership: None,
        };
        let both = Response::Batch(vec![
            Response::Done,
            Response::Cas {
                ok: false,
                current: Some("x".into()),
            },
        ]);
        answer_each(Ok(response(both)), vec![a, b]);
        let (ra, rb) = (
            ra.blocking_recv().unwrap().unwrap(),
            rb.blocking_recv().unwrap().unwrap(),
        );
        assert_eq!((ra.index, ra.term, ra.leader), (42, 3, 1));
        assert_eq!(ra.data, Response::Done);
        assert!(matches!(rb.data, Response::Cas { ok: false, .. }));

        // An answer that does not match the batch is refused to all, never guessed.
        let (a, ra) = oneshot::channel();
        let (b, rb) = oneshot::channel();
        answer_each(Ok(response(Response::Done)), vec![a, b]);
        assert!(matches!(
            ra.blocking_recv().unwrap(),
            Err(Refused::Other(_))
        ));
        assert!(matches!(
            rb.blocking_recv().unwrap(),
            Err(Refused::Other(_))
        ));

        let (a, ra) = oneshot::channel();
        answer_each(Err(Refused::NotLeader(Some(2))), vec![a]);
        assert!(matches!(
            ra.blocking_recv().unwrap(),
            Err(Refused::NotLeader(Some(2)))
        ));
    }
}
