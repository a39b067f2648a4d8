//! [`Series`]: one figure over time, one point per snapshot (about one a second).
//!
//! The chart shows either the last [`WINDOW_S`] seconds or the whole run (the `t` key), so a
//! series keeps both: a ring buffer trimmed to the window, and the whole history. A point is
//! two `f64`s, so a day-long run holds about 1.4 MB per series; what is drawn is thinned to
//! the chart's width by [`thin`], so a long history costs nothing per frame beyond one pass.

use std::collections::VecDeque;

/// Length of the recent window, in seconds.
pub const WINDOW_S: f64 = 60.0;

/// One point: seconds since the start of the run, and the value.
pub type Point = (f64, f64);

/// A figure over time: the recent window and the whole run.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Points in `(newest − WINDOW_S, newest]`.
    recent: VecDeque<Point>,
    /// Every point, in time order.
    all: Vec<Point>,
}

impl Series {
    /// Appends a point. Points must come in time order; one older than the newest is ignored.
    pub fn push(&mut self, t: f64, v: f64) {
        if self.all.last().is_some_and(|(last, _)| t < *last) {
            return;
        }
        self.all.push((t, v));
        self.recent.push_back((t, v));
        while self
            .recent
            .front()
            .is_some_and(|(t0, _)| *t0 <= t - WINDOW_S)
        {
            self.recent.pop_front();
        }
    }

    /// The points of the last [`WINDOW_S`] seconds, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = Point> + '_ {
        self.recent.iter().copied()
    }

    /// Every point of the run, oldest first.
    pub fn all(&self) -> &[Point] {
        &self.all
    }

    /// The newest point.
    pub fn last(&self) -> Option<Point> {
        self.all.last().copied()
    }

    /// The points of the window asked for (`whole`: the run, else the recent window).
    pub fn points(&self, whole: bool) -> Vec<Point> {
        if whole {
            self.all.clone()
        } else {
            self.recent().collect()
        }
    }
}

/// Thins `points` to at most about `buckets × 2` points by keeping, per bucket of equal time,
/// its lowest and highest point in time order, so that dips and spikes survive.
pub fn thin(points: &[Point], buckets: usize) -> Vec<Point> {
    if points.len() <= buckets.saturating_mul(2) || buckets == 0 {
        return points.to_vec();
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let width = ((t1 - t0) / buckets as f64).max(f64::MIN_POSITIVE);
    let bucket_of = |t: f64| (((t - t0) / width).floor() as usize).min(buckets - 1);
    let mut out = Vec::with_capacity(buckets * 2);
    let mut start = 0;
    while start < points.len() {
        let bucket = bucket_of(points[start].0);
        let end = points[start..]
            .iter()
            .position(|p| bucket_of(p.0) > bucket)
            .map_or(points.len(), |n| start + n);
        let slice = &points[start..end];
        let lo = slice
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
            .map(|(i, _)| i);
        let hi = slice
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
            .map(|(i, _)| i);
        if let (Some(lo), Some(hi)) = (lo, hi) {
            out.push(slice[lo.min(hi)]);
            if lo != hi {
                out.push(slice[lo.max(hi)]);
            }
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_exactly_the_last_60_seconds() {
        let mut s = Series::default();
        for t in 1..=100 {
            s.push(t as f64, t as f64 * 10.0);
        }
        let recent: Vec<Point> = s.recent().collect();
        assert_eq!(recent.len(), 60);
        assert_eq!(recent.first(), Some(&(41.0, 410.0)));
        assert_eq!(recent.last(), Some(&(100.0, 1000.0)));
        assert_eq!(s.points(false), recent);
    }

    #[test]
    fn the_whole_run_is_kept_for_the_t_key() {
        let mut s = Series::default();
        for t in 1..=300 {
            s.push(t as f64, 1.0);
        }
        assert_eq!(s.all().len(), 300);
        assert_eq!(s.points(true).first(), Some(&(1.0, 1.0)));
        assert_eq!(s.last(), Some((300.0, 1.0)));
    }

    #[test]
    fn the_window_follows_time_not_point_count() {
        let mut s = Series::default();
        s.push(1.0, 1.0);
        s.push(2.0, 2.0);
        // A gap (the view missed snapshots): the old points fall out by time.
        s.push(70.0, 3.0);
        assert_eq!(s.recent().collect::<Vec<_>>(), vec![(70.0, 3.0)]);
        s.push(69.0, 9.0);
        assert_eq!(s.all().len(), 3, "out-of-order point ignored");
    }

    #[test]
    fn thinning_keeps_spikes_and_dips() {
        let mut pts: Vec<Point> = (0..1000).map(|t| (t as f64, 100.0)).collect();
        pts[500].1 = 5000.0;
        pts[700].1 = 0.0;
        let thin = thin(&pts, 50);
        assert!(thin.len() <= 100, "{}", thin.len());
        assert!(thin.contains(&(500.0, 5000.0)));
        assert!(thin.contains(&(700.0, 0.0)));
        assert!(thin.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
        assert_eq!(super::thin(&pts[..10], 50), pts[..10].to_vec());
    }
}
