//! `raftdrill testnet up|down` and `raftdrill hosts heal`.

use std::path::PathBuf;
use std::time::Duration;

use super::CmdError;
use crate::cli::{HostsAction, HostsArgs, TestnetAction, TestnetArgs};
use crate::hosts::cluster::clean_host;
use crate::hosts::testnet;
use crate::hosts::{HostsError, HostsFile, Ssh};
/// How long nodes get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `raftdrill testnet`.
pub fn testnet(args: TestnetArgs) -> Result<(), CmdError> {
    match args.action {
        TestnetAction::Up { hosts, out, dir } => {
            let file = testnet::up(hosts as usize, &dir, &out)?;
            println!(
                "testnet up: {} hosts on bridge {} ({}), hosts file {}",
                file.host.len(),
                testnet::BRIDGE,
                testnet::CONTROLLER,
                out.display()
            );
            for h in &file.host {
                println!("  {:<4} {:<14} ssh {}", h.name, h.addr, h.ssh);
            }
            println!("try: raftdrill cluster --hosts {}", out.display());
            println!("then: raftdrill testnet down");
            Ok(())
        }
        TestnetAction::Down { dir } => {
            let done = testnet::down(&dir)?;
            if done.is_empty() {
                println!("testnet down: nothing to remove");
            }
            for line in done {
                println!("testnet down: {line}");
            }
            Ok(())
        }
    }
}

/// `raftdrill hosts`.
pub async fn hosts(args: HostsArgs) -> Result<(), CmdError> {
    match args.action {
        HostsAction::Heal { hosts } => heal(hosts).await,
    }
}

async fn heal(path: PathBuf) -> Result<(), CmdError> {
    let file = HostsFile::load(&path)?;
    let mut failed = Vec::new();
    for spec in &file.host {
        let ssh = Ssh::new(spec).map_err(HostsError::Local)?;
        match clean_host(ssh, spec.clone(), STOP_GRACE).await {
            Ok(()) => println!("hosts heal: {}: no raftdrill node or rule left", spec.name),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CmdError::CannotRun(failed.join("; ")))
    }
}
