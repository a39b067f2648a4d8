//! `raftdrill node`: one reference node in this process.

use target_cluster::store::StoreOptions;
use target_cluster::{NodeConfig, NodeError};

use crate::cli::NodeArgs;
use crate::signals::shutdown_signal;

/// Turns the flags into a node configuration.
pub fn config(args: NodeArgs) -> NodeConfig {
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
    c
}

/// Runs the node until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn run(args: NodeArgs) -> Result<(), NodeError> {
    target_cluster::run(config(args), shutdown_signal()).await
}
