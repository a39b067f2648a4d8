//! `--metrics-listen ADDR`: the run as OpenMetrics text at `http://ADDR/metrics`, for
//! Prometheus (and so Grafana) while it runs.
//!
//! Like the live view, it reads the drill's watch channels ([`DrillWatch`]) and never waits on
//! them: a scrape borrows the latest load snapshot, cluster view, phase and fault records and
//! encodes them (prometheus-client) into a fresh registry, so serving costs nothing between
//! scrapes and nothing on the load's path. One listener serves a whole command: each run of a
//! repeat, and each step of a capacity search, is followed in turn.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use loadgen::metrics::{BUCKET_BOUNDS_MS, LatencyBuckets};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use tokio_util::sync::CancellationToken;

use loadgen::Snapshot;
use tokio::sync::watch;

use crate::capacity::CapacityProgress;
use crate::drill::{DrillWatch, Phase};

/// The content type of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a scrape reads.
#[derive(Default)]
struct Current {
    /// The run being followed, and its name.
    run: Option<(String, DrillWatch)>,
    /// The capacity search being followed.
    search: Option<watch::Receiver<CapacityProgress>>,
}

/// The listener and what it follows. Dropping it stops the listener.
pub struct Metrics {
    current: Arc<Mutex<Current>>,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("addr", &self.addr).finish()
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Metrics {
    /// Binds `addr` (port 0 picks a free port) and serves `/metrics` until dropped.
    pub async fn listen(addr: &str) -> Result<Metrics, String> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("--metrics-listen: {e}"))?;
        let current = Arc::new(Mutex::new(Current::default()));
        let stop = CancellationToken::new();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get({
                let current = current.clone();
                move || {
                    let body = render(&current.lock().unwrap_or_else(|e| e.into_inner()));
                    async move { ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body) }
                }
            }),
        );
        let until = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the metrics listener stopped");
            }
        });
        Ok(Metrics {
            current,
            addr,
            stop,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the figures of the run `name` from now on.
    pub fn follow(&self, name: &str, watch: DrillWatch) {
        self.lock().run = Some((name.to_string(), watch));
    }

    /// Serves the figures of a capacity search from now on: its step and rate, and the load
    /// of the step that runs.
    pub fn follow_search(&self, progress: watch::Receiver<CapacityProgress>) {
        self.lock().search = Some(progress);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The run's latency histogram, from the snapshot's cumulative buckets.
#[derive(Debug)]
struct RunLatency(LatencyBuckets);

impl TypedMetric for RunLatency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for RunLatency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let b = &self.0;
        // prometheus-client wants each bucket's own count, with +Inf last.
        let mut buckets = Vec::with_capacity(BUCKET_BOUNDS_MS.len() + 1);
        let mut below = 0;
        for (ms, le) in BUCKET_BOUNDS_MS.iter().zip(&b.le) {
            buckets.push((ms / 1000.0, le.saturating_sub(below)));
            below = *le;
        }
        buckets.push((f64::INFINITY, b.count.saturating_sub(below)));
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            b.sum_ms / 1000.0,
            b.count,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn gauge(v: f64) -> Gauge<f64, AtomicU64> {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(v);
    g
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

/// The OpenMetrics text of what `c` follows now.
fn render(c: &Current) -> String {
    let mut r = Registry::with_prefix("raftdrill");
    r.register(
        "build",
        "The raftdrill serving these metrics",
        Info::new(vec![("version", crate::versioned::RAFTDRILL_VERSION)]),
    );
    if let Some(search) = &c.search {
        let p = search.borrow().clone();
        r.register(
            "capacity_steps_done",
            "Steps of the capacity search judged so far",
            counter(p.steps.len() as u64),
        );
        if let Some(rate) = p.current_rate {
            r.register(
                "capacity_step",
                "The capacity search's running step (1 for the first)",
                gauge((p.steps.len() + 1) as f64),
            );
            r.register_with_unit(
                "capacity_step_rate",
                "The open-loop rate of the running capacity step",
                Unit::Other("ops_per_second".into()),
                gauge(rate),
            );
        }
        if c.run.is_none() {
            load_metrics(&mut r, &p.current);
        }
    }
    if let Some((name, watch)) = &c.run {
        run_metrics(&mut r, name, watch);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
    out
}

/// The figures of one run.
fn run_metrics(r: &mut Registry, name: &str, w: &DrillWatch) {
    r.register(
        "run",
        "The run being followed",
        Info::new(vec![("scenario", name.to_string())]),
    );
    r.register_with_unit(
        "run_elapsed",
        "Time since the run's clock started",
        Unit::Seconds,
        gauge(w.clock.now_s()),
    );
    let phases = Family::<Labels, Gauge>::default();
    let now = *w.phase.borrow();
    for p in Phase::ALL {
        phases
            .get_or_create(&labels(&[("phase", p.name().replace(' ', "_"))]))
            .set(i64::from(p == now));
    }
    r.register(
        "phase",
        "1 for the phase the run is in, 0 for the others",
        phases,
    );

    load_metrics(r, &w.snapshots.borrow().clone());
    node_metrics(r, w);
    fault_metrics(r, w);
}

/// The load: counts since the warmup, the last second, the latency histogram.
fn load_metrics(r: &mut Registry, s: &Snapshot) {
    let ops = Family::<Labels, Counter>::default();
    for (kind, o) in &s.total_per_kind {
        for (outcome, n) in [("ok", o.ok), ("fail", o.fail), ("unknown", o.unknown)] {
            let l = [("kind", kind.as_str().into()), ("outcome", outcome.into())];
            ops.get_or_create(&labels(&l)).inc_by(n);
        }
    }
    r.register(
        "operations",
        "Operations completed since the warmup, by kind (read, update, insert, rmw) and outcome \
         (unknown: may have been applied)",
        ops,
    );
    let errors = Family::<Labels, Counter>::default();
    let e = &s.total.errors;
    for (class, n) in [
        ("timeout", e.timeout),
        ("connect", e.connect),
        ("reset", e.reset),
        ("no_leader", e.no_leader),
        ("5xx", e.http_5xx),
        ("4xx", e.http_4xx),
    ] {
        errors
            .get_or_create(&labels(&[("class", class.into())]))
            .inc_by(n);
    }
    r.register(
        "errors",
        "Failed operations since the warmup, by class",
        errors,
    );
    r.register(
        "late_starts",
        "Open loop: operations started later than the tolerance after their intended time",
        counter(s.total.late),
    );
    r.register_with_unit(
        "throughput",
        "Operations completed in the last second",
        Unit::Other("ops_per_second".into()),
        gauge(s.tps),
    );
    let quantiles = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let l = &s.latency;
    for (q, ms) in [
        ("0.5", l.p50),
        ("0.9", l.p90),
        ("0.99", l.p99),
        ("0.999", l.p999),
        ("1", l.max),
    ] {
        quantiles
            .get_or_create(&labels(&[("quantile", q.into())]))
            .set(ms / 1000.0);
    }
    r.register_with_unit(
        "last_second_latency",
        "Latency quantiles of the operations of the last second (1: the largest)",
        Unit::Seconds,
        quantiles,
    );
    // In seconds, named so rather than given a UNIT line: some OpenMetrics readers refuse a
    // unit on a histogram.
    r.register(
        "operation_latency_seconds",
        "Latency of every operation since the warmup, from its intended start in open loop",
        RunLatency(s.run_latency.clone()),
    );
}

/// One series per node of the latest cluster view.
fn node_metrics(r: &mut Registry, w: &DrillWatch) {
    let view = w.cluster.borrow().clone();
    let up = Family::<Labels, Gauge>::default();
    let leader = Family::<Labels, Gauge>::default();
    let term = Family::<Labels, Gauge>::default();
    let applied = Family::<Labels, Gauge>::default();
    let cpu = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let rss = Family::<Labels, Gauge>::default();
    for n in &view.nodes {
        let id = labels(&[("node", n.id.to_string())]);
        let answers = n.status.is_some();
        up.get_or_create(&labels(&[
            ("node", n.id.to_string()),
            ("state", n.state.name().into()),
        ]))
        .set(i64::from(answers));
        leader
            .get_or_create(&id)
            .set(i64::from(view.leader == Some(n.id)));
        if let Some(s) = &n.status {
            term.get_or_create(&id).set(s.term as i64);
            applied.get_or_create(&id).set(s.applied as i64);
        }
        if let Some(c) = n.cpu_pct {
            cpu.get_or_create(&id).set(c / 100.0);
        }
        if let Some(b) = n.rss_bytes {
            rss.get_or_create(&id).set(b as i64);
        }
    }
    r.register(
        "node_up",
        "1 when the node answered the last status poll; state: as raftdrill left it",
        up,
    );
    r.register(
        "node_leader",
        "1 for the leader the cluster agrees on",
        leader,
    );
    r.register("node_term", "The node's Raft term", term);
    r.register(
        "node_applied_index",
        "The last log index the node applied",
        applied,
    );
    r.register_with_unit(
        "node_cpu",
        "The node's CPU use in cores",
        Unit::Other("cores".into()),
        cpu,
    );
    r.register_with_unit(
        "node_resident_memory",
        "The node's resident memory",
        Unit::Bytes,
        rss,
    );
}

/// The faults fired so far, and which are in effect.
fn fault_metrics(r: &mut Registry, w: &DrillWatch) {
    let records = w
        .faults
        .lock()
        .map(|r| r.clone())
        .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
    let active = Family::<Labels, Gauge>::default();
    for (i, f) in records.iter().enumerate() {
        active
            .get_or_create(&labels(&[
                ("fault", i.to_string()),
                ("action", f.action.clone()),
                ("target", f.target.clone()),
            ]))
            .set(i64::from(f.healed_at_s.is_none() && f.error.is_none()));
    }
    r.register(
        "faults_fired",
        "Faults fired so far",
        counter(records.len() as u64),
    );
    r.register(
        "fault_active",
        "1 while a fault is in effect (fault: its index in the schedule)",
        active,
    );
}

#[cfg(test)]
mod tests;
