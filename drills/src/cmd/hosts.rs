//! `raftdrill testnet up|down`, `raftdrill hosts heal`, and `raftdrill cluster --hosts`.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{ClusterArgs, HostsAction, HostsArgs, TestnetAction, TestnetArgs};
use crate::exit::Exit;
use crate::hosts::cluster::clean_host;
use crate::hosts::testnet::{self, TestnetError};
use crate::hosts::{
    HostCluster, HostOptions, HostStore, HostsError, HostsFile, HostsFileError, Ssh,
};
use crate::local_cluster::new_token;
use crate::scenario::ClusterSpec;
use loadgen::target::TargetKind;

/// How long the nodes get to elect a first leader.
const ELECTION_DEADLINE: Duration = Duration::from_secs(30);
/// How long nodes get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A hosts command failed.
#[derive(Debug, thiserror::Error)]
pub enum HostsCmdError {
    /// The hosts file is unusable.
    #[error(transparent)]
    File(#[from] HostsFileError),
    /// Driving the hosts failed.
    #[error(transparent)]
    Hosts(#[from] HostsError),
    /// The testnet failed.
    #[error(transparent)]
    Testnet(#[from] TestnetError),
    /// Cleaning some hosts failed.
    #[error("{0}")]
    Dirty(String),
}

impl HostsCmdError {
    /// The exit code: a bad file is usage (2), anything else could not be carried out (4).
    pub fn exit(&self) -> Exit {
        match self {
            HostsCmdError::File(_) => Exit::Usage,
            _ => Exit::CannotRun,
        }
    }
}

/// `raftdrill testnet`.
pub fn testnet(args: TestnetArgs) -> Result<(), HostsCmdError> {
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
pub async fn hosts(args: HostsArgs) -> Result<(), HostsCmdError> {
    match args.action {
        HostsAction::Heal { hosts } => heal(hosts).await,
    }
}

async fn heal(path: PathBuf) -> Result<(), HostsCmdError> {
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
        Err(HostsCmdError::Dirty(failed.join("; ")))
    }
}

/// `raftdrill cluster --hosts FILE`: one node per host until `stop`, then every node stopped
/// and every rule removed.
pub async fn cluster(
    args: ClusterArgs,
    path: PathBuf,
    exe: PathBuf,
    stop: impl Future<Output = ()>,
) -> Result<(), HostsCmdError> {
    let file = HostsFile::load(&path)?;
    let token = new_token().map_err(|e| HostsError::Local(format!("token: {e}")))?;
    let opts = HostOptions {
        exe,
        port: args.node_port,
        node_flags: ClusterSpec {
            nodes: file.host.len() as u64,
            store: args.store,
            fsync: args.fsync,
            ..ClusterSpec::default()
        }
        .node_flags(),
        token,
        link_modes: Vec::new(),
        // etcd from each host's PATH, with etcd's own timings.
        store: match args.target {
            TargetKind::Reference => HostStore::Reference,
            TargetKind::Etcd => HostStore::Etcd {
                heartbeat: None,
                election_timeout: None,
            },
        },
    };
    let cluster = HostCluster::prepare(&file, opts).await?;
    tokio::pin!(stop);
    let started = async {
        cluster.start_all().await?;
        cluster.wait_for_leader(ELECTION_DEADLINE).await
    };
    let leader = tokio::select! {
        r = started => Some(r),
        () = &mut stop => None,
    };
    let leader = match leader {
        Some(Ok(l)) => l,
        other => {
            let errors = cluster.stop(STOP_GRACE).await;
            for e in errors {
                eprintln!("warning: {e}");
            }
            return match other {
                Some(Err(e)) => Err(e.into()),
                _ => Ok(()),
            };
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "raftdrill cluster: {} nodes on hosts, leader {leader}",
            cluster.nodes().len()
        );
        let _ = writeln!(
            out,
            "{:>4}  {:<6}  {:<26}  {:<9}  {:>10}  log on the host",
            "id", "host", "client URL", "role", "clock"
        );
        for (id, n) in cluster.nodes() {
            let role = if *id == leader { "leader" } else { "follower" };
            let _ = writeln!(
                out,
                "{id:>4}  {:<6}  {:<26}  {role:<9}  {:>+8.1}ms  {}",
                n.spec.name,
                cluster.url(*id),
                n.clock_offset_s * 1000.0,
                n.spec.data_dir.join("node.log").display()
            );
        }
        let _ = writeln!(
            out,
            "try: raftdrill load{} --endpoints {} --rate 100 --duration 10s",
            if cluster.store().is_etcd() {
                " --target etcd"
            } else {
                ""
            },
            cluster.urls().join(",")
        );
        let _ = writeln!(out, "Ctrl-C stops every node.");
        let _ = out.flush();
    }
    (&mut stop).await;
    eprintln!("stopping {} nodes", cluster.nodes().len());
    let errors = cluster.stop(STOP_GRACE).await;
    if errors.is_empty() {
        Ok(())
    } else {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Err(HostsCmdError::Dirty(format!(
            "{}; run `raftdrill hosts heal --hosts {}`",
            errors.join("; "),
            path.display()
        )))
    }
}
