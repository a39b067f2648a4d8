//! `raftdrill cluster`: a local reference cluster in the foreground until Ctrl-C or SIGTERM.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use crate::cli::ClusterArgs;
use crate::local_cluster::{ClusterError, ClusterOptions, LocalCluster};
use crate::scenario::ClusterSpec;

/// How long the nodes get to elect a first leader.
const ELECTION_DEADLINE: Duration = Duration::from_secs(20);
/// How long nodes get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Starts the cluster, prints its endpoints, and follows it until `stop` resolves.
pub async fn run(
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
