//! `raftdrill node`: one reference node in this process.

use target_cluster::api::Auth;
use target_cluster::store::StoreOptions;
use target_cluster::{NodeConfig, NodeError};

use crate::cli::NodeArgs;
use crate::signals::shutdown_signal;

/// Turns the flags into a node configuration; reads the token file.
pub fn config(args: NodeArgs) -> Result<NodeConfig, NodeError> {
    let auth = match &args.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path).map_err(|e| {
                NodeError::Config(format!(
                    "cannot read the token file {}: {e}",
                    path.display()
                ))
            })?;
            let auth = Auth::new(token.trim(), args.client_auth)
                .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
            Some(auth)
        }
        None => None,
    };
    let mut c = NodeConfig::new(args.id, args.listen);
    c.advertise = args.advertise;
    c.store = StoreOptions {
        kind: args.store,
        fsync: args.fsync,
        data_dir: args.data_dir,
        apply_delay: args.apply_delay,
    };
    c.peers = args.peers;
    c.initial_members = args.initial_members.map(|m| m.0).unwrap_or_default();
    c.heartbeat = args.heartbeat;
    c.election_timeout = args.election_timeout;
    c.snapshot_every = args.snapshot_every;
    c.request_timeout = args.request_timeout;
    c.unsafe_reads = args.unsafe_reads;
    c.unsafe_fsync_retry = args.unsafe_fsync_retry;
    c.auth = auth;
    Ok(c)
}

/// Runs the node until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn run(args: NodeArgs) -> Result<(), NodeError> {
    target_cluster::run(config(args)?, shutdown_signal()).await
}
