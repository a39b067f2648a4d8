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

/// Starts raftdrill with `args` and returns it with its metrics URL (from its stderr, which is
/// drained from then on).
async fn start(args: &[&str], dir: &std::path::Path) -> (tokio::process::Child, String) {
    let mut child = spawn_raftdrill(args, dir, std::process::Stdio::piped(), false);
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
    (child, url)
}

/// Scrapes `url` (within 60 s) until the parsed answer is `ready`, and returns it; an answer
/// that is not OpenMetrics fails the test.
async fn scrape_until(url: &str, what: &str, ready: fn(&Exposition) -> bool) -> Exposition {
    let client = http();
    eventually(Duration::from_secs(60), what, || {
        let (client, url) = (client.clone(), url.to_string());
        async move {
            let text = client.get(&url).send().await.ok()?.text().await.ok()?;
            let e = openmetrics_parser::openmetrics::parse_openmetrics(&text)
                .unwrap_or_else(|err| panic!("not OpenMetrics: {err:?}\n{text}"));
            ready(&e).then_some(e)
        }
    })
    .await
}

/// How many of nodes 1 to 3 a scrape shows as leader.
fn leaders(e: &Exposition) -> f64 {
    (1..=3)
        .filter_map(|n| value(e, "raftdrill_node_leader", &[&n.to_string()]))
        .sum()
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
    let (mut child, url) = start(&args, tmp.path()).await;

    let scraped = scrape_until(&url, "a scrape with the load running", |e| {
        value(e, "raftdrill_operations", &["read", "ok"]).is_some_and(|ok| ok > 0.0)
            && value(e, "raftdrill_phase", &["load"]) == Some(1.0)
    })
    .await;
    assert_eq!(leaders(&scraped), 1.0, "one leader among the three nodes");
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
        http().get(&url).send().await.is_err(),
        "nothing listens once raftdrill has exited"
    );
}

/// A capacity search `--with-faults` runs each step as a whole drill on a fresh cluster: a
/// scrape during a step shows the search's step and rate beside that drill's nodes and its
/// fault in effect. The SLO cannot be met, so the search ends after its first step and the
/// re-run that confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_step_with_faults_serves_its_nodes_and_faults() {
    let _serial = serial().await;
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("quick-kill.toml");
    std::fs::write(
        &scenario,
        "name = \"quick-kill\"\ndescription = \"a follower down for 3 s\"\nduration = \"7s\"\n\
         [load]\nworkload = \"a\"\nkeys = 100\nrate = 100\nwarmup = \"1s\"\n\
         [[fault]]\nat = \"2s\"\naction = \"kill\"\ntarget = \"follower\"\nfor = \"3s\"\n",
    )
    .unwrap();
    let (s, o) = (
        scenario.display().to_string(),
        tmp.path().join("cap").display().to_string(),
    );
    let args = [
        "capacity",
        &s,
        "--with-faults",
        "--step-duration",
        "5s",
        "--slo",
        "p99<1us",
        "--no-tui",
        "--out",
        &o,
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let (mut child, url) = start(&args, tmp.path()).await;
    let scraped = scrape_until(&url, "a scrape with the fault in effect", |e| {
        value(e, "raftdrill_fault_active", &["kill", "0", "follower"]) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&scraped, "raftdrill_capacity_step_rate_ops_per_second", &[]),
        Some(50.0)
    );
    assert_eq!(
        leaders(&scraped),
        1.0,
        "one leader among the step's three nodes"
    );
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("the search ends")
        .unwrap();
    assert_eq!(status.code(), Some(1), "no rate meets a 1 µs p99");
}
