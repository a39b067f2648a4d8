//! The evidence of a failing key: which operations to show, and the sentence that says what
//! went wrong.
//!
//! The search ends at its deepest configuration: a linearizable prefix, the register value it
//! leaves, and the operation that cannot be placed after it (the first to return among those
//! left). The window around that failure holds:
//! - the operation that cannot be placed;
//! - the last operation of the prefix that wrote the register (the value it is judged
//!   against);
//! - up to three writes of the value it needed (for a read: writes of what it returned), the
//!   nearest in time: the writes that could have explained it, had they been placeable;
//! - every operation whose interval overlaps the span from the earlier of the first two's
//!   invocation to the failing operation's return: the operations the search could have
//!   ordered otherwise around it.
//!
//! That is at most [`MAX_WINDOW`] operations (the nearest to the failing one are kept), so the
//! picture stays readable. The verdict never depends on the window: the whole history was
//! searched.

use loadgen::history::HistoryRecord;

use super::anomaly::{KeyAnomaly, WindowOp, anomaly_file};
use super::history::{KeyHistory, KeyOp};
use super::model::Action;
use super::search::Violation;

/// Most operations in a window.
pub const MAX_WINDOW: usize = 40;

/// The end of an operation as drawn: its completion, or the moment an unknown one gave up.
fn drawn_end(o: &KeyOp, records: &[HistoryRecord]) -> u64 {
    o.complete.unwrap_or(records[o.record].complete_us)
}

/// Builds the evidence of one failing key.
pub(crate) fn explain(h: &KeyHistory<'_>, records: &[HistoryRecord], v: &Violation) -> KeyAnomaly {
    let stuck = &h.ops[v.stuck];
    let mut position = vec![None; h.ops.len()];
    for (n, &i) in v.prefix.iter().enumerate() {
        position[i] = Some(n + 1);
    }
    let writer = v
        .prefix
        .iter()
        .rev()
        .copied()
        .find(|&i| h.ops[i].action.writes().is_some());
    let mut sources: Vec<usize> = match stuck.action.needs() {
        Some(x) if x != v.state => (0..h.ops.len())
            .filter(|&i| i != v.stuck && h.ops[i].action.writes() == Some(x))
            .collect(),
        _ => Vec::new(),
    };
    let distance = |i: usize| h.ops[i].invoke.abs_diff(stuck.invoke);
    sources.sort_by_key(|&i| distance(i));
    sources.truncate(3);

    let t0 = writer.map_or(stuck.invoke, |w| h.ops[w].invoke.min(stuck.invoke));
    let t1 = drawn_end(stuck, records);
    let overlapping = (0..h.ops.len()).filter(|&i| {
        let o = &h.ops[i];
        o.invoke <= t1 && drawn_end(o, records) >= t0
    });
    // Anchors first, then the rest nearest to the failing operation first.
    let mut rest: Vec<usize> = overlapping.collect();
    rest.sort_by_key(|&i| distance(i));
    let mut chosen: Vec<usize> = Vec::with_capacity(MAX_WINDOW);
    for i in std::iter::once(v.stuck)
        .chain(writer)
        .chain(sources)
        .chain(rest)
    {
        if chosen.len() == MAX_WINDOW {
            break;
        }
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen.sort_by_key(|&i| (h.ops[i].invoke, h.ops[i].record));

    let window = chosen
        .iter()
        .map(|&i| WindowOp {
            record: records[h.ops[i].record].clone(),
            position: position[i],
            stuck: i == v.stuck,
        })
        .collect();
    let id = |i: usize| records[h.ops[i].record].id;
    KeyAnomaly {
        key: h.key.to_string(),
        file: anomaly_file(h.key),
        ops: h.ops.len(),
        explanation: sentence(h, records, v),
        stuck: id(v.stuck),
        state: h.text(v.state).map(str::to_string),
        prefix: v.prefix.iter().map(|&i| id(i)).collect(),
        window,
    }
}

/// A value for a sentence: its first 16 characters, or `absent`.
fn short(v: Option<&str>) -> String {
    match v {
        None => "absent".to_string(),
        Some(v) if v.chars().count() > 16 => format!("{}…", v.chars().take(16).collect::<String>()),
        Some(v) => v.to_string(),
    }
}

fn sentence(h: &KeyHistory<'_>, records: &[HistoryRecord], v: &Violation) -> String {
    let stuck = &h.ops[v.stuck];
    let r = &records[stuck.record];
    let what = match stuck.action {
        Action::Read(x) => format!("read of {}", short(h.text(x))),
        Action::Write(x) => format!("write of {}", short(h.text(x))),
        Action::Cas { expect, new } => {
            format!("swap {} → {}", short(h.text(expect)), short(h.text(new)))
        }
        Action::CasRefused { expect } => {
            format!("refused swap expecting {}", short(h.text(expect)))
        }
    };
    format!(
        "{what} (op {}, worker {}, {:.6}–{:.6} s) cannot be linearized: after the longest \
         linearizable prefix ({} ops) the register holds {}, and no order of the operations \
         still pending lets it take effect before it returned",
        r.id,
        r.worker,
        r.invoke_us as f64 / 1e6,
        r.complete_us as f64 / 1e6,
        v.prefix.len(),
        short(h.text(v.state)),
    )
}
