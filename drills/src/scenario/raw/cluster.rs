//! `[cluster]` as written, and its validation into a [`ClusterSpec`].

use loadgen::units::{RangeError, parse_duration, parse_duration_range};
use serde::Deserialize;
use toml::Spanned;

use super::Ctx;
use crate::scenario::{ClusterSpec, ScenarioError};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    nodes: Option<Spanned<i64>>,
    pub(super) target: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
    fsync: Option<Spanned<String>>,
    snapshot_every: Option<Spanned<i64>>,
    apply_delay: Option<Spanned<String>>,
    heartbeat: Option<Spanned<String>>,
    election_timeout: Option<Spanned<String>>,
    #[serde(default)]
    unsafe_reads: bool,
    #[serde(default)]
    unsafe_fsync_retry: bool,
}

pub(super) fn cluster(ctx: &Ctx, c: &RawCluster) -> Result<ClusterSpec, ScenarioError> {
    let defaults = ClusterSpec::default();
    let nodes = match &c.nodes {
        Some(n) => {
            let v = ctx.positive(n, "nodes")?;
            if v > 9 {
                return Err(ctx.at(
                    n.span(),
                    format!("at most 9 nodes fit this machine, got {v}"),
                ));
            }
            v
        }
        None => defaults.nodes,
    };
    Ok(ClusterSpec {
        nodes,
        target: ctx.opt_typed(&c.target)?.unwrap_or_default(),
        store: ctx.opt_typed(&c.store)?.unwrap_or_default(),
        fsync: ctx.opt_typed(&c.fsync)?.unwrap_or_default(),
        snapshot_every: c
            .snapshot_every
            .as_ref()
            .map(|v| ctx.positive(v, "snapshot_every"))
            .transpose()?,
        apply_delay: ctx.opt_duration(&c.apply_delay)?,
        heartbeat: ctx.opt_duration(&c.heartbeat)?,
        election_timeout: c
            .election_timeout
            .as_ref()
            .map(|v| election_timeout(ctx, v))
            .transpose()?,
        unsafe_reads: c.unsafe_reads,
        unsafe_fsync_retry: c.unsafe_fsync_retry,
    })
}

/// `election_timeout = "150ms..300ms"`.
fn election_timeout(
    ctx: &Ctx,
    v: &Spanned<String>,
) -> Result<(std::time::Duration, std::time::Duration), ScenarioError> {
    parse_duration_range(v.get_ref(), parse_duration).map_err(|e| {
        ctx.at(
            v.span(),
            match e {
                RangeError::Shape => {
                    "election_timeout must be MIN..MAX, like \"150ms..300ms\"".into()
                }
                RangeError::Bound(message) => message,
                RangeError::Order => "election_timeout needs 0 < MIN < MAX".into(),
            },
        )
    })
}
