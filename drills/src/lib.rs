//! raftdrill's drill controller: it starts a store's nodes on a placement, drives them with a
//! load, injects faults on a schedule, checks what the run recorded and judges it.
//!
//! # Layers
//! From the bottom up (each imports only from its own layer and those below; the
//! architecture test checks it):
//! 1. [`exit`], [`signals`], [`testing`]
//! 2. [`proxy`], [`supervisor`], [`admin`], [`scenario`], [`links`]: the parts
//! 3. [`etcd`]: etcd's flags, gateway calls, status and attributing proxies
//! 4. [`store`]: what runs on a node (the reference node, etcd)
//! 5. [`hosts`], [`placement`]: where a node runs (this machine, hosts over SSH)
//! 6. [`nodes`], [`local_cluster`]: a store on a placement, one handle
//! 7. [`fault`], [`check`], [`report`], [`compare`], [`export`]: faults written once; pure
//!    checks, pages and exports
//! 8. [`drill`], [`capacity`], [`live`]: the conductors and the live view
//! 9. [`cmd`], [`cli`]: one module per subcommand, parsing and mapping outcomes to exit codes
//!
//! # Layout
//! - [`admin`]: a typed client of the nodes' admin API
//! - [`capacity`]: the capacity search, its SLO and its curve
//! - [`compare`]: two results folders side by side, with noise and limits
//! - [`check`]: the lost-write check and recovery times
//! - [`cli`]: the clap definitions of the `raftdrill` command line
//! - [`drill`]: the conductor of one drill: poller, read-back, judge, results
//! - [`fault`]: the fault schedule; each action written once; what each placement and store
//!   cannot do
//! - [`links`]: directed links and the link modes of faults
//! - [`nodes`]: the nodes under test, a store on a placement
//! - [`placement`]: where nodes run: child processes here, processes on hosts
//! - [`store`]: what runs: the reference node or etcd
//! - [`cmd`]: one module per subcommand (`cluster`, the hidden `node`)
//! - [`etcd`]: etcd's flags, gateway calls and status, and its attributing link proxies
//! - [`live`]: the ratatui live view of a running drill
//! - [`local_cluster`]: N reference nodes on loopback, for `raftdrill cluster` and tests
//! - [`report`]: timeline.svg, report.md and report.html from a folder's files; repeats
//! - [`proxy`]: one user-space TCP proxy per directed link, for link faults without root
//! - [`scenario`]: scenario files: parsing, validation, the built-in library
//! - [`supervisor`]: spawning, signalling and reaping node processes; nothing outlives raftdrill
//! - [`signals`]: SIGINT/SIGTERM as a future
//! - [`exit`]: the documented exit codes
//! - [`export`]: a scenario's fault schedule in another tool's format (a Chaos Mesh Workflow)
//! - [`testing`]: planted failures for the fail-closed tests (`RAFTDRILL_TEST_HOOKS`)
#![deny(missing_docs)]

pub mod admin;
pub mod capacity;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod drill;
pub mod etcd;
pub mod exit;
pub mod export;
pub mod fault;
pub mod hosts;
pub mod links;
pub mod live;
pub mod local_cluster;
pub mod nodes;
pub mod placement;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod signals;
pub mod store;
pub mod supervisor;
pub mod testing;
pub mod versioned;
