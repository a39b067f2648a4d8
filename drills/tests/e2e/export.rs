//! `raftdrill export chaos-mesh` as a user runs it: YAML on stdout or in a file, a scenario
//! that needs more labels refused in one line naming the flag, typos in flags refused, faults
//! with no equivalent listed when skipped. (What the objects must be is tested against Chaos
//! Mesh's own types in `export::chaos_mesh::tests`.)

use std::process::{Command, Output};

use crate::harness::exe;

fn export(args: &[&str]) -> Output {
    Command::new(exe())
        .args(["export", "chaos-mesh"])
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn export_writes_a_workflow_or_says_in_one_line_what_it_lacks() {
    // The default drill aims at the leader: without its label, exit 2 naming the flag.
    let out = export(&["--selector", "app=mystore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("--leader-label"), "{err}");
    assert!(out.stdout.is_empty());

    // With it, a Workflow on stdout that reads back as YAML.
    let out = export(&[
        "leader-kill",
        "--selector",
        "app=mystore",
        "--leader-label",
        "role=leader",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let w: serde_json::Value = serde_norway::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(w["kind"], "Workflow");
    assert_eq!(
        w["spec"]["templates"][2]["podChaos"]["selector"]["labelSelectors"]["role"],
        "leader"
    );

    // --out writes the same to a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wf.yaml");
    let args = [
        "leader-kill",
        "--selector",
        "app=mystore",
        "--leader-label",
        "role=leader",
        "--out",
    ];
    let out = export(&[&args[..], &[file.to_str().unwrap()]].concat());
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out.stderr)
    );
    let again: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(again, w);

    // A malformed label, a missing selector and an unknown scenario: exit 2.
    for bad in [
        &["--selector", "app"][..],
        &["--leader-label", "role=leader"][..],
        &["no-such-drill", "--selector", "app=x"][..],
    ] {
        let out = export(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }

    // A scenario of pauses only: nothing to export, even when skipping.
    let out = export(&[
        "leader-pause",
        "--selector",
        "app=x",
        "--leader-label",
        "r=l",
        "--skip-unsupported",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("SIGSTOP"),
        "{}",
        text(&out.stderr)
    );

    // Skipping lists what it left out, on stderr and in the YAML: the slowed clock goes, the
    // cut-off leader stays.
    let args = [
        "slow-clock-leader",
        "--selector",
        "app=x",
        "--leader-label",
        "r=l",
    ];
    let out = export(&[&args[..], &["--skip-unsupported"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("skipped: clock leader"),
        "{}",
        text(&out.stderr)
    );
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("raftdrill/skipped") && yaml.contains("NetworkChaos"),
        "{yaml}"
    );
    let out = export(&args);
    assert_eq!(out.status.code(), Some(2), "not skipped unless asked");
}
