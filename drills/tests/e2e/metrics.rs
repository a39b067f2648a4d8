//! `--metrics-listen`: a real drill scraped while it runs, read by an OpenMetrics parser.

use std::time::Duration;

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::*;

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// The value of `family`'s sample with these label values (sorted by label name).
fn value(e: &Exposition, family: &str, labels: &[&str]) -> Option<f64> {
    let f = e.families.get(family)?;
    let want: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    match &f.get_sample_by_label_values(&want)?.value {
        OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => Some(n.as_f64()),
        OpenMetricsValue::Counter(c) => Some(c.value.as_f64()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_drill_is_scraped_as_openmetrics() {
    let _serial = serial().await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = out.display().to_string();
    let args = [
        "run",
        "baseline",
        "--duration",
        "8s",
        "--no-tui",
        "--out",
        &o,
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let mut child = spawn_raftdrill(&args, tmp.path(), std::process::Stdio::piped(), false);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("raftdrill: metrics at ") {
                return rest.trim().to_string();
            }
        }
        panic!("raftdrill ended without saying where its metrics are")
    })
    .await
    .expect("the metrics address within 60 s");
    // The progress lines go on; keep the pipe drained.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let client = http();
    let scraped = eventually(
        Duration::from_secs(60),
        "a scrape with the load running",
        || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let text = client.get(&url).send().await.ok()?.text().await.ok()?;
                let e = openmetrics_parser::openmetrics::parse_openmetrics(&text)
                    .unwrap_or_else(|err| panic!("not OpenMetrics: {err:?}\n{text}"));
                let ok = value(&e, "raftdrill_operations", &["read", "ok"])?;
                (ok > 0.0 && value(&e, "raftdrill_phase", &["load"]) == Some(1.0)).then_some(e)
            }
        },
    )
    .await;
    let leaders: f64 = (1..=3)
        .filter_map(|n| value(&scraped, "raftdrill_node_leader", &[&n.to_string()]))
        .sum();
    assert_eq!(leaders, 1.0, "one leader among the three nodes");
    assert_eq!(
        scraped.families["raftdrill_operation_latency_seconds"].family_type,
        OpenMetricsType::Histogram
    );
    assert!(value(&scraped, "raftdrill_node_term", &["1"]).is_some_and(|t| t >= 1.0));

    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .expect("the drill ends")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        client.get(&url).send().await.is_err(),
        "nothing listens once raftdrill has exited"
    );
}
