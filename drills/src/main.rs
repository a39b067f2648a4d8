//! The `raftdrill` binary: parse flags, set up logging and the runtime, run a command, map the
//! outcome to an exit code (see `drills::exit`).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use drills::cli::{Cli, ClusterArgs, Command, FsyncArg, StoreArg};
use drills::exit::Exit;
use drills::signals::shutdown_signal;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_node = matches!(cli.command, Some(Command::Node(_)));
    let default_level = if is_node { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::CannotRun.into();
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::CannotRun.into()
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let command = cli.command.unwrap_or(Command::Cluster(ClusterArgs {
        nodes: 3,
        base_port: None,
        data_dir: None,
        store: StoreArg::Disk,
        fsync: FsyncArg::Always,
    }));
    match command {
        Command::Node(args) => {
            let id = args.id;
            drills::cmd::node::run(args)
                .await
                .with_context(|| format!("node {id}"))?;
        }
        Command::Cluster(args) => {
            let exe = std::env::current_exe().context("cannot find the raftdrill binary")?;
            drills::cmd::cluster::run(args, exe, shutdown_signal()).await?;
        }
    }
    Ok(Exit::Pass)
}
