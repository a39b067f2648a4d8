//! [`Board`]: the live threshold table, one row per metric of the scenario's `[thresholds]`.
//!
//! Each row keeps the last one-second value (`now`) and the worst one-second value of the
//! judged part of the run (after warmup). Its status is the status of that worst value, judged
//! with loadgen's own [`judge`] (warn strict, break inclusive; lower is worse for
//! `success_rate` and `tps`), so the live view and the final verdict share one definition of
//! the levels. The worst *second* is stricter than the final verdict, which judges the whole
//! run at once: a one-second outage can show ✗ here and still pass overall. The header says
//! "worst 1 s" for that reason.

use loadgen::thresholds::{Levels, Metric, Observed, Status, Thresholds, judge};

/// One metric of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The metric.
    pub metric: Metric,
    /// Its warn and break levels.
    pub levels: Levels,
    /// The last one-second value, if one was observed.
    pub now: Option<f64>,
    /// The worst one-second value of the judged part of the run.
    pub worst: Option<f64>,
    /// The status of `worst` (ok until something is observed).
    pub status: Status,
}

impl Row {
    /// The status of the last value (`None` when there is none).
    pub fn now_status(&self) -> Option<Status> {
        self.now.map(|v| judge(self.metric, &self.levels, v))
    }
}

/// The threshold table as the run goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    rows: Vec<Row>,
}

/// The value of `metric` in `observed`.
pub fn value_of(observed: &Observed, metric: Metric) -> Option<f64> {
    match metric {
        Metric::P50 => observed.p50,
        Metric::P90 => observed.p90,
        Metric::P99 => observed.p99,
        Metric::P999 => observed.p999,
        Metric::Max => observed.max,
        Metric::SuccessRate => observed.success_rate,
        Metric::ErrorRate => observed.error_rate,
        Metric::Tps => observed.tps,
        Metric::NodeCpu => observed.node_cpu,
    }
}

/// Whether `a` is worse than `b` for `metric`.
fn worse(metric: Metric, a: f64, b: f64) -> bool {
    if metric.lower_is_worse() {
        a < b
    } else {
        a > b
    }
}

impl Board {
    /// An empty table for `thresholds`, in the table's order.
    pub fn new(thresholds: &Thresholds) -> Self {
        let rows = thresholds
            .0
            .iter()
            .map(|(metric, levels)| Row {
                metric: *metric,
                levels: *levels,
                now: None,
                worst: None,
                // Nothing judged yet: not a pass until a value is.
                status: Status::Unchecked,
            })
            .collect();
        Board { rows }
    }

    /// Folds in one second. Metrics `observed` has no value for keep their last value.
    /// `judged` is false during warmup: `now` moves, `worst` and the status do not.
    pub fn observe(&mut self, observed: &Observed, judged: bool) {
        for row in &mut self.rows {
            let Some(v) = value_of(observed, row.metric) else {
                continue;
            };
            row.now = Some(v);
            if !judged {
                continue;
            }
            if row.worst.is_none_or(|w| worse(row.metric, v, w)) {
                row.worst = Some(v);
                row.status = judge(row.metric, &row.levels, v);
            }
        }
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The row of `metric`, if the scenario has a threshold on it.
    pub fn row(&self, metric: Metric) -> Option<&Row> {
        self.rows.iter().find(|r| r.metric == metric)
    }

    /// The status of the current value of `metric`: `None` without a threshold or a value.
    pub fn now_status(&self, metric: Metric) -> Option<Status> {
        self.row(metric).and_then(Row::now_status)
    }

    /// The worst status of the table: the verdict so far.
    pub fn verdict(&self) -> Status {
        self.rows
            .iter()
            .map(|r| r.status)
            .max()
            .unwrap_or(Status::Ok)
    }
}

/// `pass`, `warn` or `fail`, as the final verdict names a status.
pub fn verdict_name(s: Status) -> &'static str {
    match s {
        Status::Unchecked => "unchecked",
        Status::Ok => "pass",
        Status::Warn => "warn",
        Status::Break => "fail",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p99(v: f64) -> Observed {
        Observed {
            p99: Some(v),
            ..Observed::default()
        }
    }

    fn success(v: f64) -> Observed {
        Observed {
            success_rate: Some(v),
            ..Observed::default()
        }
    }

    #[test]
    fn p99_switches_at_exactly_the_levels() {
        let mut b = Board::new(&Thresholds::default());
        b.observe(&p99(800.0), true);
        assert_eq!(b.row(Metric::P99).unwrap().status, Status::Ok, "800 is ok");
        b.observe(&p99(800.001), true);
        assert_eq!(b.row(Metric::P99).unwrap().status, Status::Warn);
        b.observe(&p99(1499.999), true);
        assert_eq!(b.row(Metric::P99).unwrap().status, Status::Warn);
        b.observe(&p99(1500.0), true);
        assert_eq!(
            b.row(Metric::P99).unwrap().status,
            Status::Break,
            "break inclusive"
        );
        assert_eq!(b.verdict(), Status::Break);
    }

    #[test]
    fn success_rate_is_worse_when_lower() {
        let mut b = Board::new(&Thresholds::default());
        b.observe(&success(99.5), true);
        assert_eq!(b.row(Metric::SuccessRate).unwrap().status, Status::Ok);
        b.observe(&success(100.0), true);
        let row = b.row(Metric::SuccessRate).unwrap();
        assert_eq!(
            row.worst,
            Some(99.5),
            "a better second does not replace the worst"
        );
        assert_eq!(row.now, Some(100.0));
        b.observe(&success(99.49), true);
        assert_eq!(b.row(Metric::SuccessRate).unwrap().status, Status::Warn);
        b.observe(&success(95.01), true);
        assert_eq!(b.row(Metric::SuccessRate).unwrap().status, Status::Warn);
        b.observe(&success(95.0), true);
        assert_eq!(b.row(Metric::SuccessRate).unwrap().status, Status::Break);
    }

    #[test]
    fn now_status_follows_the_current_second() {
        let mut b = Board::new(&Thresholds::default());
        assert_eq!(b.now_status(Metric::P99), None);
        b.observe(&p99(2000.0), true);
        b.observe(&p99(10.0), true);
        assert_eq!(b.now_status(Metric::P99), Some(Status::Ok));
        assert_eq!(b.row(Metric::P99).unwrap().status, Status::Break, "sticky");
        assert_eq!(b.now_status(Metric::Tps), None, "no threshold on tps");
    }

    #[test]
    fn warmup_seconds_move_now_but_are_not_judged() {
        let mut b = Board::new(&Thresholds::default());
        b.observe(&p99(5000.0), false);
        let row = b.row(Metric::P99).unwrap();
        assert_eq!(
            (row.now, row.worst, row.status),
            (Some(5000.0), None, Status::Unchecked)
        );
        assert_eq!(
            verdict_name(b.verdict()),
            "unchecked",
            "nothing judged is no pass"
        );
    }
}
