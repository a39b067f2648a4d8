//! `[[fault]]` tables as written, and their validation into [`FaultSpec`]s.

use std::ops::Range;
use std::time::Duration;

use loadgen::units::parse_bytes_per_sec;
use raftdrill_faultfs::{ErrorOn, Keep};
use serde::Deserialize;
use toml::Spanned;

use super::Ctx;
use crate::scenario::ScenarioError;
use crate::scenario::fault::{
    Action, ClockChange, CorruptFile, CorruptHow, Direction, DiskOp, FaultSpec, Selector,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    at: Spanned<String>,
    pub(super) action: Spanned<String>,
    target: Option<Spanned<String>>,
    #[serde(rename = "for")]
    undo_after: Option<Spanned<String>>,
    latency: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    rate: Option<Spanned<String>>,
    direction: Option<Spanned<String>>,
    groups: Option<Spanned<Vec<Vec<u64>>>>,
    ops: Option<Spanned<Vec<String>>>,
    probability: Option<Spanned<f64>>,
    share: Option<Spanned<f64>>,
    how: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    bytes: Option<Spanned<u64>>,
    on: Option<Spanned<String>>,
    drop_dirty: Option<Spanned<bool>>,
    keep: Option<Spanned<String>>,
    offset: Option<Spanned<String>>,
    strobe: Option<Spanned<String>>,
}

/// One fault of a run of `duration` on a cluster whose node ids go up to `max_id`.
pub(super) fn fault(
    ctx: &Ctx,
    f: &Spanned<RawFault>,
    duration: Duration,
    max_id: u64,
) -> Result<FaultSpec, ScenarioError> {
    let r = f.get_ref();
    let at = ctx.duration(&r.at)?;
    if at >= duration {
        return Err(ctx.at(
            r.at.span(),
            format!(
                "at = {:?} is not before the end of the run ({}s)",
                r.at.get_ref(),
                duration.as_secs_f64()
            ),
        ));
    }
    let direction = r
        .direction
        .as_ref()
        .map(|d| Direction::parse(d.get_ref()).map_err(|e| ctx.at(d.span(), e)))
        .transpose()?
        .unwrap_or_default();
    let action = action(ctx, r, direction)?;
    check_keys(ctx, r, &action)?;
    let target = target(ctx, r, &action, max_id)?;
    check_groups(ctx, r, &action, max_id)?;
    Ok(FaultSpec {
        at,
        undo_after: undo_after(ctx, r, &action)?,
        action,
        target,
    })
}

/// The action a fault's `action` names, with the keys it needs.
fn action(ctx: &Ctx, r: &RawFault, direction: Direction) -> Result<Action, ScenarioError> {
    Ok(match r.action.get_ref().as_str() {
        "kill" => Action::Kill,
        "stop" => Action::Stop,
        "pause" => Action::Pause,
        "restart" => Action::Restart,
        "wipe" => Action::Wipe,
        "wipe-in-place" => Action::WipeInPlace,
        "isolate" => Action::Isolate,
        "partition" => Action::Partition {
            groups: r.groups.as_ref().map(|g| g.get_ref().clone()),
        },
        "delay" => Action::Delay {
            latency: latency(ctx, r, "delay needs latency = \"100ms\"")?,
            jitter: ctx.opt_duration(&r.jitter)?.unwrap_or_default(),
            direction,
        },
        "bandwidth" => {
            let rate = r
                .rate
                .as_ref()
                .ok_or_else(|| ctx.at(r.action.span(), "bandwidth needs rate = \"64KiB/s\""))?;
            Action::Bandwidth {
                bytes_per_sec: parse_bytes_per_sec(rate.get_ref())
                    .map_err(|e| ctx.at(rate.span(), e))?,
                direction,
            }
        }
        "blackhole" => Action::Blackhole { direction },
        "reset" => Action::Reset { direction },
        "loss" => Action::Loss {
            probability: required_probability(ctx, r, "loss needs probability = 0.2")?,
            direction,
        },
        "heal" => Action::Heal,
        "disk-delay" => disk_delay(ctx, r)?,
        "disk-stall" => Action::DiskStall,
        "disk-error" => disk_error(ctx, r)?,
        "disk-full" => Action::DiskFull,
        "power-loss" => Action::PowerLoss {
            keep: parsed(ctx, &r.keep, keep)?.unwrap_or_default(),
        },
        "cpu-limit" => Action::CpuLimit {
            share: share(ctx, r)?,
        },
        "corrupt" => corrupt(ctx, r)?,
        "clock" => clock(ctx, r)?,
        "add-node" => Action::AddNode,
        "remove-node" => Action::RemoveNode,
        other => {
            return Err(ctx.at(
                r.action.span(),
                format!(
                    "unknown action {other:?}; use kill, stop, pause, restart, wipe, wipe-in-place, isolate, partition, delay, bandwidth, blackhole, reset, loss, heal, add-node, remove-node, disk-delay, disk-stall, disk-error, disk-full, power-loss, cpu-limit, corrupt or clock"
                ),
            ));
        }
    })
}

/// The `latency` an action needs; `missing` says so when it is not there.
fn latency(ctx: &Ctx, r: &RawFault, missing: &str) -> Result<Duration, ScenarioError> {
    let latency = r
        .latency
        .as_ref()
        .ok_or_else(|| ctx.at(r.action.span(), missing))?;
    ctx.duration(latency)
}

/// `disk-delay`: its latency, jitter and the operations it slows (write and fsync unless
/// `ops` says).
fn disk_delay(ctx: &Ctx, r: &RawFault) -> Result<Action, ScenarioError> {
    let latency = r
        .latency
        .as_ref()
        .ok_or_else(|| ctx.at(r.action.span(), "disk-delay needs latency = \"20ms\""))?;
    let ops = match &r.ops {
        None => vec![DiskOp::Write, DiskOp::Fsync],
        Some(list) => {
            let ops = list
                .get_ref()
                .iter()
                .map(|o| DiskOp::parse(o))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ctx.at(list.span(), e))?;
            if ops.is_empty() {
                return Err(ctx.at(list.span(), "ops needs at least one of write, fsync, read"));
            }
            ops
        }
    };
    Ok(Action::DiskDelay {
        latency: ctx.duration(latency)?,
        jitter: ctx.opt_duration(&r.jitter)?.unwrap_or_default(),
        ops,
    })
}

/// `disk-error`: its probability, the operations that fail (`on`: write, fsync, or both
/// unless given) and whether a failed fsync loses the data (`drop_dirty`, which needs failing
/// fsyncs).
fn disk_error(ctx: &Ctx, r: &RawFault) -> Result<Action, ScenarioError> {
    let on = parsed(ctx, &r.on, |w| match w {
        "write" => Ok(ErrorOn::Write),
        "fsync" => Ok(ErrorOn::Fsync),
        "write-or-fsync" => Ok(ErrorOn::WriteOrFsync),
        other => Err(format!(
            "unknown operation {other:?}; use write, fsync or write-or-fsync"
        )),
    })?
    .unwrap_or_default();
    let drop_dirty = r.drop_dirty.as_ref().is_some_and(|d| *d.get_ref());
    if let (true, ErrorOn::Write, Some(d)) = (drop_dirty, on, &r.drop_dirty) {
        return Err(ctx.at(
            d.span(),
            "drop_dirty loses the data of a failed fsync: it needs on = \"fsync\" or \"write-or-fsync\"",
        ));
    }
    Ok(Action::DiskError {
        probability: probability(ctx, r)?,
        on,
        drop_dirty,
    })
}

/// `power-loss`'s `keep`: what survives of the unsynced writes.
fn keep(word: &str) -> Result<Keep, String> {
    match word {
        "none" => Ok(Keep::None),
        "torn" => Ok(Keep::Torn),
        "reordered" => Ok(Keep::Reordered),
        other => Err(format!(
            "unknown keep {other:?}; use none, torn or reordered"
        )),
    }
}

/// `disk-error`'s probability, in (0, 1]; 1 unless given.
fn probability(ctx: &Ctx, r: &RawFault) -> Result<f64, ScenarioError> {
    match &r.probability {
        None => Ok(1.0),
        Some(p) if *p.get_ref() > 0.0 && *p.get_ref() <= 1.0 => Ok(*p.get_ref()),
        Some(p) => Err(ctx.at(
            p.span(),
            format!("probability must be in (0, 1], got {}", p.get_ref()),
        )),
    }
}

/// A probability the action cannot do without; `missing` says so.
fn required_probability(ctx: &Ctx, r: &RawFault, missing: &str) -> Result<f64, ScenarioError> {
    if r.probability.is_none() {
        return Err(ctx.at(r.action.span(), missing));
    }
    probability(ctx, r)
}

/// `cpu-limit`'s share of one core, in (0, 64].
fn share(ctx: &Ctx, r: &RawFault) -> Result<f64, ScenarioError> {
    let s = r.share.as_ref().ok_or_else(|| {
        ctx.at(
            r.action.span(),
            "cpu-limit needs share = 0.05 (of one core)",
        )
    })?;
    match *s.get_ref() {
        v if v > 0.0 && v <= 64.0 => Ok(v),
        v => Err(ctx.at(s.span(), format!("share must be in (0, 64] cores, got {v}"))),
    }
}

/// `corrupt`: how (flip unless given), which file (the log unless given), and how many bytes
/// (1 unless given; a truncation takes none: it cuts at the range's start).
fn corrupt(ctx: &Ctx, r: &RawFault) -> Result<Action, ScenarioError> {
    let how = parsed(ctx, &r.how, CorruptHow::parse)?.unwrap_or(CorruptHow::Flip);
    let file = parsed(ctx, &r.file, CorruptFile::parse)?.unwrap_or(CorruptFile::Log);
    let bytes = match (&r.bytes, how) {
        (Some(b), CorruptHow::Truncate) => {
            return Err(ctx.at(
                b.span(),
                "a truncation cuts the file at a point: bytes has no meaning for it",
            ));
        }
        (Some(b), _) if *b.get_ref() == 0 || *b.get_ref() > 1 << 20 => {
            return Err(ctx.at(b.span(), "bytes must be within 1..=1048576"));
        }
        (Some(b), _) => *b.get_ref(),
        (None, _) => 1,
    };
    Ok(Action::Corrupt { how, file, bytes })
}

/// `clock`: `offset` alone jumps, `rate = "0.1x"` changes the rate, `strobe` with `offset`
/// jumps back and forth.
fn clock(ctx: &Ctx, r: &RawFault) -> Result<Action, ScenarioError> {
    let offset = match &r.offset {
        None => None,
        Some(o) => Some(signed_seconds(o.get_ref()).map_err(|e| ctx.at(o.span(), e))?),
    };
    let change = match (offset, &r.rate, &r.strobe) {
        (Some(_), Some(rate), _) | (None, Some(rate), Some(_)) => {
            return Err(ctx.at(
                rate.span(),
                "a clock fault is one of: offset (a jump), rate, or strobe with offset",
            ));
        }
        (None, Some(rate), None) => {
            let text = rate.get_ref();
            let value = text.strip_suffix('x').unwrap_or(text).trim().parse::<f64>();
            match value {
                Ok(v) if (0.1..=10.0).contains(&v) => ClockChange::Rate(v),
                _ => {
                    return Err(ctx.at(
                        rate.span(),
                        format!("a clock rate is 0.1x to 10x, got {text:?}"),
                    ));
                }
            }
        }
        (Some(offset), None, Some(every)) => ClockChange::Strobe {
            offset,
            every: ctx.duration(every)?,
        },
        (Some(offset), None, None) => ClockChange::Jump(offset),
        (None, None, Some(s)) => {
            return Err(ctx.at(s.span(), "strobe needs offset = \"2s\" (how far it jumps)"));
        }
        (None, None, None) => {
            return Err(ctx.at(
                r.action.span(),
                "clock needs offset = \"-5s\" (a jump), rate = \"0.1x\", or strobe = \"1s\" with offset",
            ));
        }
    };
    if let ClockChange::Strobe { every, .. } = change
        && every < Duration::from_millis(100)
    {
        return Err(ctx.at(
            r.strobe.as_ref().map_or(r.action.span(), |s| s.span()),
            "strobe must be at least 100ms",
        ));
    }
    Ok(Action::Clock { change })
}

/// `+5s`, `-1.5s`, `250ms`: a signed duration in seconds, not zero.
fn signed_seconds(text: &str) -> Result<f64, String> {
    let (sign, rest) = match text.trim().strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, text.trim().trim_start_matches('+')),
    };
    let d = loadgen::units::parse_duration(rest)
        .map_err(|e| format!("offset {text:?} is not a duration such as \"-5s\": {e}"))?;
    if d.is_zero() {
        return Err("offset must not be 0s".into());
    }
    Ok(sign * d.as_secs_f64())
}

/// An optional word parsed by `parse`, its error placed at the word.
fn parsed<T>(
    ctx: &Ctx,
    v: &Option<Spanned<String>>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ScenarioError> {
    v.as_ref()
        .map(|v| parse(v.get_ref()).map_err(|e| ctx.at(v.span(), e)))
        .transpose()
}

/// No key that means nothing for the action: `latency`, `rate`, `direction` and the others
/// belong to some actions only.
fn check_keys(ctx: &Ctx, r: &RawFault, action: &Action) -> Result<(), ScenarioError> {
    let takes = |key: &str| match key {
        "latency" | "jitter" => matches!(action, Action::Delay { .. } | Action::DiskDelay { .. }),
        "rate" => matches!(action, Action::Bandwidth { .. } | Action::Clock { .. }),
        "offset" | "strobe" => matches!(action, Action::Clock { .. }),
        "ops" => matches!(action, Action::DiskDelay { .. }),
        "probability" => matches!(action, Action::DiskError { .. } | Action::Loss { .. }),
        "share" => matches!(action, Action::CpuLimit { .. }),
        "how" | "file" | "bytes" => matches!(action, Action::Corrupt { .. }),
        "on" | "drop_dirty" => matches!(action, Action::DiskError { .. }),
        "keep" => matches!(action, Action::PowerLoss { .. }),
        "direction" => matches!(
            action,
            Action::Delay { .. }
                | Action::Bandwidth { .. }
                | Action::Blackhole { .. }
                | Action::Reset { .. }
                | Action::Loss { .. }
        ),
        _ => false,
    };
    let span = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.span());
    let given: [(Option<Range<usize>>, &str); 15] = [
        (span(&r.latency), "latency"),
        (span(&r.jitter), "jitter"),
        (span(&r.rate), "rate"),
        (r.ops.as_ref().map(|v| v.span()), "ops"),
        (r.probability.as_ref().map(|v| v.span()), "probability"),
        (r.share.as_ref().map(|v| v.span()), "share"),
        (span(&r.direction), "direction"),
        (span(&r.how), "how"),
        (span(&r.file), "file"),
        (r.bytes.as_ref().map(|v| v.span()), "bytes"),
        (span(&r.on), "on"),
        (r.drop_dirty.as_ref().map(|v| v.span()), "drop_dirty"),
        (span(&r.keep), "keep"),
        (span(&r.offset), "offset"),
        (span(&r.strobe), "strobe"),
    ];
    match given
        .into_iter()
        .find(|(v, key)| v.is_some() && !takes(key))
    {
        Some((Some(span), key)) => Err(ctx.at(
            span,
            format!("{key} has no meaning for action {:?}", action.name()),
        )),
        _ => Ok(()),
    }
}

/// The nodes the action hits: `heal` and `add-node` take none, a partition with groups
/// needs none, every other action one that can exist.
fn target(
    ctx: &Ctx,
    r: &RawFault,
    action: &Action,
    max_id: u64,
) -> Result<Selector, ScenarioError> {
    match (&r.target, action) {
        (Some(t), Action::Heal | Action::AddNode) => {
            Err(ctx.at(t.span(), format!("{} takes no target", action.name())))
        }
        (None, Action::Heal | Action::AddNode) => Ok(Selector::All),
        (None, Action::Partition { groups: Some(_) }) => Ok(Selector::All),
        (None, _) => Err(ctx.at(r.action.span(), format!("{} needs a target", action.name()))),
        (Some(t), _) => {
            let sel = Selector::parse(t.get_ref()).map_err(|e| ctx.at(t.span(), e))?;
            if let Selector::Node(id) = sel
                && id > max_id
            {
                return Err(ctx.at(
                    t.span(),
                    format!("node:{id} does not exist: the cluster has nodes 1..={max_id}"),
                ));
            }
            Ok(sel)
        }
    }
}

/// A partition's groups: at least two, of nodes that exist, none in two.
fn check_groups(
    ctx: &Ctx,
    r: &RawFault,
    action: &Action,
    max_id: u64,
) -> Result<(), ScenarioError> {
    let (
        Action::Partition {
            groups: Some(groups),
        },
        Some(g),
    ) = (action, &r.groups)
    else {
        return Ok(());
    };
    let mut seen = std::collections::BTreeSet::new();
    for id in groups.iter().flatten() {
        if *id == 0 || *id > max_id {
            return Err(ctx.at(
                g.span(),
                format!("group member {id} does not exist: the cluster has nodes 1..={max_id}"),
            ));
        }
        if !seen.insert(*id) {
            return Err(ctx.at(g.span(), format!("node {id} is in two groups")));
        }
    }
    if groups.len() < 2 {
        return Err(ctx.at(g.span(), "a partition needs at least two groups"));
    }
    Ok(())
}

/// `for`: longer than 0s, and only on an action that can be undone.
fn undo_after(ctx: &Ctx, r: &RawFault, action: &Action) -> Result<Option<Duration>, ScenarioError> {
    let Some(v) = &r.undo_after else {
        return Ok(None);
    };
    let d = ctx.duration(v)?;
    if !action.undoable() {
        return Err(ctx.at(
            v.span(),
            format!("{} cannot be undone, so it takes no `for`", action.name()),
        ));
    }
    if d.is_zero() {
        return Err(ctx.at(v.span(), "for must be longer than 0s"));
    }
    Ok(Some(d))
}
