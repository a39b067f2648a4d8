//! The renderers over a hand-written run folder: a 12 s drill with two faults (a kill of the
//! leader healed after 3 s, then a pause of a follower healed after 2 s).

use std::path::Path;

use super::*;

/// summary.json of the drill, as raftdrill writes it (fields the renderers do not read left
/// out, as an older raftdrill would have).
pub(crate) const SUMMARY: &str = r#"{
  "scenario": "two-faults", "description": "kill, then pause",
  "started_at": "2026-01-01T00:00:00Z", "duration_s": 12.0, "warmup_s": 1.0, "seed": 7,
  "cluster": {"nodes": 3, "target": "reference", "store": "disk", "fsync": "always"},
  "load": {"workload": "a", "model": "open", "rate": 100.0, "users": null, "late": 0, "dropped": 0},
  "totals": {"ops": 1100, "ok": 1080, "errors": 20, "tps": 100.0, "window_s": 11.0},
  "latency_ms": {"p50": 2.0, "p90": 5.0, "p99": 40.0, "p999": 300.0, "max": 900.0,
                 "per_op": {"read": {"p50": 1.5, "p90": 4.0, "p99": 30.0, "p999": 200.0, "max": 800.0}}},
  "thresholds": [
    {"metric": "p99", "warn": 800.0, "break": 1500.0, "observed": 40.0, "status": "ok"},
    {"metric": "success_rate", "warn": 99.5, "break": 95.0, "observed": 98.2, "status": "warn"}
  ],
  "faults": [
    {"scheduled_s": 3.0, "at_s": 3.0, "action": "kill", "target": "leader", "resolved": [1],
     "healed_at_s": 6.0, "hit_leader": 1, "error": null},
    {"scheduled_s": 8.0, "at_s": 8.0, "action": "pause", "target": "follower", "resolved": [3],
     "healed_at_s": 10.0, "hit_leader": null, "error": null}
  ],
  "recovery": [
    {"fault": 0, "action": "kill", "at_s": 3.0, "leader_elected_after_s": 0.4,
     "first_success_after_s": 0.5, "tps_90pct_after_s": 2.0, "within_s": 3.0, "status": "ok"},
    {"fault": 1, "action": "pause", "at_s": 8.0, "leader_elected_after_s": null,
     "first_success_after_s": 0.1, "tps_90pct_after_s": 1.0, "within_s": 3.0, "status": "ok"}
  ],
  "checks": {"lost_writes": {"acked": 500, "unknown": 3, "keys_checked": 400, "verified": 400,
             "unreadable": 0, "lost": 0, "lost_keys": []}, "recovery_within_s": 3.0},
  "busiest_node_cpu_pct": 35.0, "elections": 1,
  "verdict": "warn", "reasons": ["success_rate = 98.20 is past its warn level <&>"], "exit_code": 0
}"#;

/// timeline.csv of the drill: 100 ops/s, errors and a latency spike while the leader is down.
pub(crate) fn timeline_csv() -> String {
    let mut o = String::from("t_s,tps,ok,errors,p50_ms,p99_ms,p999_ms,leader,event\n");
    for t in 1..=12 {
        let (ok, err, p99, leader, event) = match t {
            4 => (60, 20, 900.0, "", "kill leader [1]; no leader; leader 2"),
            7 => (100, 0, 20.0, "2", "healed kill"),
            9 => (100, 0, 30.0, "2", "pause follower [3]"),
            11 => (100, 0, 25.0, "2", "healed pause"),
            _ => (100, 0, 10.0, if t < 4 { "1" } else { "2" }, ""),
        };
        o.push_str(&format!(
            "{t}.000,{}.0,{ok},{err},2.000,{p99:.3},{:.3},{leader},{event}\n",
            ok + err,
            p99 * 2.0
        ));
    }
    o
}

/// nodes.csv of the drill: node 1 has no process from 3 s to 6 s.
pub(crate) fn nodes_csv() -> String {
    let mut o = format!("{}\n", series::NODES_HEADER);
    for t in 0..12 {
        for node in 1..=3 {
            let down = node == 1 && (3..6).contains(&t);
            let (state, cpu, rss) = if down {
                ("killed", String::new(), String::new())
            } else {
                ("up", format!("{}.0", 10 + node * 5), "52428800".to_string())
            };
            o.push_str(&format!("{t}.9,{node},{state},{cpu},{rss}\n"));
        }
    }
    o
}

pub(crate) fn write_folder(dir: &Path) {
    std::fs::write(dir.join("summary.json"), SUMMARY).unwrap();
    std::fs::write(dir.join("timeline.csv"), timeline_csv()).unwrap();
    std::fs::write(dir.join("nodes.csv"), nodes_csv()).unwrap();
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

#[test]
fn the_timeline_has_one_shaded_labelled_band_per_fault() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    render_run(dir.path()).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("timeline.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("timeline.svg is well-formed XML");
    let band = hex(timeline_svg::BAND);
    let band_rects: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(band.as_str()))
        .collect();
    // Each band is shaded on both panels: throughput and latency.
    assert_eq!(band_rects.len(), 4, "two faults × two panels");
    let opacity: f64 = band_rects[0].attribute("opacity").unwrap().parse().unwrap();
    assert!(opacity < 0.5, "shaded, not painted over: {opacity}");
    let mut xs: Vec<(f64, f64)> = band_rects
        .iter()
        .map(|r| {
            let x: f64 = r.attribute("x").unwrap().parse().unwrap();
            let w: f64 = r.attribute("width").unwrap().parse().unwrap();
            (x, w)
        })
        .collect();
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        xs[0].1 > xs[2].1,
        "the 3 s kill is wider than the 2 s pause: {xs:?}"
    );
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    assert!(texts.iter().any(|t| t == "kill leader [1]"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "pause follower [3]"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t == "leader: none → 2"),
        "leader changes are marked: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("p99 warn 800")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("p99 break 1500")),
        "{texts:?}"
    );
    for legend in ["ok/s", "errors/s", "p50", "p99", "p99.9"] {
        assert!(
            texts.iter().any(|t| t == legend),
            "legend {legend}: {texts:?}"
        );
    }
}

#[test]
fn the_html_report_stands_alone_and_holds_every_part() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    render_run(dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let page = scraper::Html::parse_document(&text);
    assert!(page.errors.is_empty(), "parse errors: {:?}", page.errors);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(page.select(&sel("script")).count(), 0, "no scripts");
    for (tag, attr) in [("img", "src"), ("link", "href"), ("iframe", "src")] {
        assert_eq!(
            page.select(&sel(&format!("{tag}[{attr}]"))).count(),
            0,
            "nothing loaded from elsewhere"
        );
    }
    let verdict: String = page
        .select(&sel("#verdict"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(verdict, "warn");
    let reason: String = page
        .select(&sel("#reasons li"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(
        reason.ends_with("<&>"),
        "text is escaped, not markup: {reason}"
    );
    let rows = |id: &str| page.select(&sel(&format!("#{id} tbody tr"))).count();
    assert_eq!(rows("thresholds"), 2);
    assert_eq!(rows("recovery"), 2, "recovery per fault");
    assert_eq!(rows("nodes"), 3, "one row per node");
    assert_eq!(rows("latency"), 2, "all, and read");
    let svgs: Vec<_> = page.select(&sel("svg")).collect();
    assert_eq!(svgs.len(), 2, "the timeline and the nodes, inline");
    let checks: String = page
        .select(&sel("#checks"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(checks.contains("0 lost of 500"), "{checks}");
    assert!(
        checks.contains("linearizability: –"),
        "absent, shown as –: {checks}"
    );
    // The nodes chart breaks node 1's line while it had no process.
    let node_svg = std::fs::read_to_string(dir.path().join("nodes.svg")).unwrap();
    let doc = roxmltree::Document::parse(&node_svg).unwrap();
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 8, "two panels, node 1 in two pieces each: {lines}");
}

#[test]
fn report_md_is_rebuilt_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    render_run(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("**Verdict: ⚠ warn** (exit code 0)"), "{md}");
    assert!(
        md.contains("| 3.0s | kill | leader | 1 | 6.00s | 0.40s | 0.50s | 2.00s | – | ✓ |"),
        "{md}"
    );
    assert!(md.contains("![timeline](timeline.svg)"));
    let mut summary: serde_json::Value = serde_json::from_str(SUMMARY).unwrap();
    summary["checks"]["linearizability"] = serde_json::json!({"status": "ok", "keys": 3, "ops": 9});
    std::fs::write(dir.path().join("summary.json"), summary.to_string()).unwrap();
    render_run(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("linearizability: ok (3 keys, 9 operations)"),
        "{md}"
    );
}

#[test]
fn a_folder_without_a_summary_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = render_run(dir.path()).unwrap_err();
    assert!(err.to_string().contains("summary.json"), "{err}");
    std::fs::write(dir.path().join("summary.json"), "{}").unwrap();
    let err = render_run(dir.path()).unwrap_err();
    assert!(err.to_string().contains("missing field"), "{err}");
}

#[test]
fn a_repeat_aggregates_its_runs_and_matches_its_schema() {
    let root = tempfile::tempdir().unwrap();
    for (i, (tps, verdict, exit, first_success)) in [
        (100.0, "warn", 0, "0.5"),
        (80.0, "fail", 1, "null"),
        (120.0, "pass", 0, "0.9"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = root.path().join(format!("run-{}", i + 1));
        std::fs::create_dir(&dir).unwrap();
        write_folder(&dir);
        let text = SUMMARY
            .replace("\"tps\": 100.0", &format!("\"tps\": {tps}"))
            .replace(
                "\"verdict\": \"warn\"",
                &format!("\"verdict\": \"{verdict}\""),
            )
            .replace("\"exit_code\": 0", &format!("\"exit_code\": {exit}"))
            .replace(
                "\"first_success_after_s\": 0.5",
                &format!("\"first_success_after_s\": {first_success}"),
            )
            .replace("\"seed\": 7", &format!("\"seed\": {}", 7 + i));
        std::fs::write(dir.join("summary.json"), text).unwrap();
    }
    let dirs: Vec<String> = (1..=3).map(|i| format!("run-{i}")).collect();
    let r = repeat::RepeatSummary::build(root.path(), &dirs).unwrap();
    assert_eq!(
        (r.verdict.as_str(), r.exit_code),
        ("fail", 1),
        "the worst run"
    );
    assert_eq!(
        r.runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
        [Some(7), Some(8), Some(9)]
    );
    let fig = |name: &str| r.figures.iter().find(|f| f.name == name).unwrap();
    let tps = fig("tps").value.unwrap();
    assert_eq!(
        (tps.median, tps.min, tps.max, tps.n),
        (100.0, 80.0, 120.0, 3)
    );
    let rec = fig("recovery.0.kill.first_success_after_s");
    assert_eq!(rec.missing, 1, "the run whose recovery never came");
    assert!((rec.value.unwrap().median - 0.7).abs() < 1e-9, "{rec:?}");
    r.write(root.path()).unwrap();

    let schema = crate::versioned::checked_in_schema::<super::repeat::RepeatSummary>(
        "repeat.schema.json",
        "raftdrill summary.json of a repeat",
        crate::versioned::schema::REPEAT,
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("summary.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let page = std::fs::read_to_string(root.path().join("report.html")).unwrap();
    let page = scraper::Html::parse_document(&page);
    let runs = scraper::Selector::parse("#runs tbody tr").unwrap();
    assert_eq!(page.select(&runs).count(), 3);
}

/// summary.json's schema is the one generated from its types (real outputs are checked against
/// it by every e2e drill); a summary without a verdict, or with one outside the verdicts, is
/// refused.
#[test]
fn summary_json_schema_is_generated_from_its_types() {
    let schema = crate::versioned::checked_in_schema::<crate::drill::results::Summary>(
        "summary.schema.json",
        "raftdrill summary.json",
        crate::versioned::schema::SUMMARY,
    );
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let props = &schema["properties"];
    assert_eq!(props["verdict"]["enum"][0], "pass");
    assert!(
        schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "verdict")
    );
    assert!(!validator.is_valid(&serde_json::json!({ "scenario": "x" })));
}
