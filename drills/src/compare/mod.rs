//! `raftdrill compare BASE NEW`: two results folders of the same kind (a run, a repeat, a suite
//! or a capacity search), every figure side by side, each marked better, worse or within
//! noise, and the limits checked: p99, throughput and recovery by default, any figure with
//! `--limit`. A gated latency held at the request timeout on both sides cannot show a change:
//! it is reported unchecked, and the comparison is then inconclusive unless a limit is crossed.
//!
//! # Layout
//! - this file: [`Folder`] (a folder read as its kind and its figures), [`compare`],
//!   [`Comparison`], [`CompareError`]
//! - [`rules`]: within noise, better or worse; the limits
//! - [`output`]: the printed table, `compare.md` and `compare.json`

pub mod output;
pub mod rules;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::rules::{Class, Limits, classify, crosses, saturated};
use crate::report::doc::{ClusterDoc, LoadDoc};
use crate::report::figures::{self, Better, Figure, LimitKind, Spread};
use crate::report::repeat::{self, RepeatSummary};
use crate::report::suite::{self, SuiteIndex};
use crate::report::{ReportError, RunFolder, read_json};

/// BASE and NEW cannot be compared (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A folder could not be read as any kind of results folder.
    #[error("{0}")]
    Unreadable(#[from] ReportError),
    /// The folders are of different kinds, or of different scenarios.
    #[error("cannot compare: {0}")]
    Incomparable(String),
    /// A `--limit` names no figure, or has the wrong sign.
    #[error("{0}")]
    Limit(String),
}

/// What kind of folder it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One run (`summary.json`).
    Run,
    /// N runs of one scenario (`summary.json` with `"kind": "repeat"`).
    Repeat,
    /// The scenario library (`suite.json`).
    Suite,
    /// A capacity search (`capacity.json`).
    Capacity,
}

impl Kind {
    /// `a run`, `a repeat`, ...
    pub fn article(self) -> &'static str {
        match self {
            Kind::Run => "a run",
            Kind::Repeat => "a repeat",
            Kind::Suite => "a suite",
            Kind::Capacity => "a capacity search",
        }
    }
}

/// One scenario's figures in a folder.
#[derive(Debug, Clone)]
pub struct Group {
    /// Scenario name.
    pub scenario: String,
    /// The store under test.
    pub target: String,
    /// Its cluster, when known.
    pub cluster: Option<ClusterDoc>,
    /// Its load, when known.
    pub load: Option<LoadDoc>,
    /// Anything else that makes two groups measure different things (a capacity SLO).
    pub setting: Option<String>,
    /// The figures.
    pub figures: Vec<Figure>,
}

/// A results folder read as its kind.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Where it is.
    pub dir: PathBuf,
    /// Its kind.
    pub kind: Kind,
    /// One group, or one per scenario of a suite.
    pub groups: Vec<Group>,
    /// Said of its file's format: written by an older raftdrill, or a newer one.
    pub format_note: Option<String>,
}

/// The kind field of a `summary.json`, if it has one.
#[derive(Deserialize)]
struct KindProbe {
    #[serde(default)]
    kind: Option<String>,
}

/// `capacity.json`, the parts compare reads.
#[derive(Deserialize)]
struct CapacityDoc {
    scenario: String,
    nodes: u64,
    workload: String,
    slo: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    with_faults: bool,
    steps: Vec<serde_json::Value>,
    answer: Option<CapacityAnswer>,
}

#[derive(Deserialize)]
struct CapacityAnswer {
    achieved_rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    success_rate: f64,
}

/// The group of a run folder.
pub fn run_group(dir: &Path) -> Result<Group, ReportError> {
    let run = RunFolder::load(dir)?;
    let s = run.summary;
    Ok(Group {
        target: s.target().to_string(),
        figures: figures::of_run(&s),
        scenario: s.scenario,
        cluster: s.cluster,
        load: Some(s.load),
        setting: None,
    })
}

/// The group of a repeat folder.
pub fn repeat_group(r: RepeatSummary) -> Group {
    Group {
        target: r
            .cluster
            .as_ref()
            .map_or("reference".into(), |c| c.target.clone()),
        scenario: r.scenario,
        cluster: r.cluster,
        load: Some(r.load),
        setting: None,
        figures: r.figures,
    }
}

/// The group of a run or a repeat folder, whichever it is.
pub fn scenario_group(dir: &Path) -> Result<(Kind, Group), ReportError> {
    let probe: KindProbe = read_json(&dir.join("summary.json"))?;
    if probe.kind.as_deref() == Some(repeat::KIND) {
        Ok((
            Kind::Repeat,
            repeat_group(read_json(&dir.join("summary.json"))?),
        ))
    } else {
        Ok((Kind::Run, run_group(dir)?))
    }
}

impl Folder {
    /// Reads a folder: a suite if it has `suite.json`, a capacity search if it has
    /// `capacity.json`, else a run or a repeat by its `summary.json`.
    pub fn load(dir: &Path) -> Result<Folder, CompareError> {
        if !dir.is_dir() {
            return Err(CompareError::Incomparable(format!(
                "{} is not a folder",
                dir.display()
            )));
        }
        use crate::versioned::{note_for, schema};
        let (kind, groups) = if dir.join(suite::INDEX_JSON).exists() {
            let index: SuiteIndex = read_json(&dir.join(suite::INDEX_JSON))?;
            let groups = index
                .rows
                .iter()
                .filter(|r| r.error.is_none())
                .map(|r| scenario_group(&dir.join(&r.dir)).map(|(_, g)| g))
                .collect::<Result<_, _>>()?;
            (Kind::Suite, groups)
        } else if dir.join("capacity.json").exists() {
            let c: CapacityDoc = read_json(&dir.join("capacity.json"))?;
            (Kind::Capacity, vec![capacity_group(c)])
        } else if dir.join("summary.json").exists() {
            let (kind, g) = scenario_group(dir)?;
            (kind, vec![g])
        } else {
            return Err(CompareError::Incomparable(format!(
                "{} has no summary.json, suite.json or capacity.json: not a raftdrill results folder",
                dir.display()
            )));
        };
        let format_note = match kind {
            Kind::Suite => note_for(&dir.join(suite::INDEX_JSON), schema::SUITE),
            Kind::Capacity => note_for(&dir.join("capacity.json"), schema::CAPACITY),
            Kind::Repeat => note_for(&dir.join("summary.json"), schema::REPEAT),
            Kind::Run => note_for(&dir.join("summary.json"), schema::SUMMARY),
        };
        Ok(Folder {
            dir: dir.to_path_buf(),
            kind,
            groups,
            format_note,
        })
    }
}

fn capacity_group(c: CapacityDoc) -> Group {
    let a = c.answer.as_ref();
    let fig = Figure::new;
    Group {
        scenario: c.scenario,
        target: c.target.unwrap_or_else(|| "reference".into()),
        cluster: None,
        load: None,
        setting: Some(format!(
            "{} nodes, workload {}, SLO {}{}",
            c.nodes,
            c.workload,
            c.slo,
            if c.with_faults { ", with faults" } else { "" }
        )),
        figures: vec![
            fig(
                "max_sustainable_rate",
                "ops/s",
                Better::Higher,
                Some(LimitKind::Tps),
                a.map(|a| a.achieved_rate),
            ),
            fig(
                "answer.p50_ms",
                "ms",
                Better::Lower,
                None,
                a.map(|a| a.p50_ms),
            ),
            fig(
                "answer.p99_ms",
                "ms",
                Better::Lower,
                None,
                a.map(|a| a.p99_ms),
            ),
            fig(
                "answer.success_rate",
                "%",
                Better::Higher,
                None,
                a.map(|a| a.success_rate),
            ),
            fig("steps", "", Better::Lower, None, Some(c.steps.len() as f64)),
        ],
    }
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Row {
    /// The scenario (of a suite; the one scenario otherwise).
    pub scenario: String,
    /// The figure.
    pub figure: String,
    /// Its unit.
    pub unit: String,
    /// BASE's value.
    pub base: Option<Spread>,
    /// NEW's value.
    pub new: Option<Spread>,
    /// Change of the median, percent of BASE.
    pub change_pct: Option<f64>,
    /// Better, worse, within noise.
    pub class: Class,
    /// The limit that watches it, percent.
    pub limit_pct: Option<f64>,
    /// Whether the limit is crossed.
    pub crossed: bool,
    /// A latency held at the request timeout on both sides: it cannot show a change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub saturated: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Comparison {
    /// BASE's folder.
    pub base: PathBuf,
    /// NEW's folder.
    pub new: PathBuf,
    /// Their kind.
    pub kind: Kind,
    /// Differences of setting a reader must know: another store, another load.
    pub notes: Vec<String>,
    /// The limits applied.
    pub limits: Limits,
    /// Every figure.
    pub rows: Vec<Row>,
    /// The figures past their limit, `scenario: figure`.
    pub crossed: Vec<String>,
    /// The figures a limit watches that cannot show a change (held at the request timeout on
    /// both sides), `scenario: figure`.
    pub unchecked: Vec<String>,
    /// 1 when a limit is crossed, else 5 when a watched figure went unchecked, else 0.
    pub exit_code: u8,
}

/// Compares two folders.
pub fn compare(base: &Folder, new: &Folder, limits: Limits) -> Result<Comparison, CompareError> {
    if base.kind != new.kind {
        return Err(CompareError::Incomparable(format!(
            "BASE {} is {} and NEW {} is {}",
            base.dir.display(),
            base.kind.article(),
            new.dir.display(),
            new.kind.article()
        )));
    }
    let (pairs, mut notes) = pair_groups(base, new)?;
    notes.extend(base.format_note.iter().chain(&new.format_note).cloned());
    limits
        .check(
            pairs
                .iter()
                .flat_map(|(b, n)| b.figures.iter().chain(&n.figures)),
        )
        .map_err(CompareError::Limit)?;
    let mut rows = Vec::new();
    for (b, n) in pairs {
        notes.extend(setting_notes(b, n));
        rows.extend(group_rows(b, n, &limits));
    }
    let named = |keep: fn(&Row) -> bool| -> Vec<String> {
        rows.iter()
            .filter(|r| keep(r))
            .map(|r| format!("{}: {}", r.scenario, r.figure))
            .collect()
    };
    let crossed = named(|r| r.crossed);
    let unchecked = named(|r| r.saturated && r.limit_pct.is_some());
    let exit_code = if !crossed.is_empty() {
        crate::exit::Exit::ThresholdBroken
    } else if !unchecked.is_empty() {
        crate::exit::Exit::Inconclusive
    } else {
        crate::exit::Exit::Pass
    } as u8;
    Ok(Comparison {
        base: base.dir.clone(),
        new: new.dir.clone(),
        kind: base.kind,
        notes,
        limits,
        exit_code,
        rows,
        crossed,
        unchecked,
    })
}

/// A scenario's group in BASE and in NEW.
type Pair<'a> = (&'a Group, &'a Group);

/// The groups of the same scenario in both folders, and a note for each group in only one.
fn pair_groups<'a>(
    base: &'a Folder,
    new: &'a Folder,
) -> Result<(Vec<Pair<'a>>, Vec<String>), CompareError> {
    let mut notes = Vec::new();
    let mut pairs = Vec::new();
    for b in &base.groups {
        match new.groups.iter().find(|n| n.scenario == b.scenario) {
            Some(n) => pairs.push((b, n)),
            None => notes.push(format!("{}: only in BASE", b.scenario)),
        }
    }
    for n in &new.groups {
        if !base.groups.iter().any(|b| b.scenario == n.scenario) {
            notes.push(format!("{}: only in NEW", n.scenario));
        }
    }
    if pairs.is_empty() {
        let names = |f: &Folder| {
            f.groups
                .iter()
                .map(|g| g.scenario.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(CompareError::Incomparable(format!(
            "no scenario in common (BASE: {}; NEW: {})",
            names(base),
            names(new)
        )));
    }
    Ok((pairs, notes))
}

/// One row per figure of either group (BASE's order, then NEW's own), each classified and
/// held to its limit.
fn group_rows(b: &Group, n: &Group, limits: &Limits) -> Vec<Row> {
    let mut names: Vec<&Figure> = b.figures.iter().collect();
    names.extend(
        n.figures
            .iter()
            .filter(|f| !b.figures.iter().any(|g| g.name == f.name)),
    );
    // The shorter of the two request timeouts, when both summaries say.
    let timeout_ms = |g: &Group| g.load.as_ref()?.timeout_ms;
    let timeout = timeout_ms(b).zip(timeout_ms(n)).map(|(b, n)| b.min(n));
    let mut rows = Vec::new();
    for f in names {
        let get = |g: &Group| {
            g.figures
                .iter()
                .find(|x| x.name == f.name)
                .and_then(|x| x.value)
        };
        let (bv, nv) = (get(b), get(n));
        let Some(class) = classify(bv, nv, f.better, &f.unit) else {
            continue;
        };
        let limit_pct = limits.of(f);
        let saturated = saturated(bv, nv, &f.unit, timeout);
        let crossed = !saturated && crosses(class, limit_pct, bv, nv);
        rows.push(Row {
            scenario: b.scenario.clone(),
            figure: f.name.clone(),
            unit: f.unit.clone(),
            base: bv,
            new: nv,
            change_pct: bv
                .zip(nv)
                .map(|(b, n)| rules::change_pct(b.median, n.median)),
            class,
            limit_pct,
            crossed,
            saturated,
        });
    }
    rows
}

/// What differs between two groups besides the figures.
fn setting_notes(b: &Group, n: &Group) -> Vec<String> {
    let mut notes = Vec::new();
    let s = &b.scenario;
    if b.target != n.target {
        notes.push(format!(
            "{s}: cluster.target differs: BASE ran on {}, NEW on {}",
            b.target, n.target
        ));
    }
    if let (Some(bc), Some(nc)) = (&b.cluster, &n.cluster) {
        if bc.nodes != nc.nodes {
            notes.push(format!("{s}: nodes differ: {} vs {}", bc.nodes, nc.nodes));
        }
        if (&bc.store, &bc.fsync) != (&nc.store, &nc.fsync) {
            notes.push(format!(
                "{s}: storage differs: store {} fsync {} vs store {} fsync {}",
                bc.store.as_deref().unwrap_or("–"),
                bc.fsync.as_deref().unwrap_or("–"),
                nc.store.as_deref().unwrap_or("–"),
                nc.fsync.as_deref().unwrap_or("–")
            ));
        }
    }
    if let (Some(bl), Some(nl)) = (&b.load, &n.load)
        && (&bl.workload, &bl.model, bl.rate, bl.users)
            != (&nl.workload, &nl.model, nl.rate, nl.users)
    {
        notes.push(format!(
            "{s}: load differs: workload {} {} vs workload {} {}",
            bl.workload,
            load_level(bl),
            nl.workload,
            load_level(nl)
        ));
    }
    if b.setting != n.setting {
        notes.push(format!(
            "{s}: setting differs: {} vs {}",
            b.setting.as_deref().unwrap_or("–"),
            n.setting.as_deref().unwrap_or("–")
        ));
    }
    notes
}

fn load_level(l: &LoadDoc) -> String {
    match (l.rate, l.users) {
        (Some(r), _) => format!("at {r} ops/s"),
        (_, Some(u)) => format!("with {u} users"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
