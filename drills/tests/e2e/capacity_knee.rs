//! Issue 19's goal on planted knees: `apply_delay = D` with workload `w` on 3 nodes gives the
//! store a fixed service rate (one entry applied at a time, a little over D each). `raftdrill
//! capacity --verify` must answer between 0.9× and 1.0× of the closed-loop saturation that the
//! same run measures on the same cluster, with the default steps and the SLO
//! `p99<800ms,success>=99.5%`. The band is checked against that measured saturation, not a
//! figure worked out by hand, so a busier or quieter machine moves both alike.
//!
//! The 10 ms plant (about 98 ops/s) runs in the plain test run. The 5 ms plant (about 195 ops/s)
//! is `#[ignore]`d and meant for a release build (`cargo test --release -p drills --test e2e
//! capacity_knee -- --ignored`): in a debug build on two cores, the open-loop generator's own CPU
//! at 200 ops/s makes the plant's sleeps wake late, so its open-loop service rate falls some 6 %
//! under what a 32-user closed loop gets from it, and the band would measure the debug build's
//! generator rather than the search.

use std::time::Duration;

use crate::harness::*;

/// A planted knee of `delay` ms per applied entry.
fn knee(delay: u32) -> String {
    format!(
        r#"name = "knee-{delay}ms"
description = "a planted capacity limit: one entry applied every {delay} ms"
duration = "10s"

[cluster]
nodes = 3
apply_delay = "{delay}ms"

[load]
workload = "w"
rate = 50
keys = 1000
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_lies_within_ten_percent_under_the_saturation_of_the_same_run() {
    answer_within_the_band(10, 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a release build: cargo test --release -p drills --test e2e capacity_knee -- --ignored"]
async fn the_answer_lies_within_ten_percent_under_the_saturation_at_5ms() {
    answer_within_the_band(5, 50).await;
}

/// Runs the search on the `delay` ms plant from `start` ops/s and checks the answer against the
/// saturation of the same run, and that every output says why steps failed.
async fn answer_within_the_band(delay: u32, start: u32) {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("knee.toml");
    std::fs::write(&file, knee(delay)).unwrap();
    let out = dir.path().join("cap");
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let start = start.to_string();
    let args = [
        "capacity",
        &f,
        "--slo",
        "p99<800ms,success>=99.5%",
        "--start-rate",
        &start,
        "--verify",
        "--no-tui",
        "--out",
        &o,
    ];
    let res = raftdrill(&args, dir.path(), Duration::from_secs(600)).await;
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{stdout}\n{stderr}");
    let report = checked_capacity(&out.join("capacity.json"));
    let answer = report["answer_rate"].as_f64().expect("an answer");
    let verify = &report["verify"];
    let saturation = verify["saturation_rate"].as_f64().expect("a saturation");
    let ratio = answer / saturation;
    eprintln!(
        "{delay} ms plant: answer {answer} ops/s, closed-loop saturation {saturation:.1} ops/s, ratio {ratio:.3}"
    );
    assert!(
        (0.9..=1.0).contains(&ratio),
        "answer {answer} ops/s is {ratio:.3}× the closed-loop saturation of {saturation} ops/s\n{stderr}"
    );
    assert_eq!(
        verify["ratio"].as_f64().map(|r| (r * 1e6).round()),
        Some((ratio * 1e6).round()),
        "the report's ratio is the same figure"
    );
    assert_eq!(verify["verdict"], "consistent", "{verify}");
    assert!(stdout.contains("verify: the answer is"), "{stdout}");
    assert!(stdout.contains("max sustainable:"), "{stdout}");

    // The answer carries its bracket, and every failed step says why.
    let u = &report["uncertainty"];
    assert_eq!(u["last_good"].as_f64(), Some(answer));
    let upper = [u["first_bad"].as_f64(), u["limit"].as_f64()]
        .into_iter()
        .flatten()
        .fold(f64::INFINITY, f64::min);
    assert!(
        upper > answer && (upper - answer) / answer <= 0.05 + 1e-9,
        "bracket {answer}..{upper} within the 5 % resolution: {u}"
    );
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.len() >= 4, "doubling then bisection: {stderr}");
    assert!(
        out.join(format!("step-01-{start}.hgrm")).exists(),
        "each step leaves its histogram"
    );
    let failed: Vec<&serde_json::Value> = steps.iter().filter(|s| s["verdict"] == "fail").collect();
    assert!(
        !failed.is_empty(),
        "the search went past the knee: {stderr}"
    );
    for s in &failed {
        let reasons = s["reasons"].as_array().unwrap();
        assert!(!reasons.is_empty(), "a failed step without a reason: {s}");
        assert!(s["reason"].as_str().is_some_and(|r| !r.is_empty()), "{s}");
    }
    let reruns = steps.iter().filter(|s| s["rerun"] == true).count();
    assert_eq!(u["reruns"].as_u64(), Some(reruns as u64));
    assert!(
        steps.iter().all(|s| s["drained"] == true),
        "every step started on a drained log: {stderr}"
    );

    // The same story for a person and on the pictures.
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(md.contains("Cross-check (consistent)"), "{md}");
    assert!(md.contains("the knee lies below"), "{md}");
    let svg = std::fs::read_to_string(out.join("capacity.svg")).unwrap();
    assert!(
        svg.contains("closed-loop saturation") && svg.contains("knee"),
        "the curve marks the knee and the saturation"
    );
    for s in &failed {
        let why: drills::capacity::failure::Failure =
            serde_json::from_value(s["reasons"][0].clone()).expect("a reason capacity.json names");
        assert!(
            svg.contains(&why.label()),
            "the SVG says why the step at {} failed ({})",
            s["target_rate"],
            why.label()
        );
    }
    let timeline = std::fs::read_to_string(out.join("timeline.svg")).unwrap();
    assert!(
        timeline.contains("closed loop, 32 users"),
        "the check is on the timeline"
    );
}

/// Reads a capacity.json and checks it against the checked-in schema.
fn checked_capacity(path: &std::path::Path) -> serde_json::Value {
    let schema_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/capacity.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not match the schema: {errors:#?}",
        path.display()
    );
    doc
}
