//! The scenario file as written (with the position of every value), and its validation into a
//! [`Scenario`].

use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use loadgen::thresholds::Thresholds;
use loadgen::units::{parse_bytes_per_sec, parse_duration};
use loadgen::{LoadModel, Plan};
use serde::Deserialize;
use toml::Spanned;

use super::fault::{Action, Direction, DiskOp, FaultSpec, Selector};
use super::{Checks, ClusterSpec, LoadSpec, Scenario, ScenarioError};

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
    hosts: Vec<crate::hosts::HostSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    nodes: Option<Spanned<i64>>,
    target: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
    fsync: Option<Spanned<String>>,
    snapshot_every: Option<Spanned<i64>>,
    apply_delay: Option<Spanned<String>>,
    heartbeat: Option<Spanned<String>>,
    election_timeout: Option<Spanned<String>>,
    #[serde(default)]
    unsafe_reads: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    workload: Spanned<String>,
    keys: Option<Spanned<i64>>,
    distribution: Option<Spanned<String>>,
    value_size: Option<Spanned<i64>>,
    rate: Option<Spanned<f64>>,
    users: Option<Spanned<i64>>,
    think_time: Option<Spanned<String>>,
    warmup: Option<Spanned<String>>,
    consistency: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    #[serde(default = "yes")]
    history: bool,
    engine: Option<Spanned<String>>,
    /// Hosts that run the load (`raftdrill load` over SSH), instead of this machine.
    from: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at: Spanned<String>,
    action: Spanned<String>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecks {
    #[serde(default = "yes")]
    lost_writes: bool,
    #[serde(default = "yes")]
    linearizability: bool,
    time_limit: Option<Spanned<String>>,
    recovery_within: Option<Spanned<String>>,
}

impl Default for RawChecks {
    fn default() -> Self {
        Self {
            lost_writes: true,
            linearizability: true,
            time_limit: None,
            recovery_within: None,
        }
    }
}

fn yes() -> bool {
    true
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

    let name = raw.name.get_ref().trim().to_string();
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(ctx.at(
            raw.name.span(),
            "name must be non-empty letters, digits, '-' or '_'",
        ));
    }
    let duration = ctx.duration(&raw.duration)?;
    if duration.is_zero() {
        return Err(ctx.at(raw.duration.span(), "duration must be longer than 0s"));
    }
    let cluster = cluster(&ctx, &raw.cluster)?;
    let load = load(&ctx, &raw.load, duration)?;
    let thresholds = match raw.thresholds {
        None => Thresholds::default(),
        Some(table) => {
            let own =
                Thresholds::from_toml(table).map_err(|e| ctx.field("thresholds", e.to_string()))?;
            Thresholds::over_defaults(own)
        }
    };
    let checks = Checks {
        lost_writes: raw.checks.lost_writes,
        linearizability: raw.checks.linearizability,
        check_time_limit: ctx
            .opt_duration(&raw.checks.time_limit)?
            .unwrap_or(Checks::default().check_time_limit),
        recovery_within: ctx.opt_duration(&raw.checks.recovery_within)?,
    };
    let added = raw
        .faults
        .iter()
        .filter(|f| f.get_ref().action.get_ref() == "add-node")
        .count() as u64;
    let max_id = cluster.nodes + added;
    let mut faults = raw
        .faults
        .iter()
        .map(|f| fault(&ctx, f, duration, max_id))
        .collect::<Result<Vec<_>, _>>()?;
    faults.sort_by_key(|f| f.at);
    let hosts = if raw.hosts.is_empty() {
        None
    } else {
        let file = crate::hosts::HostsFile { host: raw.hosts };
        file.check().map_err(|e| ctx.field("host", e))?;
        if let (Some(unknown), Some(from)) = (file.unknown(&load.from), &raw.load.from) {
            return Err(ctx.at(
                from.span(),
                format!("from names host {unknown:?}, which no [[host]] table has"),
            ));
        }
        Some(file)
    };
    let scenario = Scenario {
        name,
        description: raw.description,
        duration,
        cluster,
        load,
        faults,
        thresholds,
        checks,
        expect: raw.expect.as_ref().map(|e| ctx.typed(e)).transpose()?,
        hosts,
    };
    if let Err(e) = scenario.check_target() {
        let place = raw.cluster.target.as_ref().map_or(0..0, |t| t.span());
        return Err(ctx.at(place, e));
    }
    Ok(scenario)
}

fn cluster(ctx: &Ctx, c: &RawCluster) -> Result<ClusterSpec, ScenarioError> {
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
    let election_timeout = match &c.election_timeout {
        None => None,
        Some(v) => {
            let (a, b) = v.get_ref().split_once("..").ok_or_else(|| {
                ctx.at(
                    v.span(),
                    "election_timeout must be MIN..MAX, like \"150ms..300ms\"",
                )
            })?;
            let parse = |s: &str| parse_duration(s).map_err(|e| ctx.at(v.span(), e));
            let (a, b) = (parse(a)?, parse(b)?);
            if a.is_zero() || a >= b {
                return Err(ctx.at(v.span(), "election_timeout needs 0 < MIN < MAX"));
            }
            Some((a, b))
        }
    };
    Ok(ClusterSpec {
        nodes,
        target: c
            .target
            .as_ref()
            .map(|t| ctx.typed(t))
            .transpose()?
            .unwrap_or_default(),
        store: c
            .store
            .as_ref()
            .map(|s| ctx.typed(s))
            .transpose()?
            .unwrap_or_default(),
        fsync: c
            .fsync
            .as_ref()
            .map(|s| ctx.typed(s))
            .transpose()?
            .unwrap_or_default(),
        snapshot_every: c
            .snapshot_every
            .as_ref()
            .map(|v| ctx.positive(v, "snapshot_every"))
            .transpose()?,
        apply_delay: ctx.opt_duration(&c.apply_delay)?,
        heartbeat: ctx.opt_duration(&c.heartbeat)?,
        election_timeout,
        unsafe_reads: c.unsafe_reads,
    })
}

/// `from = ["h4", "h5"]`: host names, none empty, none twice.
fn load_hosts(
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

fn load(ctx: &Ctx, l: &RawLoad, duration: Duration) -> Result<LoadSpec, ScenarioError> {
    let defaults = LoadSpec::default();
    let workload = ctx.typed(&l.workload)?;
    let model = match (&l.rate, &l.users) {
        (Some(_), Some(u)) => {
            return Err(ctx.at(
                u.span(),
                "give either rate (open loop) or users (closed loop), not both",
            ));
        }
        (None, None) => {
            return Err(ctx.at(
                l.workload.span(),
                "[load] needs rate = R (open loop) or users = U (closed loop)",
            ));
        }
        (Some(r), None) => {
            let rate = *r.get_ref();
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(ctx.at(
                    r.span(),
                    format!("rate must be a positive number of ops/s, got {rate}"),
                ));
            }
            LoadModel::open(rate)
        }
        (None, Some(u)) => LoadModel::closed(
            ctx.positive(u, "users")? as usize,
            ctx.opt_duration(&l.think_time)?,
        ),
    };
    let warmup = ctx.opt_duration(&l.warmup)?.unwrap_or(defaults.warmup);
    if let Some(w) = &l.warmup
        && warmup >= duration
    {
        return Err(ctx.at(w.span(), "warmup must be shorter than the duration"));
    }
    let timeout = match &l.timeout {
        None => defaults.timeout,
        Some(t) => {
            let d = ctx.duration(t)?;
            if d.is_zero() {
                return Err(ctx.at(t.span(), "timeout must be longer than 0s"));
            }
            d
        }
    };
    Ok(LoadSpec {
        workload,
        keys: l
            .keys
            .as_ref()
            .map(|k| ctx.positive(k, "keys"))
            .transpose()?
            .unwrap_or(defaults.keys),
        distribution: l.distribution.as_ref().map(|d| ctx.typed(d)).transpose()?,
        value_size: l
            .value_size
            .as_ref()
            .map(|v| ctx.positive(v, "value_size"))
            .transpose()?
            .map_or(defaults.value_size, |v| v as usize),
        model,
        plan: Plan::Constant,
        warmup,
        consistency: l
            .consistency
            .as_ref()
            .map(|c| ctx.typed(c))
            .transpose()?
            .unwrap_or_default(),
        timeout,
        history: l.history,
        from: load_hosts(ctx, &l.from)?,
        engine: l
            .engine
            .as_ref()
            .map(|e| ctx.typed(e))
            .transpose()?
            .unwrap_or_default(),
    })
}

fn fault(
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
    let action = match r.action.get_ref().as_str() {
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
        "delay" => {
            let latency = r
                .latency
                .as_ref()
                .ok_or_else(|| ctx.at(r.action.span(), "delay needs latency = \"100ms\""))?;
            Action::Delay {
                latency: ctx.duration(latency)?,
                jitter: ctx.opt_duration(&r.jitter)?.unwrap_or_default(),
                direction,
            }
        }
        "bandwidth" => {
            let rate = r
                .rate
                .as_ref()
                .ok_or_else(|| ctx.at(r.action.span(), "bandwidth needs rate = \"64KiB/s\""))?;
            let bytes_per_sec =
                parse_bytes_per_sec(rate.get_ref()).map_err(|e| ctx.at(rate.span(), e))?;
            Action::Bandwidth {
                bytes_per_sec,
                direction,
            }
        }
        "blackhole" => Action::Blackhole { direction },
        "reset" => Action::Reset { direction },
        "heal" => Action::Heal,
        "disk-delay" => {
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
                        return Err(
                            ctx.at(list.span(), "ops needs at least one of write, fsync, read")
                        );
                    }
                    ops
                }
            };
            Action::DiskDelay {
                latency: ctx.duration(latency)?,
                jitter: ctx.opt_duration(&r.jitter)?.unwrap_or_default(),
                ops,
            }
        }
        "disk-stall" => Action::DiskStall,
        "disk-error" => {
            let probability = match &r.probability {
                None => 1.0,
                Some(p) if *p.get_ref() > 0.0 && *p.get_ref() <= 1.0 => *p.get_ref(),
                Some(p) => {
                    return Err(ctx.at(
                        p.span(),
                        format!("probability must be in (0, 1], got {}", p.get_ref()),
                    ));
                }
            };
            Action::DiskError { probability }
        }
        "disk-full" => Action::DiskFull,
        "power-loss" => Action::PowerLoss,
        "add-node" => Action::AddNode,
        "remove-node" => Action::RemoveNode,
        other => {
            return Err(ctx.at(
                r.action.span(),
                format!(
                    "unknown action {other:?}; use kill, stop, pause, restart, wipe, wipe-in-place, isolate, partition, delay, bandwidth, blackhole, reset, heal, add-node, remove-node, disk-delay, disk-stall, disk-error, disk-full or power-loss"
                ),
            ));
        }
    };
    let takes = |key: &str| match key {
        "latency" | "jitter" => matches!(action, Action::Delay { .. } | Action::DiskDelay { .. }),
        "rate" => matches!(action, Action::Bandwidth { .. }),
        "ops" => matches!(action, Action::DiskDelay { .. }),
        "probability" => matches!(action, Action::DiskError { .. }),
        _ => false,
    };
    let stray = [
        (r.latency.as_ref().map(|v| v.span()), "latency"),
        (r.jitter.as_ref().map(|v| v.span()), "jitter"),
        (r.rate.as_ref().map(|v| v.span()), "rate"),
        (r.ops.as_ref().map(|v| v.span()), "ops"),
        (r.probability.as_ref().map(|v| v.span()), "probability"),
    ]
    .into_iter()
    .find(|(v, key)| v.is_some() && !takes(key));
    if let Some((Some(span), key)) = stray {
        return Err(ctx.at(
            span,
            format!("{key} has no meaning for action {:?}", action.name()),
        ));
    }
    if let (Some(d), false) = (
        &r.direction,
        matches!(
            action,
            Action::Delay { .. }
                | Action::Bandwidth { .. }
                | Action::Blackhole { .. }
                | Action::Reset { .. }
        ),
    ) {
        return Err(ctx.at(
            d.span(),
            format!("direction has no meaning for action {:?}", action.name()),
        ));
    }
    let target = match (&r.target, &action) {
        (Some(t), Action::Heal | Action::AddNode) => {
            return Err(ctx.at(t.span(), format!("{} takes no target", action.name())));
        }
        (None, Action::Heal | Action::AddNode) => Selector::All,
        (None, Action::Partition { groups: Some(_) }) => Selector::All,
        (None, _) => {
            return Err(ctx.at(r.action.span(), format!("{} needs a target", action.name())));
        }
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
            sel
        }
    };
    if let (
        Action::Partition {
            groups: Some(groups),
        },
        Some(g),
    ) = (&action, &r.groups)
    {
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
    }
    let undo_after = ctx.opt_duration(&r.undo_after)?;
    if let (Some(_), Some(v)) = (undo_after, &r.undo_after)
        && !action.undoable()
    {
        return Err(ctx.at(
            v.span(),
            format!("{} cannot be undone, so it takes no `for`", action.name()),
        ));
    }
    if undo_after.is_some_and(|d| d.is_zero()) {
        return Err(ctx.at(
            r.undo_after.as_ref().expect("set").span(),
            "for must be longer than 0s",
        ));
    }
    Ok(FaultSpec {
        at,
        action,
        target,
        undo_after,
    })
}
