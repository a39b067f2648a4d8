//! [`ViewState`]: everything the screen shows, folded from what the drill publishes (load
//! snapshots, cluster views, fault records, the phase). It is pure: no terminal, no clock, no
//! channel; each `observe_*` takes a value and the caller passes the time. That is what makes
//! it unit-testable and lets the render functions be plain functions of it.

use std::collections::BTreeMap;

use loadgen::Snapshot;
use loadgen::thresholds::{Metric, Observed, Status};
use target_cluster::typ::NodeId;

use super::ViewSpec;
use super::board::Board;
use super::events::{EventLog, Kind};
use super::panels::fmt::pct;
use super::series::Series;
use super::timeline::{Change, Timeline};
use crate::drill::Phase;
use crate::drill::poller::ClusterView;
use crate::fault::FaultRecord;

/// A second with at least this error rate (percent) is an error burst.
pub const BURST_ERROR_PCT: f64 = 5.0;
/// How long after a heal the header says "recovering", in seconds.
pub const RECOVERING_S: f64 = 5.0;

/// An error burst going on: consecutive seconds at or above [`BURST_ERROR_PCT`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Burst {
    event: u64,
    from: f64,
    to: f64,
    peak: f64,
}

/// What the live view shows, and the view's own switches.
#[derive(Debug, Clone)]
pub struct ViewState {
    /// Scenario name.
    pub name: String,
    /// Planned length of the load, seconds.
    pub total_s: f64,
    /// Open loop (a rate): the late count is shown.
    pub open_loop: bool,
    /// Seconds since the start of the run, as of the last tick.
    pub now_s: f64,
    /// The drill's phase.
    pub phase: Phase,
    /// The last full-second snapshot.
    pub snapshot: Option<Snapshot>,
    /// TPS per second.
    pub tps: Series,
    /// p99 latency per second, ms.
    pub p99: Series,
    /// The threshold table.
    pub board: Board,
    /// The last cluster view.
    pub cluster: ClusterView,
    /// The fault schedule and windows.
    pub timeline: Timeline,
    /// What happened, newest first.
    pub events: EventLog,
    /// Charts show the whole run instead of the last 60 s (`t`).
    pub whole_run: bool,
    /// The help overlay is shown (`?`).
    pub help: bool,
    /// The user asked to stop; the drill is winding down.
    pub stopping: bool,
    /// The leader of the last cluster view that had been seen (`None` inside: no leader).
    leader: Option<Option<NodeId>>,
    /// The last node seen leading.
    last_known_leader: Option<NodeId>,
    /// The highest term seen at the first poll of the load, and the highest seen since.
    terms: Option<(u64, u64)>,
    /// Check notes already logged.
    notes_seen: usize,
    /// Per node: CPU samples since the last snapshot (sum, count).
    cpu: BTreeMap<NodeId, (f64, u32)>,
    burst: Option<Burst>,
}

impl ViewState {
    /// The state before anything was observed.
    pub fn new(spec: &ViewSpec) -> Self {
        ViewState {
            name: spec.name.clone(),
            total_s: spec.total_s,
            open_loop: spec.open_loop,
            now_s: 0.0,
            phase: Phase::Starting,
            snapshot: None,
            tps: Series::default(),
            p99: Series::default(),
            board: Board::new(&spec.thresholds),
            cluster: ClusterView::default(),
            timeline: Timeline::new(&spec.faults),
            events: EventLog::default(),
            whole_run: false,
            help: false,
            stopping: false,
            leader: None,
            last_known_leader: None,
            terms: None,
            notes_seen: 0,
            cpu: BTreeMap::new(),
            burst: None,
        }
    }

    /// Elections (term changes) since the load started, once a term has been seen.
    pub fn elections(&self) -> Option<u64> {
        self.terms.map(|(first, last)| last - first)
    }

    /// Sets the clock (seconds since the start of the run).
    pub fn tick(&mut self, now_s: f64) {
        self.now_s = self.now_s.max(now_s);
    }

    /// Folds in a load snapshot. The same snapshot seen twice counts once; the short tail
    /// snapshot at the end of the load (under half a second) is kept for the counters but not
    /// judged or charted, since its rate says nothing.
    pub fn observe_snapshot(&mut self, s: &Snapshot) {
        let seen = self.snapshot.as_ref().map(|p| p.t);
        if s.interval <= 0.0 || seen.is_some_and(|t| s.t <= t) {
            return;
        }
        self.tick(s.t);
        if s.last && s.interval < 0.5 {
            if let Some(prev) = &mut self.snapshot {
                prev.total = s.total;
                prev.last = true;
            }
            return;
        }
        let mut observed = Observed::from_load(&s.counts, &s.latency, s.tps);
        observed.node_cpu = self.busiest_cpu();
        self.board.observe(&observed, !s.warmup);
        self.tps.push(s.t, s.tps);
        if s.latency.count > 0 {
            self.p99.push(s.t, s.latency.p99);
        }
        self.observe_errors(s.t, s.counts.error_rate().unwrap_or(0.0));
        self.snapshot = Some(s.clone());
    }

    /// The busiest node's mean CPU since the last snapshot, and starts a new second.
    fn busiest_cpu(&mut self) -> Option<f64> {
        let busiest = self
            .cpu
            .values()
            .filter(|(_, n)| *n > 0)
            .map(|(sum, n)| sum / f64::from(*n))
            .reduce(f64::max);
        self.cpu.clear();
        busiest
    }

    /// Opens, extends or closes an error burst.
    fn observe_errors(&mut self, t: f64, err_pct: f64) {
        if err_pct < BURST_ERROR_PCT {
            self.burst = None;
            return;
        }
        match &mut self.burst {
            Some(b) => {
                b.to = t;
                b.peak = b.peak.max(err_pct);
                let text = format!(
                    "error burst: {:.0} s, peak {} errors (since {:.0}s)",
                    b.to - b.from + 1.0,
                    pct(b.peak),
                    b.from
                );
                let id = b.event;
                self.events.amend(id, text);
            }
            None => {
                let text = format!("error burst: {} errors", pct(err_pct));
                let event = self.events.push(t, Kind::Errors, text);
                self.burst = Some(Burst {
                    event,
                    from: t,
                    to: t,
                    peak: err_pct,
                });
            }
        }
    }

    /// Folds in a cluster view: leader changes, CPU samples, leader recovery of faults.
    pub fn observe_cluster(&mut self, v: &ClusterView) {
        if v.nodes.is_empty() || (!self.cluster.nodes.is_empty() && v.t <= self.cluster.t) {
            return;
        }
        let top = v
            .nodes
            .iter()
            .filter_map(|n| n.status.as_ref())
            .map(|s| s.term)
            .max();
        if let Some(top) = top {
            let (first, last) = self.terms.get_or_insert((top, top));
            // Before the load starts the clock reads 0: the term at that point is the base.
            if v.t <= 0.0 {
                *first = top;
            }
            *last = (*last).max(top);
        }
        for n in &v.nodes {
            if let Some(pct) = n.cpu_pct {
                let e = self.cpu.entry(n.id).or_default();
                e.0 += pct;
                e.1 += 1;
            }
        }
        if self.leader != Some(v.leader) {
            let term = |id: NodeId| {
                v.nodes
                    .iter()
                    .find(|n| n.id == id)
                    .and_then(|n| n.status.as_ref())
                    .map_or(String::new(), |s| format!(" (term {})", s.term))
            };
            let text = match (self.last_known_leader, v.leader) {
                (Some(old), Some(l)) if old != l => format!("leader {old} → {l}{}", term(l)),
                (Some(_), Some(l)) => format!("leader is node {l} again{}", term(l)),
                (None, Some(l)) => format!("leader is node {l}{}", term(l)),
                (Some(old), None) => format!("no leader (was node {old})"),
                (None, None) => "no leader".to_string(),
            };
            self.events.push(v.t, Kind::Leader, text);
            self.leader = Some(v.leader);
            self.last_known_leader = v.leader.or(self.last_known_leader);
        }
        for i in self.timeline.observe_leader(v.t, v.leader) {
            let w = &self.timeline.windows()[i];
            if let Some((l, after)) = w.new_leader {
                let text = format!(
                    "{} {}: new leader {l} after {after:.1}s",
                    w.action, w.target
                );
                self.events.push(v.t, Kind::Leader, text);
            }
        }
        self.tick(v.t);
        self.cluster = v.clone();
    }

    /// Folds in the fault records as they are now.
    pub fn observe_faults(&mut self, records: &[FaultRecord]) {
        for change in self.timeline.observe(records) {
            let (i, kind) = match change {
                Change::Fired(i) => (i, Kind::Fault),
                Change::Healed(i) => (i, Kind::Heal),
            };
            let w = &self.timeline.windows()[i];
            let nodes = nodes_text(&w.nodes);
            let (t, text) = match (kind, &w.error) {
                (Kind::Fault, Some(e)) => (
                    w.fired_s,
                    format!("{} {} could not fire: {e}", w.action, w.target),
                ),
                (Kind::Fault, None) => (
                    w.fired_s,
                    format!("fired {} {} {nodes}", w.action, w.target),
                ),
                _ => (
                    w.healed_s.unwrap_or(self.now_s),
                    format!("healed {} {} {nodes}", w.action, w.target),
                ),
            };
            self.events.push(t, kind, text);
        }
    }

    /// Folds in the drill's phase.
    /// Folds in the check notes published so far (each is logged once).
    pub fn observe_notes(&mut self, notes: &[String]) {
        for note in notes.iter().skip(self.notes_seen) {
            let t = self.now_s;
            self.events.push(t, Kind::Check, note.clone());
        }
        self.notes_seen = self.notes_seen.max(notes.len());
    }

    /// Folds in the drill's phase.
    pub fn observe_phase(&mut self, phase: Phase) {
        if phase != self.phase {
            self.phase = phase;
            let t = self.now_s;
            self.events
                .push(t, Kind::Phase, format!("phase: {}", phase.name()));
        }
    }

    /// What the header calls the moment: the drill's phase, or during the load "fault
    /// active" (a fired fault not yet healed) or "recovering" (within 5 s after a heal).
    pub fn phase_label(&self) -> &'static str {
        match self.phase {
            Phase::Warmup | Phase::Load if self.timeline.any_active() => "fault active",
            Phase::Warmup | Phase::Load if self.timeline.recovering(self.now_s, RECOVERING_S) => {
                "recovering"
            }
            p => p.name(),
        }
    }

    /// The worst status of the threshold table so far.
    pub fn verdict(&self) -> Status {
        self.board.verdict()
    }

    /// The status that colours the current value of `metric` (`None`: no threshold).
    pub fn now_status(&self, metric: Metric) -> Option<Status> {
        self.board.now_status(metric)
    }
}

/// `[1,2]` for a list of node ids (empty for none).
pub fn nodes_text(nodes: &[NodeId]) -> String {
    if nodes.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = nodes.iter().map(u64::to_string).collect();
    format!("[{}]", ids.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture;

    #[test]
    fn snapshots_feed_charts_and_the_table_once_each() {
        let mut v = fixture::state();
        let s = fixture::snapshot(41.0, 310.0, 12.0, 0);
        v.observe_snapshot(&s);
        let n = v.tps.all().len();
        v.observe_snapshot(&s);
        assert_eq!(v.tps.all().len(), n, "the same snapshot twice counts once");
        assert_eq!(v.tps.last(), Some((41.0, 310.0)));
        assert_eq!(v.board.row(Metric::P99).unwrap().now, Some(12.0));
    }

    #[test]
    fn statuses_switch_at_exactly_the_levels() {
        let mut v = ViewState::new(&fixture::spec());
        v.observe_snapshot(&fixture::snapshot(4.0, 300.0, 800.0, 0));
        assert_eq!(v.verdict(), Status::Ok);
        v.observe_snapshot(&fixture::snapshot(5.0, 300.0, 800.001, 0));
        assert_eq!(v.verdict(), Status::Warn);
        assert_eq!(v.now_status(Metric::P99), Some(Status::Warn));
        v.observe_snapshot(&fixture::snapshot(6.0, 300.0, 1500.0, 0));
        assert_eq!(v.verdict(), Status::Break);
        v.observe_snapshot(&fixture::snapshot(7.0, 300.0, 3.0, 0));
        assert_eq!(v.now_status(Metric::P99), Some(Status::Ok));
        assert_eq!(v.verdict(), Status::Break, "worst so far sticks");
        assert_eq!(v.now_status(Metric::Tps), None, "no tps threshold: neutral");
    }

    #[test]
    fn success_rate_at_exactly_its_levels() {
        // 300 ops: 1.5 % failed is 98.5 % success (warn); 15 failed is 95 % (break).
        let mut v = ViewState::new(&fixture::spec());
        v.observe_snapshot(&fixture::snapshot(4.0, 300.0, 5.0, 0));
        assert_eq!(v.verdict(), Status::Ok);
        v.observe_snapshot(&fixture::snapshot(5.0, 300.0, 5.0, 14));
        assert_eq!(v.now_status(Metric::SuccessRate), Some(Status::Warn));
        v.observe_snapshot(&fixture::snapshot(6.0, 300.0, 5.0, 15));
        assert_eq!(v.now_status(Metric::SuccessRate), Some(Status::Break));
        assert_eq!(v.verdict(), Status::Break);
    }

    #[test]
    fn error_bursts_are_one_event_per_burst() {
        let mut v = ViewState::new(&fixture::spec());
        v.observe_snapshot(&fixture::snapshot(4.0, 300.0, 5.0, 3)); // 1 %: no burst
        v.observe_snapshot(&fixture::snapshot(5.0, 300.0, 5.0, 15)); // exactly 5 %
        v.observe_snapshot(&fixture::snapshot(6.0, 300.0, 5.0, 150));
        v.observe_snapshot(&fixture::snapshot(7.0, 300.0, 5.0, 0));
        v.observe_snapshot(&fixture::snapshot(8.0, 300.0, 5.0, 30));
        let bursts: Vec<_> = v.events.iter().filter(|e| e.kind == Kind::Errors).collect();
        assert_eq!(bursts.len(), 2, "{bursts:?}");
        assert!(
            bursts[1].text.contains("2 s, peak 50.0%"),
            "{}",
            bursts[1].text
        );
    }

    #[test]
    fn leader_changes_and_fault_windows_make_events() {
        let mut v = ViewState::new(&fixture::spec());
        v.observe_cluster(&fixture::cluster(1.0, Some(1)));
        let mut recs = vec![fixture::fault(15.0, true)];
        v.tick(15.0);
        v.observe_faults(&recs);
        v.observe_phase(Phase::Load);
        assert_eq!(v.phase_label(), "fault active");
        v.observe_cluster(&fixture::cluster(15.2, None));
        v.observe_cluster(&fixture::cluster(16.5, Some(2)));
        assert_eq!(v.timeline.windows()[0].new_leader, Some((2, 1.5)));
        recs[0].healed_at_s = Some(25.0);
        recs[0].pending_undo = false;
        v.tick(25.5);
        v.observe_faults(&recs);
        assert_eq!(v.phase_label(), "recovering");
        v.tick(31.0);
        assert_eq!(v.phase_label(), "load");
        let texts: Vec<&str> = v.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "healed kill leader [1]",
                "kill leader: new leader 2 after 1.5s",
                "leader 1 → 2 (term 2)",
                "no leader (was node 1)",
                "phase: load",
                "fired kill leader [1]",
                "leader is node 1 (term 2)",
            ]
        );
    }

    #[test]
    fn cpu_is_averaged_per_second_for_the_node_cpu_threshold() {
        let mut v = ViewState::new(&fixture::spec());
        for (i, pct) in [70.0, 90.0, 80.0].into_iter().enumerate() {
            let mut c = fixture::cluster(3.1 + i as f64 * 0.2, Some(1));
            c.nodes[0].cpu_pct = Some(pct);
            v.observe_cluster(&c);
        }
        v.observe_snapshot(&fixture::snapshot(4.0, 300.0, 5.0, 0));
        let row = v.board.row(Metric::NodeCpu).unwrap();
        assert_eq!(row.now, Some(80.0), "mean of the second, busiest node");
        assert_eq!(row.status, Status::Warn);
    }

    #[test]
    fn warmup_is_shown_but_not_judged() {
        let mut v = ViewState::new(&fixture::spec());
        let mut s = fixture::snapshot(1.0, 300.0, 5000.0, 0);
        s.warmup = true;
        v.observe_snapshot(&s);
        v.observe_phase(Phase::Warmup);
        assert_eq!(v.verdict(), Status::Unchecked);
        assert_eq!(v.phase_label(), "warmup");
        assert_eq!(v.p99.last(), Some((1.0, 5000.0)));
    }
}
