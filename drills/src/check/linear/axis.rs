//! The time axis of an anomaly's picture, with long idle gaps cut out.
//!
//! A window may hold a write from long before the failure (the one that produced the value a
//! stale read returned) beside a burst of operations a few milliseconds wide. On one linear
//! scale the burst would be a sliver. So the axis is piecewise: wherever nothing starts or ends
//! for longer than three times the median operation, the gap is drawn as a short break, and
//! each stretch between breaks keeps its own linear scale (the same for all stretches).

/// One stretch of the axis drawn to scale.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stretch {
    from: u64,
    to: u64,
    /// Where `from` is drawn.
    x: f64,
}

/// Maps times (µs) to x positions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimeAxis {
    stretches: Vec<Stretch>,
    scale: f64,
}

/// A mark on the axis: a tick with its time, or a break.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mark {
    /// A tick at x for time t.
    Tick(f64, u64),
    /// A cut-out gap drawn at x.
    Break(f64),
}

impl TimeAxis {
    /// An axis over the intervals `(start, end)` drawn from `left` over `width` pixels.
    pub(crate) fn new(intervals: &[(u64, u64)], left: f64, width: f64) -> Self {
        let mut times: Vec<u64> = intervals.iter().flat_map(|&(a, b)| [a, b]).collect();
        times.sort_unstable();
        times.dedup();
        let mut durations: Vec<u64> = intervals.iter().map(|&(a, b)| b - a).collect();
        durations.sort_unstable();
        let median = durations.get(durations.len() / 2).copied().unwrap_or(1);
        let gap = (3 * median).max(1);
        let first = times.first().copied().unwrap_or(0);

        // Lay stretches end to end in time units, a cut gap counting as `gap`.
        let mut stretches = vec![Stretch {
            from: first,
            to: first,
            x: 0.0,
        }];
        let mut units = 0.0;
        for pair in times.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b - a > gap {
                units += gap as f64;
                stretches.push(Stretch {
                    from: b,
                    to: b,
                    x: units,
                });
            } else {
                units += (b - a) as f64;
                if let Some(last) = stretches.last_mut() {
                    last.to = b;
                }
            }
        }
        let scale = width / units.max(1.0);
        for s in &mut stretches {
            s.x = left + s.x * scale;
        }
        TimeAxis { stretches, scale }
    }

    /// Where time `t` is drawn; a time inside a cut gap goes to the nearer side.
    pub(crate) fn x(&self, t: u64) -> f64 {
        let i = self.stretches.partition_point(|s| s.from <= t).max(1) - 1;
        let s = &self.stretches[i];
        if t <= s.to {
            s.x + t.saturating_sub(s.from) as f64 * self.scale
        } else {
            // Past this stretch, before the next: its end.
            s.x + (s.to - s.from) as f64 * self.scale
        }
    }

    /// Ticks at the start of each stretch and inside wide ones, and the breaks between them.
    pub(crate) fn marks(&self) -> Vec<Mark> {
        let mut marks = Vec::new();
        for (i, s) in self.stretches.iter().enumerate() {
            if i > 0 {
                let prev = &self.stretches[i - 1];
                let end = prev.x + (prev.to - prev.from) as f64 * self.scale;
                marks.push(Mark::Break((end + s.x) / 2.0));
            }
            marks.push(Mark::Tick(s.x, s.from));
            let step = nice_step((120.0 / self.scale).ceil() as u64);
            let mut last = s.x;
            let mut t = s.from - s.from % step + step;
            while t <= s.to {
                let x = self.x(t);
                if x - last >= 70.0 {
                    marks.push(Mark::Tick(x, t));
                    last = x;
                }
                t += step;
            }
        }
        marks
    }
}

/// The smallest step of 1, 2 or 5 × 10^k µs that is at least `min`.
fn nice_step(min: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if m * step >= min {
                return m * step;
            }
        }
        step *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_idle_gap_is_cut_and_the_rest_keeps_one_scale() {
        // One write long before a burst of three 100 µs operations.
        let axis = TimeAxis::new(
            &[
                (0, 100),
                (1_000_000, 1_000_100),
                (1_000_050, 1_000_150),
                (1_000_100, 1_000_200),
            ],
            0.0,
            600.0,
        );
        // Two stretches: 100 µs and 200 µs, and one cut gap of 300 µs: 600 units.
        assert_eq!(axis.stretches.len(), 2);
        assert_eq!(axis.x(0), 0.0);
        assert_eq!(axis.x(100), 100.0);
        assert_eq!(axis.x(1_000_000), 400.0);
        assert_eq!(axis.x(1_000_200), 600.0);
        assert_eq!(axis.x(500_000), 100.0, "inside the gap: its near side");
        let breaks = axis
            .marks()
            .iter()
            .filter(|m| matches!(m, Mark::Break(_)))
            .count();
        assert_eq!(breaks, 1);
    }

    #[test]
    fn a_busy_window_is_one_linear_stretch() {
        let axis = TimeAxis::new(&[(0, 1000), (200, 1500), (900, 2000)], 10.0, 200.0);
        assert_eq!(axis.stretches.len(), 1);
        assert_eq!(axis.x(1000), 110.0);
        assert!(matches!(axis.marks()[0], Mark::Tick(x, 0) if x == 10.0));
    }
}
