//! Integration tests of the reference cluster: real `raftdrill node` processes on loopback.
//!
//! Each test takes a serial lock (see `harness::serial`), waits on conditions with deadlines, and
//! kills its nodes when it ends (the cluster's supervisor kills them on drop, even on panic).

mod architecture;
mod auth;
mod bad_input;
mod capacity;
mod capacity_knee;
mod clock;
mod cluster_cmd;
mod compare;
mod consistency_api;
mod corrupt;
mod crash;
mod disks;
mod drills;
mod etcd;
mod export;
mod fail_closed;
mod failover;
mod formation;
mod fsync;
mod harness;
mod hosts;
mod library;
mod live_view;
mod load_cmd;
mod membership;
mod metrics;
mod sessions;
mod suite;
