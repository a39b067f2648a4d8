//! One module per subcommand. Each parses what its flags leave to parse, calls the library,
//! and returns an [`Exit`] or a [`CmdError`]; [`CmdError::exit`] is the one place an error
//! becomes an exit code (see `crate::exit` for the codes).

pub mod capacity;
pub mod check;
pub mod cluster;
pub mod compare;
pub mod export;
pub mod faultfs;
pub mod hosts;
pub mod load;
pub mod node;
pub mod repeat;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod shell;
pub mod suite;

use crate::exit::Exit;

/// Why a command stopped without a verdict of its own.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// A bad flag, scenario, hosts file or folder to read: nothing was started (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The scenario file is unusable (exit 2; nothing was started).
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// The hosts file is unusable (exit 2; nothing was started).
    #[error(transparent)]
    HostsFile(#[from] crate::hosts::HostsFileError),
    /// A folder to read is unreadable or not raftdrill's (exit 2).
    #[error(transparent)]
    Folder(crate::report::ReportError),
    /// The drill could not be carried out (exit 4).
    #[error(transparent)]
    Drill(#[from] crate::drill::DrillError),
    /// The nodes did not start (exit 4).
    #[error(transparent)]
    Nodes(#[from] crate::nodes::NodesError),
    /// A folder's pages or an aggregate could not be written (exit 4).
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A step on the hosts failed (exit 4).
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostsError),
    /// The test network could not be made or removed (exit 4).
    #[error(transparent)]
    Testnet(#[from] crate::hosts::testnet::TestnetError),
    /// A node, filesystem or proxy process failed (exit 4).
    #[error("{0}")]
    CannotRun(String),
    /// Ctrl-C or SIGTERM came before any run was made (exit 4).
    #[error("stopped before any run was made")]
    Stopped,
    /// `raftdrill check` could not give a verdict.
    #[error(transparent)]
    Check(#[from] check::CheckCmdError),
    /// `raftdrill compare` could not give a verdict.
    #[error(transparent)]
    Compare(#[from] compare::CompareCmdError),
    /// `raftdrill load` could not run.
    #[error(transparent)]
    Load(#[from] load::LoadCmdError),
}

impl CmdError {
    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            CmdError::Usage(_)
            | CmdError::Scenario(_)
            | CmdError::HostsFile(_)
            | CmdError::Folder(_) => Exit::Usage,
            CmdError::Drill(_)
            | CmdError::Nodes(_)
            | CmdError::Report(_)
            | CmdError::Hosts(_)
            | CmdError::Testnet(_)
            | CmdError::CannotRun(_)
            | CmdError::Stopped => Exit::CannotRun,
            CmdError::Check(e) => e.exit(),
            CmdError::Compare(e) => e.exit(),
            CmdError::Load(e) => e.exit(),
        }
    }
}
