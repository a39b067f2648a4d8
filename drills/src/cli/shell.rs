//! `completions` and `man`: what a shell and `man` read about raftdrill.

use std::path::PathBuf;

use clap::Args;

/// `raftdrill completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in; the script goes to stdout, e.g.
    /// `raftdrill completions bash > ~/.local/share/bash-completion/completions/raftdrill`.
    pub shell: clap_complete::Shell,
}

/// `raftdrill man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command here (raftdrill.1, raftdrill-run.1, ...) instead of printing
    /// raftdrill.1 to stdout.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}
