//! The command line of `raftdrill`, parsed with clap. Parsing only: commands live in [`crate::cmd`].
//!
//! # Layout
//! - this file: [`Cli`], [`Command`] and the duration parser every command shares
//! - `drill`: `run`, `suite`
//! - `load`: `load`, `capacity`
//! - `results`: `compare`, `report`, `check`
//! - `nodes`: `cluster`, and `node`, `faultfs`, `proxy` (raftdrill's own)
//! - `hosts`: `testnet`, `hosts`
//! - `shell`: `completions`, `man`
//! - `export`: `export chaos-mesh`
//! - `words`: the flags that take one of a few words
//!
//! The doc comments below are the `--help` text, plain text as a terminal shows it: a
//! `results/<UTC time>-<name>/` or a `[[host]]` there is not HTML or a link.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod drill;
mod export;
mod hosts;
mod load;
mod nodes;
mod results;
mod shell;
mod words;

use std::time::Duration;

use clap::{Parser, Subcommand};

pub use drill::{RunArgs, SuiteArgs};
pub use export::{ChaosMeshArgs, ExportArgs, ExportFormat};
pub use hosts::{HostsAction, HostsArgs, TESTNET_DIR, TestnetAction, TestnetArgs};
pub use load::{CapacityArgs, LoadArgs};
pub use nodes::{ClusterArgs, FaultfsArgs, Members, NodeArgs, ProxyArgs};
pub use results::{CheckArgs, CompareArgs, ReportArgs};
pub use shell::{CompletionsArgs, ManArgs};

/// raftdrill: load and fault drills for replicated stores.
#[derive(Debug, Parser)]
#[command(name = "raftdrill", version, about)]
pub struct Cli {
    /// What to do; without one, the default drill runs (leader-kill on 3 nodes).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a drill: a scenario file or a built-in name (default: leader-kill).
    Run(RunArgs),
    /// List the built-in scenarios.
    Scenarios,
    /// Drive load only, against a running cluster.
    Load(LoadArgs),
    /// Find the highest open-loop rate that meets the SLO.
    Capacity(CapacityArgs),
    /// Run a local reference cluster in the foreground until Ctrl-C.
    Cluster(ClusterArgs),
    /// Check a recorded history (a run folder or history.jsonl) for linearizability.
    Check(CheckArgs),
    /// Run every built-in scenario (or every scenario file of a folder) and write one index.
    Suite(SuiteArgs),
    /// Compare two results folders of the same kind: runs, repeats, suites or capacity searches.
    Compare(CompareArgs),
    /// Re-render report.md, report.html and the SVGs of a run folder from its files.
    Report(ReportArgs),
    /// Test hosts on this machine: network namespaces with their own sshd (as root).
    Testnet(TestnetArgs),
    /// Hosts reached over SSH: clean up what a crashed controller left on them.
    Hosts(HostsArgs),
    /// Write a scenario's faults in another tool's format (a Chaos Mesh Workflow).
    Export(ExportArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per command to a folder.
    Man(ManArgs),
    /// Run one reference node in this process (used by raftdrill itself).
    #[command(hide = true)]
    Node(NodeArgs),
    /// Serve one fault-injecting filesystem under a node's data dir (used by raftdrill itself).
    #[command(hide = true)]
    Faultfs(FaultfsArgs),
    /// Serve the link proxies of one node on its host, driven over stdin (used by raftdrill
    /// itself for link faults on hosts).
    #[command(hide = true)]
    Proxy(ProxyArgs),
}

/// Checks a listen address: HOST:PORT (`127.0.0.1:9464`, `[::1]:9464`, `localhost:0`).
pub fn parse_listen(s: &str) -> Result<String, String> {
    let bad = || format!("expected HOST:PORT such as 127.0.0.1:9464, got {s:?}");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(s.to_string())
}

/// Parses `50ms`, `1.5s`, `1m30s` (the one duration parser, shared with scenario files).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    loadgen::units::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_address_is_host_and_port() {
        for ok in [
            "127.0.0.1:9464",
            "[::1]:0",
            "localhost:9464",
            "0.0.0.0:65535",
        ] {
            assert_eq!(parse_listen(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "bogus",
            ":9464",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "127.0.0.1:x",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from(["raftdrill", "run", "--metrics-listen", "bogus"]);
        assert_eq!(
            cli.unwrap_err().kind(),
            clap::error::ErrorKind::ValueValidation
        );
    }
}
