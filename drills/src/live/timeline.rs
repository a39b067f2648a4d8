//! [`Timeline`]: the scenario's fault schedule as the run goes: what is still to come, what is
//! active, what is over, and when each fault's window opened and closed.
//!
//! The fault executor pushes one [`FaultRecord`] per scheduled fault, in schedule order, so
//! record *i* is the fault spec *i*. A fault is active while its undo is pending. The recovery
//! shown is only what the view can see honestly: for a fault that hit the leader, the time
//! until a *different* leader was seen in a cluster view (the poller's own `t`; the view reads
//! the latest view each frame, so it can be up to a frame late), and the time since fire/heal.

use target_cluster::typ::NodeId;

use crate::fault::FaultRecord;
use crate::scenario::FaultSpec;

/// A scheduled fault, as the scenario states it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// When it fires, seconds from the start.
    pub at_s: f64,
    /// The action's name.
    pub action: String,
    /// The target as written.
    pub target: String,
    /// Undo after this many seconds.
    pub undo_after_s: Option<f64>,
}

impl From<&FaultSpec> for Planned {
    fn from(f: &FaultSpec) -> Self {
        Planned {
            at_s: f.at.as_secs_f64(),
            action: f.action.name().to_string(),
            target: f.target.to_string(),
            undo_after_s: f.undo_after.map(|d| d.as_secs_f64()),
        }
    }
}

/// A fault that fired: its window on the charts and its recovery so far.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// The action's name.
    pub action: String,
    /// The target as written.
    pub target: String,
    /// The nodes it resolved to.
    pub nodes: Vec<NodeId>,
    /// When it fired.
    pub fired_s: f64,
    /// When it was undone; `None` while active, and for faults with nothing to undo.
    pub healed_s: Option<f64>,
    /// Whether its undo is still pending.
    pub active: bool,
    /// The leader it hit, if it hit the leader.
    pub hit_leader: Option<NodeId>,
    /// A different leader seen after it fired: (node, seconds after firing).
    pub new_leader: Option<(NodeId, f64)>,
    /// Why it could not fire, if it could not.
    pub error: Option<String>,
}

impl FaultWindow {
    /// Where the window ends on a chart at time `now`: the heal, or `now` while active, or the
    /// firing instant for faults with nothing to undo.
    pub fn end(&self, now: f64) -> f64 {
        match (self.healed_s, self.active) {
            (Some(h), _) => h,
            (None, true) => now.max(self.fired_s),
            (None, false) => self.fired_s,
        }
    }

    /// When recovery starts: the heal, or the firing for faults with nothing to undo.
    pub fn recovery_from(&self) -> Option<f64> {
        if self.active || self.error.is_some() {
            return None;
        }
        Some(self.healed_s.unwrap_or(self.fired_s))
    }
}

/// What changed in the fault records since the last look.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Fault `i` fired (or failed to: see its `error`).
    Fired(usize),
    /// Fault `i` was undone.
    Healed(usize),
}

/// The schedule and the windows of the faults that fired.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    planned: Vec<Planned>,
    windows: Vec<FaultWindow>,
}

impl Timeline {
    /// The timeline of a schedule.
    pub fn new(specs: &[FaultSpec]) -> Self {
        Timeline {
            planned: specs.iter().map(Planned::from).collect(),
            windows: Vec::new(),
        }
    }

    /// Folds in the records as they are now; returns what changed, in order.
    pub fn observe(&mut self, records: &[FaultRecord]) -> Vec<Change> {
        let mut changes = Vec::new();
        for (i, r) in records.iter().enumerate() {
            match self.windows.get_mut(i) {
                None => {
                    self.windows.push(FaultWindow {
                        action: r.action.clone(),
                        target: r.target.clone(),
                        nodes: r.resolved.clone(),
                        fired_s: r.at_s,
                        healed_s: r.healed_at_s,
                        active: r.pending_undo,
                        hit_leader: r.hit_leader.filter(|_| r.deposes),
                        new_leader: None,
                        error: r.error.clone(),
                    });
                    changes.push(Change::Fired(i));
                    if r.healed_at_s.is_some() {
                        changes.push(Change::Healed(i));
                    }
                }
                Some(w) => {
                    let healed_now = w.healed_s.is_none() && r.healed_at_s.is_some();
                    w.healed_s = r.healed_at_s;
                    w.active = r.pending_undo;
                    if healed_now {
                        changes.push(Change::Healed(i));
                    }
                }
            }
        }
        changes
    }

    /// Notes the leader seen at `t`: the first different leader after a fault that hit the
    /// leader is its recovery. Returns the faults whose leader recovery this completed.
    pub fn observe_leader(&mut self, t: f64, leader: Option<NodeId>) -> Vec<usize> {
        let mut done = Vec::new();
        for (i, w) in self.windows.iter_mut().enumerate() {
            let (Some(old), Some(now)) = (w.hit_leader, leader) else {
                continue;
            };
            if w.new_leader.is_none() && t >= w.fired_s && now != old {
                w.new_leader = Some((now, t - w.fired_s));
                done.push(i);
            }
        }
        done
    }

    /// The faults that fired, in firing order.
    pub fn windows(&self) -> &[FaultWindow] {
        &self.windows
    }

    /// The whole schedule.
    pub fn planned(&self) -> &[Planned] {
        &self.planned
    }

    /// The faults still to fire.
    pub fn upcoming(&self) -> &[Planned] {
        &self.planned[self.windows.len().min(self.planned.len())..]
    }

    /// Whether any fired fault is not yet healed.
    pub fn any_active(&self) -> bool {
        self.windows.iter().any(|w| w.active)
    }

    /// Whether `now` lies within `span` seconds after a heal (or an undo-less fault).
    pub fn recovering(&self, now: f64, span: f64) -> bool {
        self.windows
            .iter()
            .filter_map(FaultWindow::recovery_from)
            .any(|from| now >= from && now - from < span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::fixture::record;
    use crate::scenario::builtin;

    #[test]
    fn windows_open_and_close() {
        let s = builtin("leader-kill").unwrap().unwrap();
        let mut tl = Timeline::new(&s.faults);
        assert_eq!(tl.upcoming().len(), 1);
        assert!(tl.observe(&[]).is_empty());

        let mut recs = vec![record(15.0, "kill", true)];
        assert_eq!(tl.observe(&recs), vec![Change::Fired(0)]);
        assert!(tl.upcoming().is_empty());
        assert!(tl.any_active());
        assert_eq!(tl.windows()[0].end(18.0), 18.0, "open window ends at now");
        assert!(tl.observe(&recs).is_empty(), "nothing new");

        recs[0].healed_at_s = Some(25.0);
        recs[0].pending_undo = false;
        assert_eq!(tl.observe(&recs), vec![Change::Healed(0)]);
        assert!(!tl.any_active());
        let w = &tl.windows()[0];
        assert_eq!((w.fired_s, w.end(40.0)), (15.0, 25.0), "closed window");
        assert!(tl.recovering(29.9, 5.0));
        assert!(!tl.recovering(30.0, 5.0));
        assert!(!tl.recovering(24.0, 5.0));
    }

    #[test]
    fn the_first_different_leader_is_the_recovery() {
        let mut tl = Timeline::default();
        tl.observe(&[record(15.0, "kill", true)]);
        assert!(
            tl.observe_leader(14.9, Some(2)).is_empty(),
            "before the fault"
        );
        assert!(tl.observe_leader(15.5, None).is_empty());
        assert!(tl.observe_leader(15.8, Some(1)).is_empty(), "same leader");
        assert_eq!(tl.observe_leader(16.25, Some(3)), vec![0]);
        assert_eq!(tl.windows()[0].new_leader, Some((3, 1.25)));
        assert!(
            tl.observe_leader(17.0, Some(2)).is_empty(),
            "only the first"
        );
    }

    #[test]
    fn undo_less_and_failed_faults() {
        let mut tl = Timeline::default();
        let mut failed = record(5.0, "kill", false);
        failed.error = Some("no leader to target".into());
        tl.observe(&[record(3.0, "restart", false), failed]);
        assert!(!tl.any_active());
        assert_eq!(tl.windows()[0].end(10.0), 3.0);
        assert!(tl.recovering(4.0, 5.0), "recovering after an instant fault");
        assert_eq!(tl.windows()[1].recovery_from(), None);
    }
}
