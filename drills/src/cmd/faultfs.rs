//! `raftdrill faultfs`: one fault-injecting FUSE filesystem in this process, under a node's
//! data directory. The controller spawns it through `raftdrill_faultfs::FaultFsProcess` and
//! drives it over its control socket; see the raftdrill-faultfs crate.

use raftdrill_faultfs::{ServeError, ServeOptions};

use crate::cli::FaultfsArgs;
use crate::signals::shutdown_signal;

/// Turns the flags into serve options.
pub fn options(args: FaultfsArgs) -> ServeOptions {
    let mut opts = ServeOptions::new(args.backing, args.mount, args.control);
    opts.ready = args.ready;
    opts.threads = usize::from(args.threads);
    opts
}

/// Serves until SIGINT, SIGTERM (also sent when the parent dies) or a `stop` request, then
/// unmounts.
pub async fn run(args: FaultfsArgs) -> Result<(), ServeError> {
    raftdrill_faultfs::serve::run(options(args), shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn the_hidden_subcommand_parses_into_serve_options() {
        let cli = Cli::try_parse_from([
            "raftdrill",
            "faultfs",
            "--backing",
            "/r/n1.backing",
            "--mount",
            "/r/n1",
            "--control",
            "/r/n1.sock",
            "--ready",
            "/r/n1.ready",
        ])
        .unwrap();
        let Some(Command::Faultfs(args)) = cli.command else {
            panic!("not a faultfs command")
        };
        let opts = options(args);
        assert_eq!(opts.mount, std::path::Path::new("/r/n1"));
        assert_eq!(
            opts.ready.as_deref(),
            Some(std::path::Path::new("/r/n1.ready"))
        );
        assert_eq!(opts.threads, 4);
        assert!(
            Cli::try_parse_from(["raftdrill", "faultfs", "--mount", "/m"]).is_err(),
            "backing and control are required"
        );
    }
}
