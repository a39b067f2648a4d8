//! The exit codes of `raftdrill`, as ARCHITECTURE.md fixes them.

/// Why raftdrill exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: pass (warnings allowed).
    Pass = 0,
    /// 1: a threshold at its break level was crossed.
    ThresholdBroken = 1,
    /// 2: bad usage or a bad scenario file; nothing was started.
    Usage = 2,
    /// 3: data anomaly: an acknowledged write lost, or a history that is not linearizable.
    DataAnomaly = 3,
    /// 4: the run could not be carried out (cluster did not start, port in use, ...), or
    /// was stopped (verdict `aborted`).
    CannotRun = 4,
    /// 5: inconclusive: something the scenario asked to be checked could not be (a fault
    /// that did not fire, a check left undecided or skipped, an unreadable key, a load below
    /// the validity floor, a node that died unseen by the schedule).
    Inconclusive = 5,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

impl Exit {
    /// The exit of a recorded code (`exit_code` of a summary); an unknown code could not have
    /// been a verdict, so it reads as a run that was not carried out.
    pub fn from_code(code: u8) -> Exit {
        match code {
            0 => Exit::Pass,
            1 => Exit::ThresholdBroken,
            2 => Exit::Usage,
            3 => Exit::DataAnomaly,
            5 => Exit::Inconclusive,
            _ => Exit::CannotRun,
        }
    }

    /// How bad a recorded exit code is, for the worst of several runs: a data anomaly is the
    /// finding that matters most; then a run that could not be carried out (no evidence at
    /// all), then one whose evidence is incomplete (a run with no evidence must not hide
    /// behind one that merely was slow); then a broken threshold.
    pub fn rank(code: u8) -> u8 {
        match Exit::from_code(code) {
            Exit::Pass => 0,
            Exit::ThresholdBroken => 1,
            Exit::Usage => 2,
            Exit::Inconclusive => 3,
            Exit::CannotRun => 4,
            Exit::DataAnomaly => 5,
        }
    }
}
