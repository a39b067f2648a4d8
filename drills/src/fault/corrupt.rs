//! `corrupt`: damage a stopped node's log or snapshot files, then start it again and see
//! whether it refuses them or starts.
//!
//! The node is stopped with SIGTERM (as an operator would before copying its data), one of
//! its files is chosen by the fault's seed among those the store keeps for the chosen kind
//! (`Store::corruptible`), and a range within the part of the file that holds data (up to its
//! last non-zero byte: segments are preallocated with zeros) is flipped, zeroed or cut. The
//! node then starts on probation: an exit within [`START_WAIT`] is the store refusing its
//! files, recorded as `refused-start` with the end of its log and not as a death on its own;
//! the node then stays out of service for the rest of the run, as an operator would leave it.
//! A node that answers its status call started on the damaged files: the read-back and the
//! checkers judge what it serves.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use loadgen::rng::SplitMix64;
use serde::Serialize;
use target_cluster::typ::NodeId;

use super::{Rig, STOP_GRACE, later};
use crate::placement::Effect;
use crate::placement::files::Patch;
use crate::scenario::{CorruptFile, CorruptHow};

/// How long a node started on damaged files gets to answer or to exit.
pub const START_WAIT: Duration = Duration::from_secs(20);

/// One damaged file, and what the node made of it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Corruption {
    /// The node.
    pub node: NodeId,
    /// The file, on the node's machine.
    pub file: PathBuf,
    /// What was done.
    pub how: CorruptHow,
    /// Where the range starts (a truncation cuts the file here).
    pub offset: u64,
    /// How many bytes it spans (for a truncation: how many were cut).
    pub len: u64,
    /// The file's length before.
    pub file_len: u64,
    /// The seed that chose the file and the range.
    pub seed: u64,
    /// `started` (it answered), `refused-start` (it exited), or `no-answer` (neither within
    /// [`START_WAIT`]).
    #[schemars(extend("enum" = ["started", "refused-start", "no-answer"]))]
    pub outcome: String,
    /// For a refusal: how the process ended and the last line of its log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What `corrupt` asks for.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// What is done to the range.
    pub how: CorruptHow,
    /// Which files.
    pub file: CorruptFile,
    /// How long the range is (flip, zero).
    pub bytes: u64,
}

/// Damages each of `nodes` in turn and starts it again; returns what was done and when the
/// first node was stopped.
pub async fn corrupt(
    rig: &Rig,
    ask: Ask,
    nodes: &[NodeId],
    seed: u64,
) -> Result<(Vec<Corruption>, Effect), String> {
    let mut out = Vec::new();
    let mut at = None;
    for (i, id) in nodes.iter().enumerate() {
        let seed = seed.wrapping_add(i as u64);
        let (c, stopped) = damage(rig, ask, *id, seed).await?;
        at = later(at, stopped);
        out.push(c);
    }
    Ok((out, at))
}

/// Stops node `id`, damages one file, starts it on probation and waits for its verdict.
async fn damage(
    rig: &Rig,
    ask: Ask,
    id: NodeId,
    seed: u64,
) -> Result<(Corruption, Effect), String> {
    let (n, p) = (&rig.nodes, rig.nodes.placement());
    let stopped = if p.is_running(id) {
        p.stop(id, STOP_GRACE).await.map_err(|e| e.to_string())?
    } else {
        None
    };
    let edited = match edit_one_file(rig, ask, id, seed).await {
        Ok(edited) => edited,
        Err(e) => {
            // Started again, so a fault that could not damage anything leaves the node as it
            // found it.
            let _ = p.restart(id).await;
            return Err(e);
        }
    };
    n.start_probation(id);
    if let Err(e) = p.restart(id).await {
        n.end_probation(id);
        return Err(e.to_string());
    }
    let (outcome, detail) = verdict(rig, id).await;
    let c = Corruption {
        node: id,
        file: edited.file,
        how: ask.how,
        offset: edited.offset,
        len: edited.len,
        file_len: edited.file_len,
        seed,
        outcome: outcome.into(),
        detail,
    };
    Ok((c, stopped))
}

/// The range one [`edit_one_file`] damaged.
struct Edited {
    file: PathBuf,
    offset: u64,
    len: u64,
    file_len: u64,
}

/// Chooses one of stopped node `id`'s files of the kind `ask` names, and a range in it, by
/// `seed`, and damages it.
async fn edit_one_file(rig: &Rig, ask: Ask, id: NodeId, seed: u64) -> Result<Edited, String> {
    let p = rig.nodes.placement();
    let site = p.site(id).ok_or_else(|| format!("there is no node {id}"))?;
    let (dir, suffix) = rig.nodes.store().corruptible(&site, ask.file);
    let files = p
        .list_files(id, &dir, suffix)
        .await
        .map_err(|e| e.to_string())?;
    let candidates: Vec<PathBuf> = files
        .into_iter()
        .filter(|(_, len)| *len > 0)
        .map(|(path, _)| path)
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "node {id} has no {} file with data in {} (*{suffix})",
            ask.file.name(),
            dir.display()
        ));
    }
    let mut rng = SplitMix64::new(seed);
    let file = candidates[rng.below(candidates.len() as u64) as usize].clone();
    let data = p.read_file(id, &file).await.map_err(|e| e.to_string())?;
    let (patch, offset, len) =
        plan(&data, ask, &mut rng).ok_or_else(|| format!("{} holds no data", file.display()))?;
    p.patch_file(id, &file, &patch)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(node = id, file = %file.display(), how = ?ask.how, offset, len, "file damaged");
    Ok(Edited {
        file,
        offset,
        len,
        file_len: data.len() as u64,
    })
}

/// Waits for node `id`, started on damaged files, to answer or to exit. A node that exits
/// is left out of service for the rest of the run.
async fn verdict(rig: &Rig, id: NodeId) -> (&'static str, Option<String>) {
    let n = &rig.nodes;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if n.probation_exited(id) {
            n.mark_removed(id);
            let detail = n.end_probation(id).map(|(status, tail)| {
                let last = tail.lines().rev().find(|l| !l.trim().is_empty());
                format!("{status}: {}", last.unwrap_or("(empty log)").trim())
            });
            return ("refused-start", detail);
        }
        let call = n
            .status_calls()
            .into_iter()
            .find(|(node, _)| *node == id)
            .map(|(_, call)| call);
        if let Some(call) = call
            && call.await.is_some()
        {
            n.end_probation(id);
            return ("started", None);
        }
        if Instant::now() >= deadline {
            n.end_probation(id);
            return ("no-answer", None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The change `ask` makes to a file holding `data`, chosen by `rng` within the part that
/// holds data (up to the last non-zero byte); with the range's offset and length. `None`
/// when the file holds only zeros.
pub fn plan(data: &[u8], ask: Ask, rng: &mut SplitMix64) -> Option<(Patch, u64, u64)> {
    let used = data.iter().rposition(|b| *b != 0)? as u64 + 1;
    if ask.how == CorruptHow::Truncate {
        let cut = rng.below(used);
        return Some((Patch::Truncate { len: cut }, cut, data.len() as u64 - cut));
    }
    let len = ask.bytes.min(used);
    let offset = rng.below(used - len + 1);
    let range = offset as usize..(offset + len) as usize;
    let bytes = match ask.how {
        CorruptHow::Flip => data[range]
            .iter()
            .map(|b| b ^ (1u8 << rng.below(8)))
            .collect(),
        _ => vec![0; len as usize],
    };
    Some((Patch::Write { offset, bytes }, offset, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(how: CorruptHow, bytes: u64) -> Ask {
        Ask {
            how,
            file: CorruptFile::Log,
            bytes,
        }
    }

    #[test]
    fn the_range_lies_in_the_data_and_the_seed_replays_it() {
        // 100 bytes of data, then preallocated zeros.
        let mut data = vec![7u8; 100];
        data.extend(vec![0u8; 900]);
        for seed in 0..200 {
            let (patch, offset, len) =
                plan(&data, ask(CorruptHow::Flip, 4), &mut SplitMix64::new(seed)).unwrap();
            assert!(offset + len <= 100, "seed {seed}: {offset}+{len}");
            let Patch::Write { bytes, .. } = &patch else {
                panic!("a flip writes")
            };
            assert!(
                bytes.iter().all(|b| (b ^ 7).count_ones() == 1),
                "one bit per byte"
            );
            let again = plan(&data, ask(CorruptHow::Flip, 4), &mut SplitMix64::new(seed));
            assert_eq!(again, Some((patch, offset, len)));
        }
        let (patch, _, _) =
            plan(&data, ask(CorruptHow::Zero, 1000), &mut SplitMix64::new(1)).unwrap();
        assert_eq!(
            patch,
            Patch::Write {
                offset: 0,
                bytes: vec![0; 100]
            },
            "a range longer than the data covers the data"
        );
        let (patch, cut, len) =
            plan(&data, ask(CorruptHow::Truncate, 1), &mut SplitMix64::new(3)).unwrap();
        assert!(cut < 100 && len == 1000 - cut, "{patch:?}");
        assert!(
            plan(
                &[0u8; 64],
                ask(CorruptHow::Flip, 1),
                &mut SplitMix64::new(1)
            )
            .is_none()
        );
    }
}
