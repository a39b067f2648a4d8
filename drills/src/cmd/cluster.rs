//! `raftdrill cluster`: a local reference cluster in the foreground until Ctrl-C or SIGTERM.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use crate::cli::ClusterArgs;
use loadgen::target::TargetKind;

use crate::etcd::{EtcdError, EtcdOptions, LocalEtcd};
use crate::local_cluster::{ClusterError, ClusterOptions, LocalCluster};
use crate::scenario::ClusterSpec;

/// How long the nodes get to elect a first leader.
const ELECTION_DEADLINE: Duration = Duration::from_secs(20);
/// How long nodes get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `raftdrill cluster` could not run its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterCmdError {
    /// The reference cluster failed.
    #[error(transparent)]
    Reference(#[from] ClusterError),
    /// etcd failed (a missing binary names the package to install).
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// Nodes on hosts failed.
    #[error(transparent)]
    Hosts(#[from] super::hosts::HostsCmdError),
    /// A flag combination that cannot run.
    #[error("{0}")]
    Usage(String),
}

impl ClusterCmdError {
    /// The exit code: usage errors 2, anything else 4.
    pub fn exit(&self) -> crate::exit::Exit {
        match self {
            ClusterCmdError::Hosts(e) => e.exit(),
            ClusterCmdError::Usage(_) => crate::exit::Exit::Usage,
            _ => crate::exit::Exit::CannotRun,
        }
    }
}

/// Starts the cluster (reference nodes or etcd members), prints its endpoints, and follows
/// it until `stop` resolves.
pub async fn run(
    args: ClusterArgs,
    exe: std::path::PathBuf,
    stop: impl Future<Output = ()>,
) -> Result<(), ClusterCmdError> {
    if let Some(hosts) = args.hosts.clone() {
        return Ok(super::hosts::cluster(args, hosts, exe, stop).await?);
    }
    match args.target {
        TargetKind::Reference => Ok(run_reference(args, exe, stop).await?),
        TargetKind::Etcd => Ok(run_etcd(args, stop).await?),
    }
}

/// etcd members until `stop`.
async fn run_etcd(args: ClusterArgs, stop: impl Future<Output = ()>) -> Result<(), EtcdError> {
    let opts = EtcdOptions {
        members: args.nodes,
        binary: args.etcd_bin.clone(),
        data_dir: args.data_dir.clone(),
        log_dir: None,
        wal_root: None,
        heartbeat: None,
        election_timeout: None,
        extra_flags: Vec::new(),
    };
    let mut etcd = LocalEtcd::start(&opts).await?;
    tokio::pin!(stop);
    let leader = tokio::select! {
        r = etcd.wait_for_leader(ELECTION_DEADLINE) => r,
        () = &mut stop => {
            etcd.shutdown(STOP_GRACE).await;
            return Ok(());
        }
    };
    let leader = match leader {
        Ok(l) => l,
        Err(e) => {
            etcd.shutdown(STOP_GRACE).await;
            return Err(e);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "raftdrill cluster: {} etcd members, leader {leader}, data in {}",
            etcd.members().len(),
            etcd.root().display()
        );
        let _ = writeln!(out, "{:>4}  {:<24}  {:<9}  log", "id", "client URL", "role");
        for (id, info) in etcd.members() {
            let role = if *id == leader { "leader" } else { "follower" };
            let _ = writeln!(
                out,
                "{id:>4}  {:<24}  {role:<9}  {}",
                info.client_url(),
                info.log.display()
            );
        }
        let _ = writeln!(
            out,
            "try: raftdrill load --target etcd --endpoints {} --rate 100 --duration 10s",
            etcd.client_urls().join(",")
        );
        let _ = writeln!(out, "Ctrl-C stops every member.");
        let _ = out.flush();
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                if let Err(e) = etcd.check_alive() {
                    eprintln!("warning: {e}");
                }
            }
        }
    }
    eprintln!("stopping {} members", etcd.members().len());
    etcd.shutdown(STOP_GRACE).await;
    Ok(())
}

/// Reference nodes until `stop`.
async fn run_reference(
    args: ClusterArgs,
    exe: std::path::PathBuf,
    stop: impl Future<Output = ()>,
) -> Result<(), ClusterError> {
    let opts = ClusterOptions {
        nodes: args.nodes,
        base_port: args.base_port,
        data_dir: args.data_dir,
        log_dir: None,
        exe,
        node_flags: ClusterSpec {
            nodes: args.nodes,
            store: args.store,
            fsync: args.fsync,
            ..ClusterSpec::default()
        }
        .node_flags(),
        token: None,
    };
    let mut cluster = LocalCluster::start(&opts)?;
    tokio::pin!(stop);
    let leader = tokio::select! {
        r = cluster.wait_for_leader(ELECTION_DEADLINE) => r,
        () = &mut stop => {
            cluster.stop(STOP_GRACE).await;
            return Ok(());
        }
    };
    let leader = match leader {
        Ok(l) => l,
        Err(e) => {
            cluster.stop(STOP_GRACE).await;
            return Err(e);
        }
    };
    print_table(&cluster, leader).await;

    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                if let Err(e) = cluster.check_alive() {
                    eprintln!("warning: {e}");
                }
            }
        }
    }
    eprintln!("stopping {} nodes", cluster.nodes().len());
    cluster.stop(STOP_GRACE).await;
    Ok(())
}

async fn print_table(cluster: &LocalCluster, leader: u64) {
    let mut out = std::io::stdout().lock();
    let where_ = if cluster.is_temporary() {
        " (temporary, removed at exit)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "raftdrill cluster: {} nodes, leader {leader}, data in {}{where_}",
        cluster.nodes().len(),
        cluster.root().display()
    );
    let _ = writeln!(out, "{:>4}  {:<24}  {:<9}  log", "id", "client URL", "role");
    for (id, info) in cluster.nodes() {
        let role = if *id == leader { "leader" } else { "follower" };
        let _ = writeln!(
            out,
            "{id:>4}  {:<24}  {role:<9}  {}",
            cluster.url(*id),
            info.log.display()
        );
    }
    let _ = writeln!(
        out,
        "try: curl -X PUT {}/kv/hello -d '{{\"value\":\"world\"}}'",
        cluster.url(leader)
    );
    let _ = writeln!(out, "Ctrl-C stops every node.");
    let _ = out.flush();
}
