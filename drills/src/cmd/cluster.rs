//! `raftdrill cluster`: a store's nodes (reference or etcd, on this machine or on hosts) in
//! the foreground until Ctrl-C or SIGTERM.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::CmdError;
use crate::cli::ClusterArgs;
use crate::hosts::HostsFile;
use crate::nodes::{Nodes, NodesSpec, Where};
use crate::scenario::ClusterSpec;
use crate::store::TargetKind;

/// How long nodes get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What to start for `args`.
fn spec(args: &ClusterArgs, exe: PathBuf) -> Result<NodesSpec, CmdError> {
    let at = match &args.hosts {
        Some(path) => Where::Hosts {
            file: HostsFile::load(path)?,
            port: args.node_port,
            link_modes: Vec::new(),
            clocks: false,
        },
        None => Where::Local {
            base_port: args.base_port,
            data_dir: args.data_dir.clone(),
            link_proxies: false,
            disks: false,
            clocks: false,
            token: None,
        },
    };
    let nodes = match &at {
        Where::Hosts { file, .. } => file.host.len() as u64,
        Where::Local { .. } => args.nodes,
    };
    Ok(NodesSpec {
        cluster: ClusterSpec {
            nodes,
            target: args.target,
            store: args.store,
            fsync: args.fsync,
            // etcd with its own timings.
            ..ClusterSpec::default()
        },
        at,
        exe,
        etcd_bin: args.etcd_bin.clone(),
        log_dir: None,
    })
}

/// Starts the cluster, prints its endpoints, and follows it until `stop` resolves.
pub async fn run(
    args: ClusterArgs,
    exe: PathBuf,
    stop: impl Future<Output = ()>,
) -> Result<(), CmdError> {
    let spec = spec(&args, exe)?;
    tokio::pin!(stop);
    let nodes = tokio::select! {
        r = spec.start() => r?,
        () = &mut stop => return Ok(()),
    };
    let leader = nodes.answers_agree_within(Duration::ZERO).await;
    print_table(&nodes, leader, &args);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                if let Some(mut l) = nodes.placement().local() {
                    for (id, status, tail) in l.reap_exited() {
                        eprintln!("warning: node {id} exited ({status}); last log lines:\n{tail}");
                    }
                }
            }
        }
    }
    eprintln!("stopping {} nodes", nodes.ids().len());
    stop_all(&nodes, &args).await
}

/// Stops every node; on hosts, a host that could not be cleaned is an error naming the heal.
async fn stop_all(nodes: &Nodes, args: &ClusterArgs) -> Result<(), CmdError> {
    let Some(h) = nodes.placement().hosts() else {
        nodes.shutdown(STOP_GRACE).await;
        return Ok(());
    };
    let errors = h.stop(STOP_GRACE).await;
    if errors.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Err(CmdError::CannotRun(format!(
        "{}; run `raftdrill hosts heal --hosts {}`",
        errors.join("; "),
        args.hosts
            .as_deref()
            .unwrap_or(std::path::Path::new("FILE"))
            .display()
    )))
}

/// The endpoint table, and a first command to try.
fn print_table(nodes: &Nodes, leader: Option<u64>, args: &ClusterArgs) {
    let mut out = std::io::stdout().lock();
    let what = match nodes.target() {
        TargetKind::Reference => "nodes",
        TargetKind::Etcd => "etcd members",
    };
    let place = match nodes.placement().local() {
        Some(l) if l.is_temporary() => {
            format!(
                ", data in {} (temporary, removed at exit)",
                l.root().display()
            )
        }
        Some(l) => format!(", data in {}", l.root().display()),
        None => " on hosts".into(),
    };
    let leader_text = leader.map_or("none yet".to_string(), |l| l.to_string());
    let _ = writeln!(
        out,
        "raftdrill cluster: {} {what}, leader {leader_text}{place}",
        nodes.ids().len(),
    );
    let _ = writeln!(out, "{:>4}  {:<26}  {:<9}  log", "id", "client URL", "role");
    for id in nodes.ids() {
        let role = if Some(id) == leader {
            "leader"
        } else {
            "follower"
        };
        let log = nodes
            .placement()
            .site(id)
            .map(|s| s.log.display().to_string())
            .unwrap_or_default();
        let _ = writeln!(out, "{id:>4}  {:<26}  {role:<9}  {log}", nodes.url(id));
    }
    let try_line = match (nodes.target(), leader) {
        (TargetKind::Reference, Some(l)) if args.hosts.is_none() => format!(
            "try: curl -X PUT {}/kv/hello -d '{{\"value\":\"world\"}}'",
            nodes.url(l)
        ),
        (TargetKind::Reference, _) => format!(
            "try: raftdrill load --endpoints {} --rate 100 --duration 10s",
            nodes.urls().join(",")
        ),
        (TargetKind::Etcd, _) => format!(
            "try: raftdrill load --target etcd --endpoints {} --rate 100 --duration 10s",
            nodes.urls().join(",")
        ),
    };
    let _ = writeln!(out, "{try_line}");
    let _ = writeln!(out, "Ctrl-C stops every node.");
    let _ = out.flush();
}
