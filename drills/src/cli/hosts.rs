//! The flags of the commands about hosts: `raftdrill testnet` and `raftdrill hosts`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where `raftdrill testnet` keeps its keys and sshd configs.
pub const TESTNET_DIR: &str = "/tmp/raftdrill-testnet";

/// `raftdrill testnet`.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// up or down.
    #[command(subcommand)]
    pub action: TestnetAction,
}

/// What `raftdrill testnet` does.
#[derive(Debug, Subcommand)]
pub enum TestnetAction {
    /// Make N namespace hosts on a bridge (198.18.0.0/15), each with its own sshd, and write
    /// a hosts file for `--hosts`.
    Up {
        /// How many hosts.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=32))]
        hosts: u64,
        /// The hosts file to write.
        #[arg(long, default_value = "hosts.toml")]
        out: PathBuf,
        /// Where the keys and sshd configs live.
        #[arg(long, default_value = TESTNET_DIR)]
        dir: PathBuf,
    },
    /// Remove the namespaces, the bridge, every process in them, the keys and the hosts file.
    Down {
        /// The folder `up` used.
        #[arg(long, default_value = TESTNET_DIR)]
        dir: PathBuf,
    },
}

/// `raftdrill hosts`.
#[derive(Debug, Args)]
pub struct HostsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: HostsAction,
}

/// What `raftdrill hosts` does.
#[derive(Debug, Subcommand)]
pub enum HostsAction {
    /// Stop raftdrill's nodes and remove raftdrill's iptables rules on every host of the file.
    Heal {
        /// The hosts file.
        #[arg(long)]
        hosts: PathBuf,
    },
}
