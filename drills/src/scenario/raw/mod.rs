//! The scenario file as written (with the position of every value), and its validation into a
//! [`Scenario`].
//!
//! # Layout
//! - this file: the file's top level, `[checks]`, positions, [`parse`]
//! - `cluster`: `[cluster]`
//! - `load`: `[load]` with `duration` and `[thresholds]`, into the load's spec
//! - `fault`: `[[fault]]`

mod cluster;
mod fault;
mod load;

use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use loadgen::units::{parse_duration, parse_percent};
use serde::Deserialize;
use toml::Spanned;

use super::hosts_file;
use super::{Checks, Scenario, ScenarioError};
use cluster::RawCluster;
use fault::RawFault;
use load::RawLoad;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    duration: Spanned<String>,
    #[serde(default)]
    cluster: RawCluster,
    load: RawLoad,
    #[serde(default, rename = "fault")]
    faults: Vec<Spanned<RawFault>>,
    thresholds: Option<toml::Table>,
    #[serde(default)]
    checks: RawChecks,
    expect: Option<Spanned<String>>,
    /// Hosts to run the nodes on over SSH (as in a hosts file).
    #[serde(default, rename = "host")]
    hosts: Vec<hosts_file::HostSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawChecks {
    lost_writes: Option<bool>,
    linearizability: Option<Spanned<bool>>,
    time_limit: Option<Spanned<String>>,
    recovery_within: Option<Spanned<String>>,
    /// Nodes whose exit on their own does not make the run inconclusive.
    may_stay_down: Option<Spanned<Vec<i64>>>,
    /// Open loop: the share of the planned rate every fault-free second must reach.
    min_load_share: Option<Spanned<String>>,
    /// Closed loop: the operations per second every fault-free second must reach.
    min_ops_per_s: Option<Spanned<f64>>,
}

/// Turns byte offsets into `LINE:COL` errors.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ScenarioError {
            origin: self.origin.to_string(),
            place: format!("{line}:{col}"),
            message: message.into(),
        }
    }

    fn field(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            origin: self.origin.to_string(),
            place: path.to_string(),
            message: message.into(),
        }
    }

    fn duration(&self, v: &Spanned<String>) -> Result<Duration, ScenarioError> {
        parse_duration(v.get_ref()).map_err(|e| self.at(v.span(), e))
    }

    fn opt_duration(&self, v: &Option<Spanned<String>>) -> Result<Option<Duration>, ScenarioError> {
        v.as_ref().map(|v| self.duration(v)).transpose()
    }

    fn positive(&self, v: &Spanned<i64>, what: &str) -> Result<u64, ScenarioError> {
        match *v.get_ref() {
            n if n >= 1 => Ok(n as u64),
            n => Err(self.at(v.span(), format!("{what} must be at least 1, got {n}"))),
        }
    }

    /// Parses a value into its type; the type's own error names what it expected.
    fn typed<T: FromStr<Err = String>>(&self, v: &Spanned<String>) -> Result<T, ScenarioError> {
        v.get_ref().parse().map_err(|e| self.at(v.span(), e))
    }

    /// [`Ctx::typed`] of a value that may be left out.
    fn opt_typed<T: FromStr<Err = String>>(
        &self,
        v: &Option<Spanned<String>>,
    ) -> Result<Option<T>, ScenarioError> {
        v.as_ref().map(|v| self.typed(v)).transpose()
    }
}

pub(super) fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx { text, origin };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => ctx.at(span, message),
            None => ctx.field("0:0", message),
        }
    })?;
    let name = name(&ctx, &raw.name)?;
    let duration = ctx.duration(&raw.duration)?;
    if duration.is_zero() {
        return Err(ctx.at(raw.duration.span(), "duration must be longer than 0s"));
    }
    let cluster = cluster::cluster(&ctx, &raw.cluster)?;
    let mut spec = load::load(&ctx, &raw.load, duration)?;
    let load_from = load::load_from(&ctx, &raw.load.from)?;
    spec.thresholds = load::thresholds(&ctx, raw.thresholds)?;
    let added = raw
        .faults
        .iter()
        .filter(|f| f.get_ref().action.get_ref() == "add-node")
        .count() as u64;
    let max_id = cluster.nodes + added;
    let checks = checks(&ctx, &raw.checks, max_id)?;
    if let (Some(history), true) = (&raw.load.history, checks.linearizability)
        && !*history.get_ref()
    {
        return Err(ctx.at(
            history.span(),
            "history = false leaves the linearizability check nothing to read: keep the \
             history, or set [checks] linearizability = false",
        ));
    }
    let mut faults = raw
        .faults
        .iter()
        .map(|f| fault::fault(&ctx, f, duration, max_id))
        .collect::<Result<Vec<_>, _>>()?;
    faults.sort_by_key(|f| f.at);
    let hosts = hosts(&ctx, raw.hosts, &load_from, &raw.load.from)?;
    let scenario = Scenario {
        name,
        description: raw.description,
        cluster,
        load: spec,
        load_from,
        faults,
        checks,
        expect: ctx.opt_typed(&raw.expect)?,
        hosts,
    };
    if let Err(e) = scenario.check_target() {
        let place = raw.cluster.target.as_ref().map_or(0..0, |t| t.span());
        return Err(ctx.at(place, e));
    }
    Ok(scenario)
}

/// The name: letters, digits, '-' or '_' (it names the results folder).
fn name(ctx: &Ctx, raw: &Spanned<String>) -> Result<String, ScenarioError> {
    let name = raw.get_ref().trim().to_string();
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(ctx.at(
            raw.span(),
            "name must be non-empty letters, digits, '-' or '_'",
        ));
    }
    Ok(name)
}

fn checks(ctx: &Ctx, c: &RawChecks, max_id: u64) -> Result<Checks, ScenarioError> {
    let d = Checks::default();
    let may_stay_down = match &c.may_stay_down {
        None => Vec::new(),
        Some(ids) => ids
            .get_ref()
            .iter()
            .map(|id| match u64::try_from(*id) {
                Ok(n) if (1..=max_id).contains(&n) => Ok(n),
                _ => Err(ctx.at(
                    ids.span(),
                    format!("may_stay_down: there is no node {id} (nodes 1..={max_id})"),
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    let min_load_share = match &c.min_load_share {
        None => d.min_load_share,
        Some(v) => parse_percent(v.get_ref()).map_err(|e| ctx.at(v.span(), e))? / 100.0,
    };
    let min_ops_per_s = match &c.min_ops_per_s {
        Some(v) if !(v.get_ref().is_finite() && *v.get_ref() > 0.0) => {
            return Err(ctx.at(v.span(), "min_ops_per_s must be a number above 0"));
        }
        v => v.as_ref().map(|v| *v.get_ref()),
    };
    Ok(Checks {
        lost_writes: c.lost_writes.unwrap_or(d.lost_writes),
        linearizability: c
            .linearizability
            .as_ref()
            .map_or(d.linearizability, |l| *l.get_ref()),
        check_time_limit: ctx
            .opt_duration(&c.time_limit)?
            .unwrap_or(d.check_time_limit),
        recovery_within: ctx.opt_duration(&c.recovery_within)?,
        may_stay_down,
        min_load_share,
        min_ops_per_s,
    })
}

/// `[[host]]` tables, checked, with every `from` host among them.
fn hosts(
    ctx: &Ctx,
    hosts: Vec<hosts_file::HostSpec>,
    load_from: &[String],
    from: &Option<Spanned<Vec<String>>>,
) -> Result<Option<hosts_file::HostsFile>, ScenarioError> {
    if hosts.is_empty() {
        return Ok(None);
    }
    let file = hosts_file::HostsFile { host: hosts };
    file.check().map_err(|e| ctx.field("host", e))?;
    if let (Some(unknown), Some(from)) = (file.unknown(load_from), from) {
        return Err(ctx.at(
            from.span(),
            format!("from names host {unknown:?}, which no [[host]] table has"),
        ));
    }
    Ok(Some(file))
}
