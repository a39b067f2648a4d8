//! `raftdrill-faultfs`: one faultfs process, the same server as the hidden `raftdrill faultfs`
//! subcommand. It exists so this crate's integration tests have a process to SIGKILL and a
//! parent to lose; users run `raftdrill faultfs`.
//!
//! ```text
//! raftdrill-faultfs --backing DIR --mount DIR --control SOCKET [--ready FILE] [--threads N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use raftdrill_faultfs::ServeOptions;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

fn parse() -> anyhow::Result<ServeOptions> {
    let mut args = std::env::args_os().skip(1);
    let (mut backing, mut mount, mut control, mut ready, mut threads) = (None, None, None, None, 4);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag:?} needs a value"))
        };
        match flag.to_str() {
            Some("--backing") => backing = Some(PathBuf::from(value()?)),
            Some("--mount") => mount = Some(PathBuf::from(value()?)),
            Some("--control") => control = Some(PathBuf::from(value()?)),
            Some("--ready") => ready = Some(PathBuf::from(value()?)),
            Some("--threads") => {
                threads = value()?
                    .to_str()
                    .and_then(|t| t.parse().ok())
                    .context("--threads needs a number")?
            }
            _ => bail!("unknown argument {flag:?}"),
        }
    }
    let mut opts = ServeOptions::new(
        backing.context("--backing is required")?,
        mount.context("--mount is required")?,
        control.context("--control is required")?,
    );
    opts.ready = ready;
    opts.threads = threads;
    Ok(opts)
}

async fn stop_signal() {
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    let result = runtime.block_on(raftdrill_faultfs::serve::run(opts, stop_signal()));
    // Work still queued on the blocking pool answers requests of a mount that is gone.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(4)
        }
    }
}
