//! `raftdrill suite` end to end: two built-in scenarios shortened to 10 s, one index.

use std::time::Duration;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_of_two_scenarios_writes_an_index_with_two_rows() {
    let _serial = serial().await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("suite");
    let o = out.display().to_string();
    let args = [
        "suite",
        "--only",
        "baseline,leader-kill",
        "--duration",
        "10s",
        "--out",
        &o,
    ];
    let res = raftdrill(&args, tmp.path(), Duration::from_secs(180)).await;
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("suite.json"))
            .unwrap_or_else(|e| panic!("no suite.json ({e}): {stdout}\n{stderr}")),
    )
    .unwrap();
    let rows = index["rows"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["baseline", "leader-kill"], "{stderr}");
    assert_eq!(
        res.status.code(),
        Some(index["exit_code"].as_i64().unwrap() as i32),
        "the suite exits with its index's (worst) code"
    );
    let worst = rows
        .iter()
        .map(|r| r["exit_code"].as_i64().unwrap())
        .max()
        .unwrap();
    if worst <= 1 {
        assert_eq!(index["exit_code"].as_i64(), Some(worst), "{index}");
    }
    for r in rows {
        assert!(r["error"].is_null(), "{r}");
        assert!(
            r["tps"].as_f64().unwrap() > 50.0,
            "a run that carried load: {r}"
        );
        assert!(r["p99_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["lost_writes"], 0.0, "{r}");
        assert_eq!(
            r["consistency"], "ok",
            "every drill checks its history: {r}"
        );
        let dir = out.join(r["dir"].as_str().unwrap());
        let s = checked_summary(&dir.join("summary.json"));
        assert_eq!(s["duration_s"], 10.0, "shortened");
    }
    assert!(rows[0]["recovery_s"].is_null(), "baseline has no fault");
    assert!(
        rows[1]["recovery_s"].is_number(),
        "leader-kill recovered: {}",
        rows[1]
    );
    let leader_kill = checked_summary(&out.join("leader-kill/summary.json"));
    let at = leader_kill["faults"][0]["at_s"].as_f64().unwrap();
    assert!(
        (3.7..5.0).contains(&at),
        "the kill moved to 3.75 s of 10: {at}"
    );

    let html = std::fs::read_to_string(out.join("suite.html")).unwrap();
    let page = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("#scenarios tbody tr").unwrap();
    assert_eq!(page.select(&sel).count(), 2);
    let md = std::fs::read_to_string(out.join("suite.md")).unwrap();
    assert!(md.contains("[baseline](baseline/report.md)"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_name_in_only_is_exit_2_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("suite");
    let o = out.display().to_string();
    let res = raftdrill(
        &["suite", "--only", "baseline,no-such", "--out", &o],
        tmp.path(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("no-such"));
    assert!(!out.exists(), "nothing was started");
}
