//! What the check leaves beside the history, and the summary it gives `summary.json`.

use super::super::{LinearSummary, REPORT_FILE, SummaryStatus, svg};
use super::*;

/// A stale read on key `user<7>` with a swap and an unknown write around it.
fn stale_history() -> Vec<HistoryRecord> {
    let mut h = vec![
        write(
            1,
            0,
            "s-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            0,
            10,
        ),
        cas(
            2,
            1,
            Some("s-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            "s-0002-bbbb",
            true,
            20,
            30,
        ),
        unknown(write(3, 2, "s-0003-cccc", 25, 35)),
        read(
            4,
            3,
            Some("s-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            40,
            50,
        ),
    ];
    for r in &mut h {
        r.key = "user<7>".into();
    }
    h
}

#[test]
fn the_report_and_a_picture_per_anomaly_are_written_beside_the_history() {
    let report = check(&stale_history());
    assert_eq!(report.status, Status::Anomaly);
    let dir = tempfile::tempdir().unwrap();
    let written = report.write_files(dir.path()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let svg_name = &report.anomalies[0].file;
    assert!(svg_name.starts_with("anomaly-user_7_-"), "{svg_name}");
    assert_eq!(names, vec![REPORT_FILE.to_string(), svg_name.clone()]);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(json["status"], "anomaly");
    let a = &json["anomalies"][0];
    assert_eq!(a["key"], "user<7>");
    assert_eq!(a["stuck"], 4);
    let window = a["window"].as_array().unwrap();
    let stuck: Vec<&serde_json::Value> = window.iter().filter(|w| w["stuck"] == true).collect();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0]["invoke_us"], 40);
    assert_eq!(stuck[0]["complete_us"], 50);
    assert!(
        window.iter().any(|w| w["position"].is_u64()),
        "prefix ops are numbered"
    );
    // The window is in the history's own record format.
    let first: HistoryRecord = serde_json::from_value(window[0].clone()).unwrap();
    assert_eq!(first.id, 1);

    // The file matches the schema generated from its types (checked in under results/).
    let schema = crate::versioned::checked_in_schema::<LinearReport>(
        "linearizability.schema.json",
        "raftdrill linearizability.json",
        crate::versioned::schema::LINEARIZABILITY,
    );
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut bad = json.clone();
    bad["status"] = "maybe".into();
    assert!(!validator.is_valid(&bad), "an unknown status");
}

#[test]
fn the_picture_labels_each_operation_and_marks_the_one_that_cannot_be_placed() {
    let report = check(&stale_history());
    let picture = svg::render(&report.anomalies[0]);
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
    for label in ["w 1", "cas 1→2 ✓", "w 3 ?", "r → 1"] {
        assert!(
            picture.contains(&format!(">{label}</text>")),
            "no {label:?} in\n{picture}"
        );
    }
    // One lane per worker.
    for w in 0..4 {
        assert!(picture.contains(&format!(">worker {w}</text>")));
    }
    // The stuck read is red and bold; the unknown write is dashed and fades out.
    assert!(picture.contains(r##"fill="#b00000" font-weight="bold">r → 1<"##));
    assert!(picture.contains(r#"stroke-dasharray="5 3""#));
    assert!(picture.contains("url(#fade-update)"));
    // Values are shortened in the legend, and the key is escaped.
    assert!(picture.contains("1 = s-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…"));
    assert!(picture.contains("key user&lt;7&gt;"));
    assert!(!picture.contains("user<7>"));
}

#[test]
fn the_summary_carries_the_status_the_figures_and_the_failing_windows() {
    let report = check(&stale_history());
    let summary = report.summary();
    assert_eq!(summary.status, SummaryStatus::Anomaly);
    assert_eq!((summary.keys, summary.ops), (1, 4));
    assert_eq!(summary.anomalies[0].op_ids, report.anomalies[0].op_ids());
    assert!(summary.anomalies[0].op_ids.contains(&4));
    let json = serde_json::to_value(&summary).unwrap();
    for field in ["status", "keys", "ops", "anomalies", "elapsed_s"] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
    assert_eq!(
        json["anomalies"][0]["file"],
        report.anomalies[0].file.as_str()
    );

    let skipped = serde_json::to_value(LinearSummary::skipped("no history recorded")).unwrap();
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(check(&[]).summary().status, SummaryStatus::Ok);
}
