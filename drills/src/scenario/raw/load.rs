//! `[load]` as written, and its validation, with the run's `duration` and `[thresholds]`,
//! into the one [`LoadSpec`]; `from` (where the load runs) apart from it.

use std::time::Duration;

use loadgen::thresholds::Thresholds;
use loadgen::{LoadModel, LoadSpec};
use serde::Deserialize;
use toml::Spanned;

use super::Ctx;
use crate::scenario::ScenarioError;

/// A scenario's warmup unless its `[load]` says otherwise.
const WARMUP: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    pub(super) workload: Spanned<String>,
    keys: Option<Spanned<i64>>,
    distribution: Option<Spanned<String>>,
    value_size: Option<Spanned<i64>>,
    rate: Option<Spanned<f64>>,
    users: Option<Spanned<i64>>,
    think_time: Option<Spanned<String>>,
    warmup: Option<Spanned<String>>,
    consistency: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    /// `history = false`: no `history.jsonl` (nor a linearizability check to read it).
    pub(super) history: Option<Spanned<bool>>,
    engine: Option<Spanned<String>>,
    /// Hosts that run the load (`raftdrill load` over SSH), instead of this machine.
    pub(super) from: Option<Spanned<Vec<String>>>,
}

/// The `[thresholds]` table over the seed's defaults.
pub(super) fn thresholds(
    ctx: &Ctx,
    table: Option<toml::Table>,
) -> Result<Thresholds, ScenarioError> {
    match table {
        None => Ok(Thresholds::default()),
        Some(table) => {
            let own =
                Thresholds::from_toml(table).map_err(|e| ctx.field("thresholds", e.to_string()))?;
            Ok(Thresholds::over_defaults(own))
        }
    }
}

/// The load of a run of `duration` (judged by the seed's thresholds until the caller puts
/// the file's in).
pub(super) fn load(ctx: &Ctx, l: &RawLoad, duration: Duration) -> Result<LoadSpec, ScenarioError> {
    let mut spec = LoadSpec::new(ctx.typed(&l.workload)?, model(ctx, l)?, duration);
    spec.warmup = ctx.opt_duration(&l.warmup)?.unwrap_or(WARMUP);
    if let Some(w) = &l.warmup
        && spec.warmup >= duration
    {
        return Err(ctx.at(w.span(), "warmup must be shorter than the duration"));
    }
    if let Some(t) = &l.timeout {
        spec.timeout = ctx.duration(t)?;
        if spec.timeout.is_zero() {
            return Err(ctx.at(t.span(), "timeout must be longer than 0s"));
        }
    }
    if let Some(k) = &l.keys {
        spec.keys = ctx.positive(k, "keys")?;
    }
    spec.distribution = ctx.opt_typed(&l.distribution)?;
    if let Some(v) = &l.value_size {
        spec.value_size = ctx.positive(v, "value_size")? as usize;
    }
    spec.consistency = ctx.opt_typed(&l.consistency)?.unwrap_or_default();
    spec.history = l.history.as_ref().is_none_or(|h| *h.get_ref());
    spec.engine = ctx.opt_typed(&l.engine)?.unwrap_or_default();
    Ok(spec)
}

/// `rate = R` (open loop) or `users = U` (closed loop, with `think_time`), not both.
fn model(ctx: &Ctx, l: &RawLoad) -> Result<LoadModel, ScenarioError> {
    match (&l.rate, &l.users) {
        (Some(_), Some(u)) => Err(ctx.at(
            u.span(),
            "give either rate (open loop) or users (closed loop), not both",
        )),
        (None, None) => Err(ctx.at(
            l.workload.span(),
            "[load] needs rate = R (open loop) or users = U (closed loop)",
        )),
        (Some(r), None) => {
            let rate = *r.get_ref();
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(ctx.at(
                    r.span(),
                    format!("rate must be a positive number of ops/s, got {rate}"),
                ));
            }
            Ok(LoadModel::open(rate))
        }
        (None, Some(u)) => Ok(LoadModel::closed(
            ctx.positive(u, "users")? as usize,
            ctx.opt_duration(&l.think_time)?,
        )),
    }
}

/// `from = ["h4", "h5"]`: host names, none empty, none twice.
pub(super) fn load_from(
    ctx: &Ctx,
    from: &Option<Spanned<Vec<String>>>,
) -> Result<Vec<String>, ScenarioError> {
    let Some(from) = from else {
        return Ok(Vec::new());
    };
    let names = from.get_ref();
    if names.is_empty() {
        return Err(ctx.at(from.span(), "from needs at least one host name"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if n.trim().is_empty() {
            return Err(ctx.at(from.span(), "from has an empty host name"));
        }
        if !seen.insert(n) {
            return Err(ctx.at(from.span(), format!("from names host {n:?} twice")));
        }
    }
    Ok(names.clone())
}
