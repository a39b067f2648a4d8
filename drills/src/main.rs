//! The `raftdrill` binary: parse flags, set up logging and the runtime, run a command, map the
//! outcome to an exit code (see `drills::exit`).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use drills::cli::{Cli, Command, RunArgs};
use drills::exit::Exit;
use drills::signals::{StopSignals, shutdown_signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_node = matches!(
        cli.command,
        Some(Command::Node(_) | Command::Faultfs(_) | Command::Proxy(_))
    );
    let default_level = if is_node { "info" } else { "warn" };
    // Set up before any load runs, so goose's `log` output goes through it too.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        // Node logs go to files: colour escapes only where a person reads a terminal.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(Command::Node(args)) = &cli.command {
        builder.worker_threads(usize::from(args.workers));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::CannotRun.into();
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code.into(),
        Err((e, code)) => {
            eprintln!("error: {e:#}");
            code.into()
        }
    }
}

/// A token cancelled by the first SIGINT or SIGTERM; the handlers are in place on return.
/// SIGINT is claimed through loadgen before goose can take it (see `loadgen::claim_ctrl_c`).
fn stop_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    if let Err(e) = loadgen::claim_ctrl_c(move || t.cancel()) {
        eprintln!("warning: cannot listen for Ctrl-C: {e}");
    }
    let t = token.clone();
    match StopSignals::install_term() {
        Ok(signals) => {
            tokio::spawn(async move {
                signals.recv().await;
                t.cancel();
            });
        }
        Err(e) => eprintln!("warning: cannot listen for SIGTERM: {e}"),
    }
    token
}

async fn dispatch(cli: Cli) -> Result<Exit, (anyhow::Error, Exit)> {
    let exe = || {
        std::env::current_exe()
            .context("cannot find the raftdrill binary")
            .map_err(|e| (e, Exit::CannotRun))
    };
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Node(args) => {
            let id = args.id;
            drills::cmd::node::run(args)
                .await
                .with_context(|| format!("node {id}"))
                .map_err(|e| (e, Exit::CannotRun))?;
            Ok(Exit::Pass)
        }
        Command::Faultfs(args) => {
            drills::cmd::faultfs::run(args)
                .await
                .map_err(|e| (e.into(), Exit::CannotRun))?;
            Ok(Exit::Pass)
        }
        Command::Proxy(args) => {
            let input = tokio::io::BufReader::new(tokio::io::stdin());
            drills::proxy::remote::serve(&args.links, input, tokio::io::stdout())
                .await
                .map_err(|e| (e.into(), Exit::CannotRun))?;
            Ok(Exit::Pass)
        }
        Command::Cluster(args) => {
            drills::cmd::cluster::run(args, exe()?, shutdown_signal())
                .await
                .map_err(|e| {
                    let code = e.exit();
                    (e.into(), code)
                })?;
            Ok(Exit::Pass)
        }
        Command::Testnet(args) => {
            drills::cmd::hosts::testnet(args).map_err(|e| {
                let code = e.exit();
                (e.into(), code)
            })?;
            Ok(Exit::Pass)
        }
        Command::Hosts(args) => {
            drills::cmd::hosts::hosts(args).await.map_err(|e| {
                let code = e.exit();
                (e.into(), code)
            })?;
            Ok(Exit::Pass)
        }
        Command::Load(args) => {
            let stop = stop_on_signal();
            drills::cmd::load::run(args, stop).await.map_err(|e| {
                let code = e.exit();
                (e.into(), code)
            })
        }
        Command::Capacity(args) => {
            let stop = stop_on_signal();
            drills::cmd::capacity::run(args, exe()?, stop)
                .await
                .map_err(|e| {
                    let code = e.exit();
                    (e.into(), code)
                })
        }
        Command::Check(args) => drills::cmd::check::run(args).map_err(|e| {
            let code = e.exit();
            (e.into(), code)
        }),
        Command::Suite(args) => {
            let stop = stop_on_signal();
            drills::cmd::suite::run(args, exe()?, stop)
                .await
                .map_err(|e| {
                    let code = e.exit();
                    (e.into(), code)
                })
        }
        Command::Compare(args) => drills::cmd::compare::run(&args).map_err(|e| {
            let code = e.exit();
            (e.into(), code)
        }),
        Command::Report(args) => {
            // An unreadable or foreign folder is bad input: exit 2.
            let done = drills::cmd::report::run(&args.dir)
                .map_err(|e| (anyhow::Error::from(e), Exit::Usage))?;
            for line in done {
                println!("{line}");
            }
            Ok(Exit::Pass)
        }
        Command::Scenarios => {
            print!("{}", drills::cmd::scenarios::listing());
            Ok(Exit::Pass)
        }
        Command::Run(args) => {
            let stop = stop_on_signal();
            drills::cmd::run::run(args, exe()?, stop)
                .await
                .map_err(|e| {
                    let code = e.exit();
                    (e.into(), code)
                })
        }
    }
}
