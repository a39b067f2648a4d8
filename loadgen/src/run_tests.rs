//! Tests that run the load generator against local HTTP servers.

use std::time::Duration;

use raftdrill_wire::Consistency;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::outcome::{ErrorClass, Outcome};
use crate::plan::LoadModel;
use crate::reference::ReferenceCluster;
use crate::target::Target;
use crate::testkit;
use crate::workload::WorkloadKind;
use crate::{LoadConfig, LoadRun, LoadSpec};

#[tokio::test]
async fn outcomes_are_classified_against_misbehaving_servers() {
    let kv = testkit::kv_server().await;
    let timeout = Duration::from_millis(300);
    let c = ReferenceCluster::new(&[kv], timeout).unwrap();
    let lin = Consistency::Linearizable;

    assert_eq!(c.get(0, "k", lin).await, Ok(None));
    c.put(0, "k", "v").await.unwrap();
    assert_eq!(c.get(0, "k", lin).await, Ok(Some("v".into())));
    assert!(c.cas(0, "k", Some("v"), "w").await.unwrap().swapped);
    assert!(!c.cas(0, "k", None, "x").await.unwrap().swapped);

    let e = c.put(0, "slow", "v").await.unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Timeout, Outcome::Unknown)
    );
    let e = c.put(0, "noleader", "v").await.unwrap_err();
    assert_eq!((e.class, e.outcome), (ErrorClass::NoLeader, Outcome::Fail));
    let e = c.put(0, "commit-timeout", "v").await.unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Http5xx, Outcome::Unknown)
    );

    let reset = ReferenceCluster::new(&[testkit::resetting_server().await], timeout).unwrap();
    let e = reset.put(0, "k", "v").await.unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Reset, Outcome::Unknown),
        "{e}"
    );

    let refused = ReferenceCluster::new(&[testkit::refusing_url().await], timeout).unwrap();
    let e = refused.get(0, "k", lin).await.unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Connect, Outcome::Fail),
        "{e}"
    );
}

fn open_config(endpoints: Vec<String>, engine: Engine) -> LoadConfig {
    let mut spec = LoadSpec::new(
        WorkloadKind::F,
        LoadModel::Open {
            rate: 200.0,
            max_in_flight: 16,
        },
        Duration::from_millis(2500),
    );
    spec.keys = 50;
    spec.value_size = 32;
    spec.history = true;
    spec.engine = engine;
    LoadConfig::new(spec, endpoints)
}

async fn open_loop_run(engine: Engine) {
    let kv = testkit::kv_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = open_config(vec![kv.clone(), kv], engine);
    config.history_path = Some(dir.path().join("history.jsonl"));
    config.stream_ops = true;
    if engine == Engine::Goose {
        config.goose_report = Some(dir.path().join("goose-report.html"));
    }
    let mut load = LoadRun::new(config).unwrap();
    let mut ops = load.take_ops().unwrap();
    let report = load.run(CancellationToken::new()).await.unwrap();
    let seen = &report.snapshots;
    let mut acked = 0;
    let mut streamed = 0;
    while let Ok(op) = ops.try_recv() {
        streamed += 1;
        assert!(op.complete_us >= op.invoke_us);
        acked += u64::from(
            op.write
                .is_some_and(|w| w.status == crate::history::WriteStatus::Acked),
        );
    }

    let c = report.counts();
    assert_eq!(c.ok + c.fail + c.unknown, c.ops);
    assert_eq!(c.ops, report.started);
    assert_eq!(report.planned, Some(500));
    assert_eq!(report.started + report.dropped, 500);
    assert_eq!(report.dropped, 0);
    assert_eq!(c.ok, c.ops, "{c:?}");
    // Every planned op ran, so the rate over the planned window is the target rate exactly;
    // the wall time (which includes the drain after the end) is reported on its own.
    assert_eq!(report.window(), Duration::from_millis(2500));
    assert!((report.tps() - 200.0).abs() < 1e-9, "{}", report.tps());
    assert!(acked > 0);
    assert_eq!(streamed, c.ops, "every operation is streamed");
    assert_eq!(report.history_lines, Some(c.ops));
    // One snapshot a second plus the last one, each covering the time since the one before.
    assert!(seen.len() >= 3, "{} snapshots", seen.len());
    let mut end = 0.0;
    for s in seen {
        assert!((s.t - (end + s.interval)).abs() < 1e-6, "{seen:?}");
        end = s.t;
    }
    assert!(seen.last().unwrap().last);
    assert_eq!(seen.last().unwrap().total.ops, c.ops);
    assert_eq!(seen.iter().map(|s| s.counts.ops).sum::<u64>(), c.ops);
    if engine == Engine::Goose {
        let report = std::fs::read_to_string(dir.path().join("goose-report.html")).unwrap();
        assert!(report.contains("rmw"), "goose report lacks the op kinds");
    }
}

/// `#[tokio::test]`s of `$body(engine)` on each engine, named `$name_tasks` and `$name_goose`.
macro_rules! on_both_engines {
    ($body:ident: $tasks:ident, $goose:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $tasks() {
            $body(Engine::Tasks).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $goose() {
            $body(Engine::Goose).await;
        }
    };
}

on_both_engines!(open_loop_run: open_loop_run_on_tasks_counts_every_scheduled_op,
    open_loop_run_on_goose_counts_every_scheduled_op);

/// A closed loop: every user runs one operation after another; the goose engine here keeps
/// no metrics of its own (no report, quiet).
async fn closed_loop_run(engine: Engine) {
    let kv = testkit::kv_server().await;
    let mut spec = LoadSpec::new(
        WorkloadKind::A,
        LoadModel::closed(4, None),
        Duration::from_millis(1500),
    );
    spec.keys = 20;
    spec.engine = engine;
    let mut config = LoadConfig::new(spec, vec![kv]);
    config.stream_ops = true;
    let mut load = LoadRun::new(config).unwrap();
    let mut ops = load.take_ops().unwrap();
    let report = load.run(CancellationToken::new()).await.unwrap();
    let c = report.counts();
    assert!(c.ops > 20, "{c:?}");
    assert_eq!(c.ok, c.ops, "{c:?}");
    assert_eq!(c.ops, report.started);
    assert_eq!(report.planned, None);
    let per_kind = report.per_kind();
    assert_eq!(
        per_kind.values().map(|s| s.count).sum::<u64>(),
        c.ops,
        "{per_kind:?}"
    );
    assert_eq!(report.latency().count, c.ops);
    assert_eq!(report.service().count, c.ops);
    let mut streamed = 0;
    while let Some(op) = ops.recv().await {
        assert!(op.invoke_us <= op.complete_us, "{op:?}");
        streamed += 1;
    }
    assert_eq!(streamed, c.ops, "every operation is streamed, once");
}

on_both_engines!(closed_loop_run: closed_loop_run_on_tasks_counts_every_op,
    closed_loop_run_on_goose_counts_every_op);

async fn a_down_cluster_run(engine: Engine) {
    let url = testkit::refusing_url().await;
    let mut config = open_config(vec![url], engine);
    config.spec.duration = Duration::from_secs(30);
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    let load = LoadRun::new(config).unwrap();
    let mut snapshots = load.snapshots();
    tokio::spawn(async move {
        // Cancel once the first snapshot shows errors.
        while snapshots.changed().await.is_ok() {
            if snapshots.borrow().counts.ops > 0 {
                break;
            }
        }
        stopper.cancel();
    });
    let report = load.run(cancel).await.unwrap();
    assert!(report.canceled);
    let c = report.counts();
    assert!(c.ops > 0);
    assert_eq!(c.ok, 0);
    assert_eq!(c.fail, c.ops);
    assert_eq!(c.errors.connect, c.ops);
    assert!(report.dropped > 0);
}

on_both_engines!(a_down_cluster_run: a_down_cluster_gives_errors_and_cancel_stops_promptly_on_tasks,
    a_down_cluster_gives_errors_and_cancel_stops_promptly_on_goose);

async fn warmup_run(engine: Engine) {
    let kv = testkit::kv_server().await;
    let mut config = open_config(vec![kv], engine);
    config.spec.warmup = Duration::from_secs(1);
    let load = LoadRun::new(config).unwrap();
    let report = load.run(CancellationToken::new()).await.unwrap();
    let seen = &report.snapshots;
    assert!(seen[0].warmup && !seen[1].warmup, "{seen:?}");
    let after: u64 = seen
        .iter()
        .filter(|s| !s.warmup)
        .map(|s| s.counts.ops)
        .sum();
    assert_eq!(report.counts().ops, after);
    assert!(
        report.started > report.counts().ops + 100,
        "the first second is out"
    );
}

on_both_engines!(warmup_run: warmup_seconds_are_left_out_of_the_totals_on_tasks,
    warmup_seconds_are_left_out_of_the_totals_on_goose);

/// An overloaded open-loop run (a pool of one against 2,000 ops/s) still ends: slots left
/// unclaimed at the claim deadline are dropped, not waited for. Goose users never stop by
/// themselves, so on the goose engine the run ends only when the conductor says so.
async fn overloaded_run(engine: Engine) {
    let slow = testkit::slow_server(Duration::from_millis(5)).await;
    let mut config = open_config(vec![slow], engine);
    config.spec.workload = WorkloadKind::W;
    config.spec.keys = 10_000;
    config.spec.value_size = 256;
    config.spec.model = LoadModel::Open {
        rate: 2000.0,
        max_in_flight: 1,
    };
    config.spec.duration = Duration::from_secs(1);
    config.spec.timeout = Duration::from_millis(300);
    let run = LoadRun::new(config).unwrap().run(CancellationToken::new());
    let report = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the run ends")
        .unwrap();
    assert_eq!(report.planned, Some(2000));
    assert!(
        report.dropped > 0,
        "started {} dropped {}",
        report.started,
        report.dropped
    );
    assert_eq!(report.started + report.dropped, 2000);
    assert!(report.counts().late > 0);
}

on_both_engines!(overloaded_run: an_overloaded_open_loop_run_ends_and_counts_the_dropped_on_tasks,
    an_overloaded_open_loop_run_ends_and_counts_the_dropped_on_goose);
