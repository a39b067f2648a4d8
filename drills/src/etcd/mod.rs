//! etcd's machinery for a drill: its flags, its gateway calls, its status in raftdrill's
//! terms, and link faults through attributing proxies. etcd as a store is `crate::store::etcd`
//! (launch line, status, membership), run by a placement like any store; the load side is
//! `loadgen::etcd::EtcdCluster`, on the members' client URLs.
//!
//! # How etcd is run
//!
//! Each member is the `etcd` binary (from `PATH`, or `--etcd-bin`; Debian's `etcd-server`
//! package, etcd 3.4); on this machine it is started by the
//! [`Supervisor`](crate::supervisor::Supervisor) in its own process group with `PR_SET_PDEATHSIG`, so it never outlives raftdrill. Member
//! `i` is named `m<i>` and gets:
//!
//! | flag | value |
//! |---|---|
//! | `--data-dir` | `<root>/member-<i>` |
//! | `--listen-client-urls`, `--advertise-client-urls` | `http://127.0.0.1:<client port>` |
//! | `--listen-peer-urls` | `http://127.0.0.1:<peer port>` |
//! | `--initial-advertise-peer-urls` | `http://<its link proxy>` (see below) |
//! | `--initial-cluster`, `--initial-cluster-state` | every member's name and proxy URL; `new` at start, `existing` when added or wiped |
//! | `--initial-cluster-token` | unique per cluster |
//! | `--heartbeat-interval`, `--election-timeout` | only when set ([`EtcdOptions`]); etcd's defaults are 100 ms and 1000 ms |
//! | `--logger=zap --log-outputs=stderr` | the member's log goes to `<logs>/<i>.log` |
//!
//! Ports are chosen below the kernel's ephemeral range, as for reference nodes. Kill is SIGKILL,
//! stop SIGTERM then SIGKILL after a grace, pause/resume SIGSTOP/SIGCONT, restart the same flags
//! on the same data dir. Wipe follows etcd's runbook for replacing a member: kill, remove it
//! through `/v3/cluster/member/remove`, delete its data dir, add it back through
//! `/v3/cluster/member/add` (it gets a new member id) and start it with
//! `--initial-cluster-state existing`. Adding a member does the same for a new node number.
//!
//! # Status
//!
//! `/v3/maintenance/status` and `/v3/cluster/member/list` on each member become a
//! [`raftdrill_wire::Status`] in raftdrill's node numbers (1..N, mapped to and from etcd's
//! 64-bit member ids by peer URL); see [`status::to_status`] for what etcd 3.4 does not report.
//!
//! # Link faults
//!
//! etcd advertises one peer URL per member, so the reference cluster's one-proxy-per-pair
//! wiring cannot be given to it. Each member's advertised peer URL is instead an
//! [`AttributedProxy`](crate::proxy::AttributedProxy) in front of its peer listener, and each
//! peer connection is placed on a directed link from the `X-Server-From` header and path of its
//! first request. A link `A→B` is **the Raft messages A sends to B** (stream connections B
//! opened to A, pipeline connections A opened to B); see [`links`] for the details and how
//! connections without the header are handled. Every [`LinkMode`](crate::proxy::LinkMode)
//! applies, so isolate, partition, one-way partition (blackhole of one direction), delay,
//! bandwidth, blackhole and reset all map onto etcd. Client traffic goes to the client URLs
//! directly, as for reference nodes.
//!
//! # Layout
//! - [`launch`]: finding the binary, [`EtcdOptions`], member names
//! - [`api`]: the gateway calls for status and membership
//! - [`status`]: etcd's status as the poller's, and the id map
//! - [`links`]: [`EtcdLinks`], the proxies and which connection is which link

pub mod api;
pub mod launch;
pub mod links;
pub mod status;
#[cfg(test)]
mod tests;

pub use launch::EtcdOptions;
pub use links::{EtcdLinks, Link};

/// etcd cannot be run here.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The etcd binary is not there.
    #[error(
        "cannot find the etcd binary ({0}): install Debian's etcd-server package \
         (apt-get install etcd-server) or give the binary's path"
    )]
    MissingBinary(String),
}
