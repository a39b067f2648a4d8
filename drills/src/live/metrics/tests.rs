//! The metrics as Prometheus reads them: served over HTTP, parsed by an OpenMetrics parser.

use std::sync::{Arc, Mutex};

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use tokio::sync::watch;

use super::*;
use crate::live::fixture;

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

fn watch_of(snapshot: loadgen::Snapshot) -> DrillWatch {
    DrillWatch {
        snapshots: watch::channel(snapshot).1,
        cluster: watch::channel(fixture::cluster(1.0, Some(2))).1,
        phase: watch::channel(Phase::Load).1,
        faults: Arc::new(Mutex::new(vec![fixture::fault(0.5, true)])),
        clock: Arc::new(loadgen::RunClock::new()),
        notes: watch::channel(Vec::new()).1,
    }
}

async fn scrape(m: &Metrics) -> (String, Exposition) {
    let res = reqwest::get(format!("http://{}/metrics", m.addr()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = res.text().await.unwrap();
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}\n{text}"));
    (text, parsed)
}

/// The value of `family`'s sample with these label values (in the label names' sorted order,
/// as the parser keeps them).
fn value(e: &Exposition, family: &str, labels: &[&str]) -> f64 {
    let f = e
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}: {:?}", e.families.keys()));
    let s = f
        .get_sample_by_label_values(&labels.iter().map(|l| l.to_string()).collect::<Vec<_>>())
        .unwrap_or_else(|| panic!("{family} has no {labels:?}"));
    match &s.value {
        OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
        OpenMetricsValue::Counter(c) => c.value.as_f64(),
        other => panic!("{family}: {other:?}"),
    }
}

/// Before a run there is only the build; once a run is followed, its load, latency histogram,
/// nodes, phase and faults are there with the values of the watch channels.
#[tokio::test]
async fn a_scrape_reads_the_run_as_openmetrics() {
    let m = Metrics::listen("127.0.0.1:0").await.unwrap();
    let (_, e) = scrape(&m).await;
    assert!(e.families.contains_key("raftdrill_build"));
    assert!(!e.families.contains_key("raftdrill_operations"));

    let mut snapshot = fixture::snapshot(4.0, 300.0, 8.0, 6);
    let outcomes = |ok, fail| loadgen::metrics::Outcomes {
        ok,
        fail,
        unknown: 0,
    };
    snapshot.total_per_kind = [
        (loadgen::workload::OpKind::Read, outcomes(150, 0)),
        (loadgen::workload::OpKind::Update, outcomes(144, 6)),
    ]
    .into();
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for us in [800, 1_500, 1_500, 40_000, 2_500_000] {
        h.record(us).unwrap();
    }
    snapshot.run_latency = loadgen::metrics::LatencyBuckets::of(&h);
    m.follow("leader-kill", watch_of(snapshot));
    let (search, progress) = watch::channel(CapacityProgress::default());
    search.send_modify(|p| {
        p.steps = vec![Default::default(); 2];
        p.current_rate = Some(400.0);
    });
    m.follow_search(progress);
    let (text, e) = scrape(&m).await;
    // Labels in their names' order: kind, outcome.
    assert_eq!(
        value(&e, "raftdrill_operations", &["read", "ok"]),
        150.0,
        "{text}"
    );
    assert_eq!(value(&e, "raftdrill_operations", &["update", "ok"]), 144.0);
    assert_eq!(value(&e, "raftdrill_operations", &["update", "fail"]), 6.0);
    assert_eq!(value(&e, "raftdrill_operations", &["read", "unknown"]), 0.0);
    assert_eq!(value(&e, "raftdrill_throughput_ops_per_second", &[]), 300.0);
    assert_eq!(
        value(&e, "raftdrill_last_second_latency_seconds", &["0.99"]),
        0.008
    );
    assert_eq!(value(&e, "raftdrill_phase", &["load"]), 1.0);
    assert_eq!(value(&e, "raftdrill_phase", &["warmup"]), 0.0);
    assert_eq!(value(&e, "raftdrill_node_leader", &["2"]), 1.0);
    assert_eq!(value(&e, "raftdrill_node_leader", &["1"]), 0.0);
    assert_eq!(value(&e, "raftdrill_node_up", &["3", "up"]), 1.0);
    assert_eq!(value(&e, "raftdrill_node_term", &["3"]), 2.0);
    assert_eq!(value(&e, "raftdrill_node_cpu_cores", &["2"]), 0.2);
    assert_eq!(
        value(&e, "raftdrill_fault_active", &["kill", "0", "leader"]),
        1.0
    );
    assert_eq!(value(&e, "raftdrill_faults_fired", &[]), 1.0);
    assert_eq!(value(&e, "raftdrill_capacity_step", &[]), 3.0);
    assert_eq!(
        value(&e, "raftdrill_capacity_step_rate_ops_per_second", &[]),
        400.0
    );
    assert_eq!(value(&e, "raftdrill_capacity_steps_done", &[]), 2.0);

    let hist = &e.families["raftdrill_operation_latency_seconds"];
    assert_eq!(hist.family_type, OpenMetricsType::Histogram);
    let sample = hist.iter_samples().next().unwrap();
    let OpenMetricsValue::Histogram(v) = &sample.value else {
        panic!("{:?}", sample.value)
    };
    assert_eq!(v.count, Some(5));
    let le = |bound: f64| {
        v.buckets
            .iter()
            .find(|b| b.upper_bound == bound || (b.upper_bound - bound).abs() < 1e-9)
            .map(|b| b.count.as_f64())
            .unwrap_or_else(|| panic!("no bucket {bound}: {:?}", v.buckets))
    };
    assert_eq!(le(0.001), 1.0, "0.8 ms");
    assert_eq!(le(0.002), 3.0, "and two of 1.5 ms");
    assert_eq!(le(0.05), 4.0, "and 40 ms");
    assert_eq!(le(2.0), 4.0, "2.5 s is past 2 s");
    assert_eq!(le(5.0), 5.0);
    assert_eq!(le(f64::INFINITY), 5.0);
    let sum = v.sum.as_ref().unwrap().as_f64();
    assert!((sum - 2.5438).abs() < 0.01, "{sum}");

    let addr = m.addr();
    drop(m);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while reqwest::get(format!("http://{addr}/metrics")).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener outlived its Metrics"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_address_in_use_is_a_one_line_error() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let Err(e) = Metrics::listen(&addr).await else {
        panic!("bound a port in use")
    };
    assert!(
        e.starts_with(&format!("--metrics-listen {addr}: ")) && !e.contains('\n'),
        "{e}"
    );
}

/// Every series the Grafana dashboard in docs/ queries is one this exporter serves (with a
/// run and a capacity search followed): a renamed metric cannot leave the dashboard blank.
#[test]
fn the_grafana_dashboard_reads_only_served_names() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (_search, progress) = watch::channel(CapacityProgress {
        current_rate: Some(100.0),
        ..Default::default()
    });
    let current = Current {
        run: Some((
            "leader-kill".into(),
            watch_of(fixture::snapshot(4.0, 300.0, 8.0, 6)),
        )),
        search: Some(progress),
    };
    let text = render(&current);
    let served: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("raftdrill_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    served.contains(name.as_str()),
                    "{name} (in {expr}) is not served:\n{text}"
                );
                queried += 1;
                rest = &rest[i + name.len()..];
            }
        }
    }
    assert!(queried >= 15, "the dashboard queries the exporter");
}
