//! `raftdrill export chaos-mesh`: a scenario's fault schedule as one Chaos Mesh Workflow.
//!
//! Each fault becomes a branch of the Workflow's entry (a `Parallel` node): a `Suspend` for the
//! fault's `at`, then the chaos object for its window (`for`; until a later `heal` for a link
//! fault; else until the run's end). Branches overlap as the faults do. Chaos Mesh picks pods
//! by label, so the fault's target is mapped to labels ([`kinds::Ctx::pods`]); a target or an
//! action with no equivalent is refused with its reason unless the user skips it, and where
//! the equivalent differs in a way that matters the export says so (a note on stderr and in
//! the Workflow's annotations). The load is not exported: Chaos Mesh drives none.

pub mod kinds;

use std::time::Duration;

use serde_json::{Value, json};

use crate::scenario::{Action, FaultSpec, Scenario};
use kinds::{Ctx, go_duration};

/// What a user gives beside the scenario.
#[derive(Debug, Clone, Default)]
pub struct ChaosMeshOptions {
    /// The Workflow's name (default `raftdrill-<scenario>`).
    pub name: Option<String>,
    /// The namespace of the Workflow and of the store's pods.
    pub namespace: String,
    /// Labels every pod of the store carries (`app=mystore`).
    pub selector: Vec<(String, String)>,
    /// The StatefulSet whose pod `<name>-<N-1>` is node N (`node:N`, partition groups).
    pub statefulset: Option<String>,
    /// Labels only the leader's pod carries (for `leader`).
    pub leader: Vec<(String, String)>,
    /// Labels only followers' pods carry (for `follower`, `minority`).
    pub follower: Vec<(String, String)>,
    /// Where the store's data volume is mounted in its pods (for disk faults).
    pub volume_path: Option<String>,
    /// Leave out the faults with no equivalent (listed) instead of refusing the scenario.
    pub skip_unsupported: bool,
}

/// A fault left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The fault as the scenario reads (`kill leader at 10s for 5s`).
    pub fault: String,
    /// Why Chaos Mesh has no equivalent.
    pub reason: String,
}

/// The Workflow and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Export {
    /// The Workflow object.
    pub workflow: Value,
    /// Faults left out (only with `skip_unsupported`).
    pub skipped: Vec<Skipped>,
    /// Where an exported fault differs from raftdrill's.
    pub notes: Vec<String>,
}

/// Why a scenario was not exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Faults with no equivalent, and no `skip_unsupported`.
    #[error("{} with no Chaos Mesh equivalent: {} (--skip-unsupported leaves them out)",
        count(.0.len()), list(.0))]
    Unsupported(Vec<Skipped>),
    /// Nothing left to export.
    #[error("{}", nothing(.0))]
    Nothing(Vec<Skipped>),
    /// An option is unusable.
    #[error("{0}")]
    Option(String),
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 fault".into()
    } else {
        format!("{n} faults")
    }
}

fn nothing(skipped: &[Skipped]) -> String {
    match skipped {
        [] => "the scenario schedules no fault to export".into(),
        _ => format!(
            "no fault of the scenario has a Chaos Mesh equivalent: {}",
            list(skipped)
        ),
    }
}

fn list(skipped: &[Skipped]) -> String {
    let items: Vec<String> = skipped
        .iter()
        .map(|s| format!("{} ({})", s.fault, s.reason))
        .collect();
    items.join("; ")
}

/// A name Kubernetes takes (DNS-1123 label): lower case, digits and `-`, at most 63.
fn dns_label(text: &str) -> String {
    let mut out: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    out.trim_matches('-').to_string()
}

/// When fault `i`'s window ends: at `at + for`; a link fault also at the next `heal`; every
/// fault at the run's end, when raftdrill undoes what is left.
fn window_end(faults: &[FaultSpec], i: usize, run: Duration) -> Duration {
    let f = &faults[i];
    let mut end = f.undo_after.map_or(run, |d| f.at + d).min(run);
    if f.action.is_link_fault()
        && let Some(heal) = faults
            .iter()
            .find(|h| matches!(h.action, Action::Heal) && h.at > f.at)
    {
        end = end.min(heal.at);
    }
    end
}

/// The scenario's faults as one Workflow, or why not.
pub fn export(scenario: &Scenario, opts: &ChaosMeshOptions) -> Result<Export, ExportError> {
    if opts.selector.is_empty() {
        return Err(ExportError::Option(
            "give the labels of the store's pods: --selector KEY=VALUE".into(),
        ));
    }
    let ctx = Ctx {
        opts,
        nodes: scenario.cluster.nodes,
    };
    let run = scenario.load.duration;
    let mut templates = Vec::new();
    let mut branches = Vec::new();
    let (mut skipped, mut notes) = (Vec::new(), Vec::new());
    for (i, f) in scenario.faults.iter().enumerate() {
        if matches!(f.action, Action::Heal) {
            // A heal ends the link faults before it (their windows); it is no object itself.
            continue;
        }
        let length = window_end(&scenario.faults, i, run).saturating_sub(f.at);
        let mapped = match ctx.chaos(&f.action, &f.target, length) {
            Ok(m) => m,
            Err(reason) => {
                skipped.push(Skipped {
                    fault: f.to_string(),
                    reason,
                });
                continue;
            }
        };
        notes.extend(mapped.notes.iter().map(|n| format!("{f}: {n}")));
        let many = mapped.objects.len() > 1;
        for (j, chaos) in mapped.objects.into_iter().enumerate() {
            let base = match many {
                true => format!("f{}-{}-{}", i + 1, f.action.name(), j + 1),
                false => format!("f{}-{}", i + 1, f.action.name()),
            };
            branches.push(branch(&mut templates, &base, f.at, length, chaos));
        }
    }
    if !skipped.is_empty() && !opts.skip_unsupported {
        return Err(ExportError::Unsupported(skipped));
    }
    if branches.is_empty() {
        return Err(ExportError::Nothing(skipped));
    }
    templates.insert(
        0,
        json!({ "name": "drill", "templateType": "Parallel", "deadline": go_duration(run),
                "children": branches }),
    );
    let workflow = workflow(scenario, opts, templates, &skipped, &notes);
    Ok(Export {
        workflow,
        skipped,
        notes,
    })
}

/// Adds one fault's templates (a Serial of a Suspend and the chaos); returns the Serial's name.
fn branch(
    templates: &mut Vec<Value>,
    base: &str,
    at: Duration,
    length: Duration,
    chaos: kinds::Chaos,
) -> String {
    let mut steps = Vec::new();
    if !at.is_zero() {
        let wait = format!("{base}-wait");
        templates
            .push(json!({ "name": wait, "templateType": "Suspend", "deadline": go_duration(at) }));
        steps.push(wait);
    }
    let mut t =
        json!({ "name": base, "templateType": chaos.kind.name(), "deadline": go_duration(length) });
    t[chaos.kind.field()] = chaos.spec;
    templates.push(t);
    steps.push(base.to_string());
    let serial = format!("{base}-branch");
    templates.push(json!({ "name": serial, "templateType": "Serial", "children": steps }));
    serial
}

fn workflow(
    scenario: &Scenario,
    opts: &ChaosMeshOptions,
    templates: Vec<Value>,
    skipped: &[Skipped],
    notes: &[String],
) -> Value {
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| dns_label(&format!("raftdrill-{}", scenario.name)));
    let mut annotations = json!({
        "raftdrill/scenario": scenario.name,
        "raftdrill/version": env!("CARGO_PKG_VERSION"),
    });
    if !skipped.is_empty() {
        annotations["raftdrill/skipped"] = json!(list(skipped));
    }
    if !notes.is_empty() {
        annotations["raftdrill/notes"] = json!(notes.join("\n"));
    }
    json!({
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": "Workflow",
        "metadata": { "name": name, "namespace": opts.namespace, "annotations": annotations },
        "spec": { "entry": "drill", "templates": templates },
    })
}

/// The Workflow as YAML, with a header saying what made it and what it leaves out.
pub fn to_yaml(export: &Export, scenario: &Scenario) -> Result<String, serde_norway::Error> {
    let mut out = format!(
        "# A Chaos Mesh Workflow made by raftdrill {} from the scenario {:?}.\n\
         # Only the faults: start the load with it, for the run's {}, e.g.\n\
         #   raftdrill load --endpoints URL,URL,URL --duration {}\n",
        env!("CARGO_PKG_VERSION"),
        scenario.name,
        go_duration(scenario.load.duration),
        go_duration(scenario.load.duration),
    );
    for s in &export.skipped {
        out.push_str(&format!("# skipped: {} ({})\n", s.fault, s.reason));
    }
    for n in &export.notes {
        out.push_str(&format!("# note: {n}\n"));
    }
    out.push_str(&serde_norway::to_string(&ordered(&export.workflow))?);
    Ok(out)
}

/// The keys a reader looks for first, in this order; the rest follow alphabetically.
const FIRST: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "templateType",
    "deadline",
    "children",
    "entry",
    "action",
    "mode",
    "value",
    "selector",
];

/// `value` as YAML with its keys in reading order (a JSON object's order is alphabetical).
fn ordered(value: &Value) -> serde_norway::Value {
    use serde_norway::Value as Y;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| (FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()), *k));
            Y::Mapping(
                keys.into_iter()
                    .map(|k| (Y::String(k.clone()), ordered(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Y::Sequence(items.iter().map(ordered).collect()),
        other => serde_norway::to_value(other).unwrap_or(Y::Null),
    }
}

#[cfg(test)]
mod tests;
