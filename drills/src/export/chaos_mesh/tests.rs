//! The export against Chaos Mesh's own types. The kube-custom-resources-rs crate (crates.io,
//! 0BSD) holds Rust types that kopium generated from Chaos Mesh's CRDs (`config/crd/bases` of
//! chaos-mesh/chaos-mesh, mirrored in that crate's `crd-catalog`). An object is valid here when
//! it reads into its kind's type and writes back unchanged: a required field missing, a value
//! outside an enum or of the wrong type fails the read, and a field the CRD does not have (a
//! typo, a wrong nesting) is dropped by it and fails the comparison. The Workflow's own
//! structure (entry, children, template types, durations) is checked beside it.

use std::collections::BTreeSet;
use std::time::Duration;

use kube_custom_resources_rs::chaos_mesh_org::v1alpha1 as cm;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;
use crate::scenario::BUILTIN;
use kinds::Kind;

fn opts() -> ChaosMeshOptions {
    ChaosMeshOptions {
        namespace: "store".into(),
        selector: vec![("app".into(), "mystore".into())],
        ..Default::default()
    }
}

/// Every option given: what the library's scenarios need to export what can be.
fn full() -> ChaosMeshOptions {
    ChaosMeshOptions {
        statefulset: Some("mystore".into()),
        leader: vec![("role".into(), "leader".into())],
        follower: vec![("role".into(), "follower".into())],
        volume_path: Some("/var/lib/mystore".into()),
        skip_unsupported: true,
        ..opts()
    }
}

/// A 20 s scenario with `faults`.
fn scenario(faults: &str) -> Scenario {
    scenario_for("20s", faults)
}

fn scenario_for(duration: &str, faults: &str) -> Scenario {
    let text = format!(
        "name = \"t\"\nduration = \"{duration}\"\n[load]\nworkload = \"a\"\nkeys = 100\nrate = 100\n{faults}"
    );
    Scenario::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Where `a` and `b` first differ, as a path.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(v), Some(w)) => first_difference(v, w, &format!("{path}.{k}")),
                (Some(_), None) => Some(format!("{path}.{k} is not in the CRD")),
                (None, _) => Some(format!("{path}.{k} was added")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} became {b}")),
    }
}

/// Reads `object` as a `T` and writes it back: it must come back unchanged.
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).unwrap();
    match first_difference(object, &back, "") {
        None => Ok(()),
        Some(d) => Err(d),
    }
}

/// A Go duration: one or more numbers with units (`1h2m3.5s`, `250ms`).
fn is_go_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

/// Checks a Workflow against Chaos Mesh's types and its own structure.
fn validate(workflow: &Value) -> Result<(), String> {
    round_trip::<cm::workflows::Workflow>(workflow).map_err(|e| format!("Workflow: {e}"))?;
    let templates = workflow["spec"]["templates"]
        .as_array()
        .ok_or("no templates")?;
    let names: BTreeSet<&str> = templates
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    if names.len() != templates.len() {
        return Err("template names are not unique".into());
    }
    let entry = workflow["spec"]["entry"].as_str().unwrap_or_default();
    if !names.contains(entry) {
        return Err(format!("the entry {entry:?} is no template"));
    }
    let kinds = [Kind::Pod, Kind::Network, Kind::Io, Kind::Time, Kind::Stress];
    for t in templates {
        let name = t["name"].as_str().unwrap_or_default();
        let ty = t["templateType"].as_str().unwrap_or_default();
        if let Some(d) = t.get("deadline").and_then(Value::as_str)
            && !is_go_duration(d)
        {
            return Err(format!("{name}: deadline {d:?}"));
        }
        for child in t["children"].as_array().into_iter().flatten() {
            if !names.contains(child.as_str().unwrap_or_default()) {
                return Err(format!("{name}: child {child} is no template"));
            }
        }
        match ty {
            "Serial" | "Parallel" => {}
            "Suspend" if t.get("deadline").is_some() => {}
            _ => {
                let kind = kinds
                    .into_iter()
                    .find(|k| k.name() == ty)
                    .ok_or_else(|| format!("{name}: template type {ty:?}"))?;
                let others = kinds
                    .iter()
                    .filter(|k| **k != kind && t.get(k.field()).is_some());
                if others.count() > 0 || t.get(kind.field()).is_none() {
                    return Err(format!("{name}: {ty} without (only) its {}", kind.field()));
                }
                standalone(kind, name, &t[kind.field()]).map_err(|e| format!("{name}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// The spec embedded in a template, as the object it would be on its own.
fn standalone(kind: Kind, name: &str, spec: &Value) -> Result<(), String> {
    let object = json!({ "apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind.name(),
                         "metadata": { "name": name, "namespace": "store" }, "spec": spec });
    match kind {
        Kind::Pod => round_trip::<cm::podchaos::PodChaos>(&object),
        Kind::Network => round_trip::<cm::networkchaos::NetworkChaos>(&object),
        Kind::Io => round_trip::<cm::iochaos::IOChaos>(&object),
        Kind::Time => round_trip::<cm::timechaos::TimeChaos>(&object),
        Kind::Stress => round_trip::<cm::stresschaos::StressChaos>(&object),
    }
}

fn template<'a>(w: &'a Value, name: &str) -> &'a Value {
    w["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no template {name}"))
}

/// Every built-in scenario exports (what can be), and every object it writes is valid against
/// Chaos Mesh's types; every fault is either a branch or skipped with a reason.
#[test]
fn every_builtin_scenario_exports_valid_chaos_mesh_objects() {
    let mut kinds_seen = BTreeSet::new();
    for (name, _) in BUILTIN {
        let s = Scenario::find(Some(name)).unwrap();
        let faults = s
            .faults
            .iter()
            .filter(|f| !matches!(f.action, Action::Heal))
            .count();
        match export(&s, &full()) {
            Ok(e) => {
                validate(&e.workflow).unwrap_or_else(|err| panic!("{name}: {err}"));
                let yaml = to_yaml(&e, &s).unwrap();
                let back: Value = serde_norway::from_str(&yaml).unwrap();
                assert_eq!(
                    back, e.workflow,
                    "{name}: the YAML reads back as the object"
                );
                let branches = e.workflow["spec"]["templates"][0]["children"]
                    .as_array()
                    .unwrap()
                    .len();
                assert!(
                    branches + e.skipped.len() >= faults,
                    "{name}: a fault went missing"
                );
                for t in e.workflow["spec"]["templates"].as_array().unwrap() {
                    kinds_seen.insert(t["templateType"].as_str().unwrap().to_string());
                }
            }
            Err(ExportError::Nothing(skipped)) => assert_eq!(skipped.len(), faults, "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // The library's clock faults are rates, which TimeChaos cannot do; a jump is tested below.
    for kind in [
        "PodChaos",
        "NetworkChaos",
        "IOChaos",
        "StressChaos",
        "Suspend",
    ] {
        assert!(
            kinds_seen.contains(kind),
            "no library scenario exports a {kind}: {kinds_seen:?}"
        );
    }
}

/// The validator fails on what Chaos Mesh would refuse: a field it does not have, a value
/// outside an enum, a wrong type, a missing required field, a dangling child.
#[test]
fn the_validator_refuses_planted_mistakes() {
    let s = scenario(
        "[[fault]]\nat = \"2s\"\naction = \"delay\"\ntarget = \"node:1\"\nlatency = \"50ms\"\nfor = \"3s\"\n",
    );
    let good = export(&s, &full()).unwrap().workflow;
    validate(&good).unwrap();
    let plant = |f: &dyn Fn(&mut Value)| {
        let mut w = good.clone();
        f(&mut w);
        validate(&w).expect_err("a planted mistake passed")
    };
    // Template 2 is the delay itself (0 is the entry, 1 the wait before it).
    let in_chaos = |f: &'static dyn Fn(&mut Value)| {
        move |w: &mut Value| f(&mut w["spec"]["templates"][2]["networkChaos"])
    };
    assert!(plant(&in_chaos(&|c| c["delay"]["latencyy"] = json!("1s"))).contains("latencyy"));
    plant(&in_chaos(&|c| c["action"] = json!("delays")));
    plant(&in_chaos(&|c| c["mode"] = json!(3)));
    plant(&in_chaos(&|c| {
        c.as_object_mut().unwrap().remove("selector");
    }));
    plant(&in_chaos(&|c| c["direction"] = json!("sideways")));
    plant(&|w| w["spec"]["templates"][0]["children"][0] = json!("nowhere"));
    plant(&|w| w["spec"]["templates"][1]["deadline"] = json!("2 seconds"));
    plant(&|w| w["spec"]["templates"][2]["templateType"] = json!("PodChaos"));
    plant(&|w| w["spec"]["entrypoint"] = json!("drill"));
}

/// The default drill (leader kill) needs the leader's label, says so, and then holds the pod
/// down exactly over the fault's window.
#[test]
fn a_leader_kill_needs_the_leaders_label_and_keeps_its_window() {
    let s = Scenario::find(None).unwrap();
    let err = export(&s, &opts()).unwrap_err().to_string();
    assert!(
        err.contains("--leader-label") && err.contains("kill leader"),
        "{err}"
    );
    let o = ChaosMeshOptions {
        leader: vec![("role".into(), "leader".into())],
        ..opts()
    };
    let e = export(&s, &o).unwrap();
    validate(&e.workflow).unwrap();
    let f = &s.faults[0];
    let wait = template(&e.workflow, "f1-kill-wait");
    assert_eq!(wait["deadline"], json!(go_duration(f.at)));
    let kill = template(&e.workflow, "f1-kill");
    let window = f.undo_after.unwrap();
    assert_eq!(kill["deadline"], json!(go_duration(window)));
    let spec = &kill["podChaos"];
    assert_eq!(spec["action"], "pod-failure");
    assert_eq!(spec["duration"], json!(go_duration(window)));
    assert_eq!(spec["mode"], "one");
    assert_eq!(
        spec["selector"]["labelSelectors"],
        json!({ "app": "mystore", "role": "leader" })
    );
    assert_eq!(spec["selector"]["namespaces"], json!(["store"]));
    assert_eq!(
        e.workflow["metadata"]["name"],
        json!(format!("raftdrill-{}", s.name))
    );
    assert!(
        !e.notes.is_empty(),
        "pod-failure is not a SIGKILL: a note says so"
    );
}

/// A link fault ends at the next heal; a fault without `for` at the run's end; a partition's
/// groups are cut pair by pair, by pod name.
#[test]
fn windows_end_at_a_heal_or_the_runs_end_and_groups_are_cut_pairwise() {
    let s = scenario_for(
        "40s",
        "\
         [[fault]]\nat = \"5s\"\naction = \"isolate\"\ntarget = \"node:2\"\n\
         [[fault]]\nat = \"12s\"\naction = \"heal\"\n\
         [[fault]]\nat = \"15s\"\naction = \"partition\"\ngroups = [[1], [2], [3]]\nfor = \"5s\"\n\
         [[fault]]\nat = \"30s\"\naction = \"loss\"\ntarget = \"node:3\"\nprobability = 0.25\n",
    );
    let e = export(&s, &full()).unwrap();
    validate(&e.workflow).unwrap();
    assert_eq!(template(&e.workflow, "f1-isolate")["deadline"], "7s");
    let pairs: Vec<&Value> = (1..=3)
        .map(|j| template(&e.workflow, &format!("f3-partition-{j}")))
        .collect();
    let names = |side: &Value| side["selector"]["expressionSelectors"][0]["values"].clone();
    assert_eq!(names(&pairs[0]["networkChaos"]), json!(["mystore-0"]));
    assert_eq!(
        names(&pairs[0]["networkChaos"]["target"]),
        json!(["mystore-1"])
    );
    assert_eq!(
        names(&pairs[2]["networkChaos"]["target"]),
        json!(["mystore-2"])
    );
    let loss = template(&e.workflow, "f4-loss");
    assert_eq!(loss["deadline"], "10s", "until the run's end");
    assert_eq!(loss["networkChaos"]["loss"]["loss"], "25");
    assert_eq!(loss["networkChaos"]["direction"], "both");
    // node:3's other side is the store's other pods, by name.
    let other = &loss["networkChaos"]["target"]["selector"]["expressionSelectors"][0];
    assert_eq!(other["operator"], "NotIn");
    assert_eq!(other["values"], json!(["mystore-2"]));
    let children = e.workflow["spec"]["templates"][0]["children"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(children, 1 + 3 + 1);
}

/// Faults with no equivalent are refused by name with the reason, or skipped and listed.
#[test]
fn faults_without_an_equivalent_are_refused_or_listed() {
    let s = scenario(
        "[[fault]]\nat = \"2s\"\naction = \"pause\"\ntarget = \"node:1\"\nfor = \"2s\"\n\
         [[fault]]\nat = \"5s\"\naction = \"clock\"\ntarget = \"node:2\"\nrate = \"0.5x\"\nfor = \"2s\"\n\
         [[fault]]\nat = \"8s\"\naction = \"clock\"\ntarget = \"node:2\"\noffset = \"-90s\"\nfor = \"2s\"\n",
    );
    let err = export(&s, &full_strict()).unwrap_err().to_string();
    assert!(
        err.starts_with("2 faults with no Chaos Mesh equivalent"),
        "{err}"
    );
    assert!(err.contains("SIGSTOP") && err.contains("rate"), "{err}");
    let e = export(&s, &full()).unwrap();
    validate(&e.workflow).unwrap();
    assert_eq!(e.skipped.len(), 2);
    assert!(
        e.workflow["metadata"]["annotations"]["raftdrill/skipped"]
            .as_str()
            .unwrap()
            .contains("pause")
    );
    assert_eq!(
        template(&e.workflow, "f3-clock")["timeChaos"]["timeOffset"],
        "-90000ms"
    );
    let only_pause = scenario("[[fault]]\nat = \"2s\"\naction = \"pause\"\ntarget = \"node:1\"\n");
    assert!(matches!(
        export(&only_pause, &full()),
        Err(ExportError::Nothing(_))
    ));
}

fn full_strict() -> ChaosMeshOptions {
    ChaosMeshOptions {
        skip_unsupported: false,
        ..full()
    }
}

#[test]
fn durations_are_written_in_gos_syntax() {
    assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(go_duration(Duration::from_micros(2500)), "2500us");
    for d in ["5s", "1500ms", "1h2m3.5s", "250us"] {
        assert!(is_go_duration(d), "{d}");
    }
    for d in ["", "5", "s", "5 s", "5sec"] {
        assert!(!is_go_duration(d), "{d}");
    }
}

/// A one-way link fault is refused (raftdrill's direction picks connections, Chaos Mesh's
/// packets); a cut leader faces the pods without its label, not itself.
#[test]
fn one_way_links_are_refused_and_a_cut_leader_faces_the_others() {
    let one_way = scenario(
        "[[fault]]\nat = \"2s\"\naction = \"blackhole\"\ntarget = \"leader\"\ndirection = \"in\"\nfor = \"3s\"\n",
    );
    let err = export(&one_way, &full_strict()).unwrap_err().to_string();
    assert!(
        err.contains("direction = \"in\"") && err.contains("packets"),
        "{err}"
    );

    let s = scenario(
        "[[fault]]\nat = \"2s\"\naction = \"isolate\"\ntarget = \"leader\"\nfor = \"3s\"\n",
    );
    let e = export(&s, &full()).unwrap();
    validate(&e.workflow).unwrap();
    let cut = &template(&e.workflow, "f1-isolate")["networkChaos"];
    assert_eq!(cut["action"], "partition");
    assert_eq!(cut["selector"]["labelSelectors"]["role"], "leader");
    assert_eq!(
        cut["target"]["selector"]["expressionSelectors"],
        json!([{ "key": "role", "operator": "NotIn", "values": ["leader"] }])
    );
    assert!(e.notes.is_empty(), "{:?}", e.notes);
    // A follower's other side cannot be said by labels: every pod, and a note says so.
    let f = scenario("[[fault]]\nat = \"2s\"\naction = \"isolate\"\ntarget = \"follower\"\n");
    let e = export(&f, &full()).unwrap();
    assert!(
        e.notes.iter().any(|n| n.contains("every pod of the store")),
        "{:?}",
        e.notes
    );
}
