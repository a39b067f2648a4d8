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
    /// 4: the run could not be carried out (cluster did not start, port in use, ...).
    CannotRun = 4,
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
            _ => Exit::CannotRun,
        }
    }
}
