//! `raftdrill compare BASE NEW`: print the comparison, write `compare.md` and `compare.json`
//! in NEW, exit 1 when a limit is crossed, 5 when a watched figure cannot show a change, and
//! 2 when the folders cannot be compared or a `--limit` names no figure.

use crate::cli::CompareArgs;
use crate::compare::rules::Limits;
use crate::compare::{CompareError, Folder, compare, output};
use crate::exit::Exit;

/// Why `raftdrill compare` gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum CompareCmdError {
    /// A folder is unreadable, or the two are not comparable (exit 2).
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// compare.md or compare.json could not be written (exit 4).
    #[error(transparent)]
    Write(crate::report::ReportError),
}

impl CompareCmdError {
    /// The exit code.
    pub fn exit(&self) -> Exit {
        match self {
            CompareCmdError::Compare(_) => Exit::Usage,
            CompareCmdError::Write(_) => Exit::CannotRun,
        }
    }
}

/// Compares BASE with NEW.
pub fn run(args: &CompareArgs) -> Result<Exit, CompareCmdError> {
    let limits = Limits {
        max_p99_increase_pct: args.max_p99_increase,
        max_tps_drop_pct: args.max_tps_drop,
        max_recovery_increase_pct: args.max_recovery_increase,
        figures: args.limits.clone(),
    };
    let base = Folder::load(&args.base)?;
    let new = Folder::load(&args.new)?;
    let c = compare(&base, &new, limits)?;
    print!("{}", output::text(&c));
    output::write_files(&args.new, &c).map_err(CompareCmdError::Write)?;
    Ok(Exit::from_code(c.exit_code))
}
