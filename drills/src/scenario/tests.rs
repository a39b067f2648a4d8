use std::path::Path;
use std::time::Duration;

use loadgen::Engine;

use super::*;

#[test]
fn every_builtin_scenario_parses() {
    assert!(BUILTIN.len() >= 13);
    for (name, _) in BUILTIN {
        let s = builtin(name)
            .expect("listed")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&s.name, name, "file name and `name` agree");
        assert!(!s.description.is_empty());
    }
    assert!(builtin(DEFAULT).is_some());
}

#[test]
fn the_default_drill_kills_the_leader_and_brings_it_back() {
    let s = builtin(DEFAULT).unwrap().unwrap();
    assert_eq!(s.cluster.nodes, 3);
    assert_eq!(s.load.duration, Duration::from_secs(40));
    assert_eq!(s.faults.len(), 1);
    let f = &s.faults[0];
    assert_eq!(
        (f.action.clone(), f.target.clone()),
        (Action::Kill, Selector::Leader)
    );
    assert_eq!(f.undo_after, Some(Duration::from_secs(10)));
    assert_eq!(s.load.model.rate(), Some(300.0));
    assert!(s.checks.lost_writes);
    assert_eq!(s.checks.recovery_within, Some(Duration::from_secs(3)));
}

#[test]
fn cluster_settings_become_node_flags() {
    let text = r#"
name = "x"
duration = "10s"
[cluster]
nodes = 3
store = "memory"
snapshot_every = 500
apply_delay = "2ms"
election_timeout = "200ms..400ms"
[load]
workload = "w"
users = 4
"#;
    let s = Scenario::parse(text, "x.toml").unwrap();
    let flags = s.cluster.node_flags().join(" ");
    assert_eq!(
        flags,
        "--store memory --fsync always --snapshot-every 500 --apply-delay 2000us --election-timeout 200..400"
    );
    assert_eq!(s.load.model.users(), Some(4));
}

#[test]
fn faults_are_sorted_and_add_node_extends_the_id_range() {
    let text = r#"
name = "x"
duration = "30s"
[load]
workload = "a"
rate = 10
[[fault]]
at = "20s"
action = "remove-node"
target = "node:4"
[[fault]]
at = "10s"
action = "add-node"
"#;
    let s = Scenario::parse(text, "x.toml").unwrap();
    assert_eq!(s.faults[0].action, Action::AddNode);
    assert_eq!(s.faults[1].target, Selector::Node(4));
    assert_eq!(s.max_node_id(), 4);
}

#[test]
fn scenario_thresholds_override_the_defaults_one_metric_at_a_time() {
    let text = r#"
name = "x"
duration = "30s"
[load]
workload = "a"
rate = 10
[thresholds]
p99 = { warn = "100ms", break = "200ms" }
"#;
    let s = Scenario::parse(text, "x.toml").unwrap();
    let defaults = loadgen::thresholds::Thresholds::default();
    assert_eq!(s.load.thresholds.0.len(), defaults.0.len());
    assert_ne!(s.load.thresholds, defaults);
}

/// Every file in `tests/bad-scenarios/` is rejected with a one-line error. Its first line says
/// where (`LINE:COL` or a field) and what: `# expect: PLACE | TEXT`.
#[test]
fn the_bad_scenario_corpus_is_rejected_with_the_place_named() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus has {} files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks a `# expect:` first line", path.display()));
        let (place, what) = expect.split_once(" | ").unwrap_or(("", expect));
        let err = Scenario::from_file(&path).expect_err(&path.display().to_string());
        let line = err.to_string();
        assert!(
            !line.contains('\n'),
            "{}: error is not one line: {line}",
            path.display()
        );
        assert!(
            line.starts_with(&path.display().to_string()),
            "names the file: {line}"
        );
        assert!(
            err.place.contains(place),
            "{}: place {:?}, want {place:?} ({line})",
            path.display(),
            err.place
        );
        assert!(
            line.contains(what),
            "{}: {line:?} does not say {what:?}",
            path.display()
        );
    }
}

#[test]
fn the_engine_is_goose_unless_the_load_says_tasks() {
    let text = |engine: &str| {
        format!("name = \"x\"\nduration = \"10s\"\n[load]\nworkload = \"c\"\nusers = 4\n{engine}\n")
    };
    let goose = Scenario::parse(&text(""), "x.toml").unwrap();
    assert_eq!(goose.load.engine, Engine::Goose);
    let tasks = Scenario::parse(&text("engine = \"tasks\""), "x.toml").unwrap();
    assert_eq!(tasks.load.engine, Engine::Tasks);
    assert_eq!(
        tasks
            .load_config(vec!["http://127.0.0.1:1".into()], None, 1)
            .spec
            .engine,
        Engine::Tasks
    );
    let e = Scenario::parse(&text("engine = \"threads\""), "x.toml").unwrap_err();
    assert_eq!(e.place, "6:10", "{e}");
    assert!(e.message.contains("goose or tasks"), "{e}");
}

#[test]
fn host_tables_place_the_nodes_and_bad_ones_are_errors() {
    let base = r#"
name = "on-hosts"
duration = "10s"

[load]
workload = "a"
rate = 100

[[host]]
name = "a"
addr = "10.0.0.11"
ssh = "root@10.0.0.11"
data_dir = "/srv/rd"

[[host]]
name = "b"
addr = "10.0.0.12"
ssh = "root@10.0.0.12:2222"
data_dir = "/srv/rd"
node = 1
"#;
    let s = Scenario::parse(base, "t.toml").unwrap();
    let hosts = s.hosts.expect("hosts");
    let placed: Vec<(u64, &str)> = hosts
        .placement()
        .unwrap()
        .into_iter()
        .map(|(id, h)| (id, h.name.as_str()))
        .collect();
    assert_eq!(placed, [(1, "b"), (2, "a")]);

    let none = Scenario::parse(&base[..base.find("[[host]]").unwrap()], "t.toml").unwrap();
    assert!(none.hosts.is_none());

    let typo = base.replace(
        "data_dir = \"/srv/rd\"\nnode",
        "datadir = \"/srv/rd\"\nnode",
    );
    let e = Scenario::parse(&typo, "t.toml").unwrap_err().to_string();
    assert!(e.contains("datadir"), "{e}");
    let twice = base.replace("name = \"b\"", "name = \"a\"");
    let e = Scenario::parse(&twice, "t.toml").unwrap_err().to_string();
    assert!(e.contains("appears twice"), "{e}");
}

#[test]
fn load_from_names_hosts_and_splits_them_from_the_nodes() {
    let base = r#"
name = "load-from"
duration = "10s"

[load]
workload = "a"
rate = 100
from = ["c"]

[[host]]
name = "a"
addr = "10.0.0.11"
ssh = "root@10.0.0.11"
data_dir = "/srv/rd"

[[host]]
name = "b"
addr = "10.0.0.12"
ssh = "root@10.0.0.12"
data_dir = "/srv/rd"

[[host]]
name = "c"
addr = "10.0.0.13"
ssh = "root@10.0.0.13"
data_dir = "/srv/rd"
"#;
    let s = Scenario::parse(base, "t.toml").unwrap();
    assert_eq!(s.load_from, ["c"]);
    let (nodes, load) = s.hosts.as_ref().unwrap().split(&s.load_from).unwrap();
    let names: Vec<&str> = nodes.host.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(load.len(), 1);
    assert_eq!(load[0].name, "c");

    let unknown = base.replace("from = [\"c\"]", "from = [\"d\"]");
    let e = Scenario::parse(&unknown, "t.toml").unwrap_err();
    assert_eq!(e.place, "8:8", "{e}");
    assert!(e.message.contains("\"d\""), "{e}");
    let twice = base.replace("from = [\"c\"]", "from = [\"c\", \"c\"]");
    let e = Scenario::parse(&twice, "t.toml").unwrap_err().to_string();
    assert!(e.contains("twice"), "{e}");
    let empty = base.replace("from = [\"c\"]", "from = []");
    let e = Scenario::parse(&empty, "t.toml").unwrap_err().to_string();
    assert!(e.contains("at least one"), "{e}");
    // A load host cannot also be placed on a node.
    let placed = format!("{}\nnode = 1\n", base.trim_end());
    let s = Scenario::parse(&placed, "t.toml").unwrap();
    let e = s.hosts.unwrap().split(&s.load_from).unwrap_err();
    assert!(e.contains("host c runs the load"), "{e}");
}
