//! The `raftdrill` binary: parse flags, set up logging and the runtime, run a command, map the
//! outcome to an exit code (see `drills::exit`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use drills::cli::{Cli, Command, RunArgs};
use drills::cmd::{self, CmdError};
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
        Err(e) => {
            let code = e.exit();
            eprintln!("error: {:#}", anyhow::Error::from(e));
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

/// Runs the command; every error becomes its exit code in one place ([`CmdError::exit`]).
async fn dispatch(cli: Cli) -> Result<Exit, CmdError> {
    let exe = || {
        std::env::current_exe()
            .map_err(|e| CmdError::CannotRun(format!("cannot find the raftdrill binary: {e}")))
    };
    let failed = |e: &dyn std::fmt::Display| CmdError::CannotRun(e.to_string());
    Ok(
        match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
            Command::Node(args) => {
                let id = args.id;
                cmd::node::run(args)
                    .await
                    .map_err(|e| failed(&format!("node {id}: {e}")))?;
                Exit::Pass
            }
            Command::Faultfs(args) => {
                cmd::faultfs::run(args).await.map_err(|e| failed(&e))?;
                Exit::Pass
            }
            Command::Proxy(args) => {
                let input = tokio::io::BufReader::new(tokio::io::stdin());
                drills::proxy::remote::serve(&args.links, input, tokio::io::stdout())
                    .await
                    .map_err(|e| failed(&e))?;
                Exit::Pass
            }
            Command::Cluster(args) => {
                cmd::cluster::run(args, exe()?, shutdown_signal()).await?;
                Exit::Pass
            }
            Command::Testnet(args) => {
                cmd::hosts::testnet(args)?;
                Exit::Pass
            }
            Command::Hosts(args) => {
                cmd::hosts::hosts(args).await?;
                Exit::Pass
            }
            Command::Load(args) => cmd::load::run(args, stop_on_signal()).await?,
            Command::Capacity(args) => cmd::capacity::run(args, exe()?, stop_on_signal()).await?,
            Command::Check(args) => cmd::check::run(args)?,
            Command::Suite(args) => cmd::suite::run(args, exe()?, stop_on_signal()).await?,
            Command::Compare(args) => cmd::compare::run(&args)?,
            Command::Export(args) => cmd::export::run(args)?,
            Command::Report(args) => {
                // An unreadable or foreign folder is bad input: exit 2.
                for line in cmd::report::run(&args.dir).map_err(CmdError::Folder)? {
                    println!("{line}");
                }
                Exit::Pass
            }
            Command::Completions(args) => {
                let mut script = Vec::new();
                cmd::shell::completions(args.shell, &mut script);
                cmd::shell::print(&script).map_err(|e| failed(&e))?;
                Exit::Pass
            }
            Command::Man(args) => {
                match &args.dir {
                    Some(dir) => {
                        let names = cmd::shell::man_pages(dir)
                            .map_err(|e| failed(&format!("{}: {e}", dir.display())))?;
                        println!("wrote {} man pages to {}", names.len(), dir.display());
                    }
                    None => {
                        let mut page = Vec::new();
                        cmd::shell::man(&mut page).map_err(|e| failed(&e))?;
                        cmd::shell::print(&page).map_err(|e| failed(&e))?;
                    }
                }
                Exit::Pass
            }
            Command::Scenarios => {
                print!("{}", cmd::scenarios::listing());
                Exit::Pass
            }
            Command::Run(args) => cmd::run::run(args, exe()?, stop_on_signal()).await?,
        },
    )
}
