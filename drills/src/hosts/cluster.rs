//! A reference cluster on hosts reached over SSH: one node per host, started detached, driven
//! by pid, cut off by iptables rules that DROP by source address.
//!
//! On each host, everything lives in the host's `data_dir`: `raftdrill` (copied when the host
//! lacks this very build; sha256 compared), `token` (mode 0600, written over SSH's stdin, never
//! on a command line), `node.pid`, `node.log` and `data/`. Link faults go into a chain of
//! raftdrill's own, `RAFTDRILL`, jumped to from INPUT, so healing flushes one chain and
//! cleaning up removes it without touching anyone else's rules.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use raftdrill_wire::Status;
use target_cluster::typ::NodeId;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::file::{HostSpec, HostsFile};
use super::links::{HostLinks, proxy_port};
use super::ssh::{Ssh, SshError, quote};
use super::store::{HostStore, etcd_args, etcd_status};
use crate::admin::AdminClient;
use crate::etcd::api::EtcdApi;
use crate::local_cluster::agreed_leader;

/// How long one control command may take (a copy of the binary gets longer).
pub(super) const CALL: Duration = Duration::from_secs(15);
/// How long copying the binary to a host may take.
const COPY: Duration = Duration::from_secs(300);
/// A shell test that process `$p` runs: it exists and is not a zombie (a killed node's parent
/// on the host may not reap it at once, and `kill -0` succeeds on a zombie).
const ALIVE: &str =
    "{ s=\"$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)\"; [ -n \"$s\" ] && [ \"$s\" != Z ]; }";
/// raftdrill's iptables chain on each host.
const CHAIN: &str = "RAFTDRILL";

/// Driving nodes on hosts failed.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// An SSH call failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A host is not fit to run a node (checked before anything starts).
    #[error("host {host}: {detail}")]
    Unfit {
        /// The host's name.
        host: String,
        /// What is wrong.
        detail: String,
    },
    /// Something on this machine failed.
    #[error("{0}")]
    Local(String),
    /// No leader within the deadline.
    #[error("no leader was elected on the hosts within {0:?}")]
    NoLeader(Duration),
    /// Unknown node id.
    #[error("there is no node {0}")]
    UnknownNode(NodeId),
}

/// One node's host.
#[derive(Debug, Clone)]
pub struct HostNode {
    /// The node id.
    pub id: NodeId,
    /// The host as the file gives it.
    pub spec: HostSpec,
    /// SSH access.
    pub ssh: Ssh,
    /// Where the node listens.
    pub addr: SocketAddr,
    /// The host clock less the controller's, in seconds (midpoint of an SSH round trip).
    pub clock_offset_s: f64,
    /// The round trip the offset was measured in, in seconds (its error is at most half).
    pub clock_rtt_s: f64,
}

impl HostNode {
    fn path(&self, name: &str) -> String {
        quote(&self.spec.data_dir.join(name).display().to_string())
    }
}

/// What the controller did, kept beside the SSH calls.
#[derive(Debug, Default)]
struct State {
    /// Nodes started and not killed or stopped since.
    running: BTreeSet<NodeId>,
    /// Nodes paused (SIGSTOP) and not resumed.
    paused: BTreeSet<NodeId>,
    /// Directed links cut: `(from, to)`, `to`'s host drops what `from` sends.
    cuts: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose clients are cut off too.
    isolated: BTreeSet<NodeId>,
}

/// How to start nodes on hosts.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The raftdrill binary to run on the hosts.
    pub exe: PathBuf,
    /// The port every node listens on, at its host's address.
    pub port: u16,
    /// Extra node flags (`--store memory`, ...).
    pub node_flags: Vec<String>,
    /// The run's token (see `target_cluster::api::Auth`).
    pub token: String,
    /// Run link proxies on the hosts (for delays, bandwidth caps and resets; they add a hop,
    /// so only a scenario that needs them asks).
    pub link_proxies: bool,
    /// The store the nodes run.
    pub store: HostStore,
}

/// Nodes on hosts. Dropping it does not stop them: call [`HostCluster::stop`] (or
/// `raftdrill hosts heal`), which every exit path of the commands does.
pub struct HostCluster {
    nodes: BTreeMap<NodeId, HostNode>,
    opts: HostOptions,
    admin: AdminClient,
    /// What this controller did to the nodes and links; quick to read without SSH.
    state: Mutex<State>,
    /// The link proxies, when asked for.
    links: Option<HostLinks>,
    /// etcd's client API, for the status of etcd members.
    etcd: EtcdApi,
    /// The control sockets of the SSH master connections.
    _control: tempfile::TempDir,
}

impl HostCluster {
    /// Checks every host (SSH, clock, port free, binary), copies the binary where it differs
    /// and hands each host the token, all before any node starts.
    pub async fn prepare(file: &HostsFile, opts: HostOptions) -> Result<Self, HostsError> {
        let admin =
            AdminClient::with_token(&opts.token).map_err(|e| HostsError::Local(e.to_string()))?;
        let local_sum = sha256(&opts.exe).await?;
        let placement = file.placement().map_err(HostsError::Local)?;
        // Short, so the socket paths stay under the 108 bytes a Unix socket path may have.
        let control = tempfile::Builder::new()
            .prefix("rdssh")
            .tempdir_in("/tmp")
            .map_err(|e| HostsError::Local(format!("a folder for SSH sockets: {e}")))?;
        let proxy_ports: Vec<u16> = if opts.link_proxies {
            placement
                .iter()
                .map(|(id, _)| proxy_port(opts.port, *id))
                .collect()
        } else {
            Vec::new()
        };
        let checks = placement.into_iter().map(|(id, spec)| {
            let (spec, opts, sum) = (spec.clone(), opts.clone(), local_sum.clone());
            let socket = control.path().join(id.to_string());
            let ports = &proxy_ports;
            async move { check_host(id, spec, &opts, &sum, ports, socket).await }
        });
        let mut nodes = BTreeMap::new();
        let mut failed = None;
        for checked in join_all(checks).await {
            match checked {
                Ok(node) => {
                    nodes.insert(node.id, node);
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let links = match failed {
            Some(e) => Err(e),
            None if opts.link_proxies => HostLinks::start(&nodes).await.map(Some),
            None => Ok(None),
        };
        let links = match links {
            Ok(l) => l,
            Err(e) => {
                for n in nodes.values_mut() {
                    n.ssh.close_master();
                }
                return Err(e);
            }
        };
        Ok(Self {
            nodes,
            opts,
            admin,
            state: Mutex::new(State::default()),
            links,
            etcd: EtcdApi::new(),
            _control: control,
        })
    }

    /// The nodes.
    pub fn nodes(&self) -> &BTreeMap<NodeId, HostNode> {
        &self.nodes
    }

    /// The store the nodes run.
    pub fn store(&self) -> &HostStore {
        &self.opts.store
    }

    /// The admin client, with the token.
    pub fn admin(&self) -> &AdminClient {
        &self.admin
    }

    /// The client URL of node `id`.
    pub fn url(&self, id: NodeId) -> String {
        self.nodes
            .get(&id)
            .map(|n| format!("http://{}", n.addr))
            .unwrap_or_default()
    }

    /// Every node's client URL, in id order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.keys().map(|id| self.url(*id)).collect()
    }

    fn node(&self, id: NodeId) -> Result<&HostNode, HostsError> {
        self.nodes.get(&id).ok_or(HostsError::UnknownNode(id))
    }

    /// Starts every node; the lowest id bootstraps the cluster.
    pub async fn start_all(&self) -> Result<(), HostsError> {
        let members: Vec<String> = self.nodes.keys().map(|id| id.to_string()).collect();
        let members = members.join(",");
        let starts = self.nodes.keys().map(|id| {
            let line = self.start_line(*id, Some(&members));
            let ssh = self.nodes[id].ssh.clone();
            async move { ssh.run(&line, CALL).await }
        });
        for r in join_all(starts).await {
            r?;
        }
        self.state().running = self.nodes.keys().copied().collect();
        Ok(())
    }

    /// The shell line that starts node `id` detached in its own session, its pid in
    /// `node.pid`; `--initial-members` on the first start only.
    fn start_line(&self, id: NodeId, members: Option<&str>) -> String {
        let n = &self.nodes[&id];
        if self.opts.store.is_etcd() {
            let clients = self.nodes.iter().map(|(i, n)| (*i, n.addr)).collect();
            let args = etcd_args(id, &clients, &n.spec.data_dir, &self.opts.store);
            let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
            // etcd from the host's PATH; restarted on its data, it ignores the initial flags.
            return format!(
                "cd {dir} || exit 1; setsid etcd {args} >> {log} 2>&1 < /dev/null & echo $! > {pid}",
                dir = quote(&n.spec.data_dir.display().to_string()),
                args = args.join(" "),
                log = n.path("node.log"),
                pid = n.path("node.pid"),
            );
        }
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            n.addr.to_string(),
            "--data-dir".into(),
            n.spec.data_dir.join("data").display().to_string(),
            "--token-file".into(),
            n.spec.data_dir.join("token").display().to_string(),
        ];
        for (peer, p) in &self.nodes {
            if *peer != id {
                // Through this host's own proxy to the peer, when there are proxies.
                let addr = self
                    .links
                    .as_ref()
                    .and_then(|l| l.peer_addr(id, *peer))
                    .unwrap_or(p.addr);
                args.extend(["--peer".into(), format!("{peer}={addr}")]);
            }
        }
        if let Some(m) = members {
            args.extend(["--initial-members".into(), m.to_string()]);
        }
        args.extend(self.opts.node_flags.iter().cloned());
        let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
        format!(
            "cd {dir} || exit 1; setsid {exe} {args} >> {log} 2>&1 < /dev/null & echo $! > {pid}",
            dir = quote(&n.spec.data_dir.display().to_string()),
            exe = n.path("raftdrill"),
            args = args.join(" "),
            log = n.path("node.log"),
            pid = n.path("node.pid"),
        )
    }

    /// Sends `signal` to node `id`'s process by its pid file; returns when the host did it.
    async fn signal(&self, id: NodeId, signal: &str) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        let line = format!("kill -{signal} \"$(cat {})\"", n.path("node.pid"));
        self.stamped(id, &line).await
    }

    /// Runs `line` on node `id`'s host and returns the moment it finished there, on the
    /// controller's clock (Unix seconds): the host's own clock read right after, less its
    /// offset. A fault counts from this moment, not from when the SSH call was made, so the
    /// call's own latency is not charged to the store.
    async fn stamped(&self, id: NodeId, line: &str) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        let out = n
            .ssh
            .run(&format!("{line} && date +%s.%N"), CALL)
            .await?
            .text();
        Ok(out
            .lines()
            .last()
            .and_then(|l| l.trim().parse::<f64>().ok())
            .map(|t| t - n.clock_offset_s))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SIGKILL node `id`; returns when the host did it (see [`HostCluster::stamped`]).
    pub async fn kill(&self, id: NodeId) -> Result<Option<f64>, HostsError> {
        let at = self.signal(id, "KILL").await?;
        {
            let mut st = self.state();
            st.running.remove(&id);
            st.paused.remove(&id);
        }
        if let Some(l) = &self.links {
            l.node_down(id).await;
        }
        Ok(at)
    }

    /// SIGTERM node `id`, SIGKILL after `grace`; returns once it is gone.
    pub async fn stop_node(&self, id: NodeId, grace: Duration) -> Result<Option<f64>, HostsError> {
        let n = self.node(id)?;
        clean_node(&n.ssh, &n.spec, grace).await?;
        {
            let mut st = self.state();
            st.running.remove(&id);
            st.paused.remove(&id);
        }
        if let Some(l) = &self.links {
            l.node_down(id).await;
        }
        // The node is gone when the clean-up returns; its exit time is not recorded.
        Ok(None)
    }

    /// SIGSTOP node `id`; returns when the host did it.
    pub async fn pause(&self, id: NodeId) -> Result<Option<f64>, HostsError> {
        let at = self.signal(id, "STOP").await?;
        self.state().paused.insert(id);
        Ok(at)
    }

    /// SIGCONT node `id`.
    pub async fn resume(&self, id: NodeId) -> Result<(), HostsError> {
        self.signal(id, "CONT").await?;
        self.state().paused.remove(&id);
        Ok(())
    }

    /// Starts node `id` again on its data.
    pub async fn restart(&self, id: NodeId) -> Result<(), HostsError> {
        let line = self.start_line(id, None);
        self.node(id)?.ssh.run(&line, CALL).await?;
        self.state().running.insert(id);
        Ok(())
    }

    /// Whether this controller started node `id` and has not killed or stopped it since.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.state().running.contains(&id)
    }

    /// Whether node `id`'s process is alive on its host (asked over SSH).
    pub async fn is_running_on_host(&self, id: NodeId) -> Result<bool, HostsError> {
        let n = self.node(id)?;
        let line = format!("p=\"$(cat {} 2>/dev/null)\" && {ALIVE}", n.path("node.pid"));
        match n.ssh.run(&line, CALL).await {
            Ok(_) => Ok(true),
            Err(SshError::Failed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether this controller paused node `id`.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.state().paused.contains(&id)
    }

    /// The nodes this controller started and has not killed.
    pub fn running_ids(&self) -> Vec<NodeId> {
        self.state().running.iter().copied().collect()
    }

    /// Every directed link between the nodes.
    pub fn links(&self) -> Vec<(NodeId, NodeId)> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        ids.iter()
            .flat_map(|a| ids.iter().filter(move |b| *b != a).map(move |b| (*a, *b)))
            .collect()
    }

    /// Runs one shell line per host, all hosts at once.
    /// Runs one shell line per host, all hosts at once; returns when the last host finished
    /// (see [`HostCluster::stamped`]).
    async fn on_hosts(&self, lines: BTreeMap<NodeId, String>) -> Result<Option<f64>, HostsError> {
        let calls = lines
            .into_iter()
            .map(|(id, line)| async move { self.stamped(id, &line).await });
        let mut last: Option<f64> = None;
        for r in join_all(calls).await {
            if let Some(t) = r? {
                last = Some(last.map_or(t, |l| l.max(t)));
            }
        }
        Ok(last)
    }

    /// The rule lines, per receiving host, that add (`-A`) or delete (`-D`) the drops of
    /// `links`.
    fn link_rules(
        &self,
        links: &[(NodeId, NodeId)],
        op: &str,
    ) -> Result<BTreeMap<NodeId, String>, HostsError> {
        let mut lines: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
        for (from, to) in links {
            let src = self.node(*from)?.addr.ip();
            self.node(*to)?;
            let rule = format!("iptables -w {op} {CHAIN} -s {src} -j DROP");
            // A rule deleted that is not there (healed meanwhile) is no error.
            let rule = if op == "-D" {
                format!("{{ {rule} 2>/dev/null || true; }}")
            } else {
                rule
            };
            lines
                .entry(*to)
                .or_insert_with(|| vec![ensure_chain()])
                .push(rule);
        }
        Ok(lines
            .into_iter()
            .map(|(id, l)| (id, l.join(" && ")))
            .collect())
    }

    /// Cuts each directed link `(from, to)`: `to`'s host drops every packet from `from`'s
    /// host. Packets are dropped, not rejected, so senders see timeouts as behind a real
    /// partition; and as TCP needs both directions, every connection between the two stops,
    /// whichever side opened it (Jepsen cuts the same way).
    pub async fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<Option<f64>, HostsError> {
        let at = self.on_hosts(self.link_rules(links, "-A")?).await?;
        self.state().cuts.extend(links.iter().copied());
        Ok(at)
    }

    /// Whether link faults beyond cuts (delay, bandwidth, reset) can be made: link proxies run.
    pub fn has_link_proxies(&self) -> bool {
        self.links.is_some()
    }

    /// Puts `links` in `mode` on their sending hosts' proxies; returns when the last host did.
    pub async fn set_links(
        &self,
        links: &[(NodeId, NodeId)],
        mode: crate::proxy::LinkMode,
    ) -> Result<Option<f64>, HostsError> {
        match &self.links {
            Some(l) => l.set(links, mode).await,
            None => Err(HostsError::Local(
                "no link proxies run on the hosts for this scenario".into(),
            )),
        }
    }

    /// Undoes [`HostCluster::cut`] and [`HostCluster::set_links`] for `links`.
    pub async fn restore(&self, links: &[(NodeId, NodeId)]) -> Result<(), HostsError> {
        if let Some(l) = &self.links {
            l.restore(links).await?;
        }
        self.on_hosts(self.link_rules(links, "-D")?).await?;
        let mut st = self.state();
        for l in links {
            st.cuts.remove(l);
        }
        Ok(())
    }

    /// Drops, on `on`'s host, every packet from the hosts of `from`.
    pub async fn drop_from(&self, on: NodeId, from: &[NodeId]) -> Result<(), HostsError> {
        let links: Vec<(NodeId, NodeId)> = from.iter().map(|f| (*f, on)).collect();
        self.cut(&links).await.map(|_| ())
    }

    fn touching(&self, id: NodeId) -> Vec<(NodeId, NodeId)> {
        crate::drill::links::touching(
            self.links(),
            &BTreeSet::from([id]),
            crate::scenario::Direction::Both,
        )
    }

    fn client_rule(&self, id: NodeId, op: &str) -> Result<String, HostsError> {
        let port = self.node(id)?.addr.port();
        let rule = format!("iptables -w {op} {CHAIN} -p tcp --dport {port} -j DROP");
        Ok(format!(
            "{} && {{ {rule}{} ; }}",
            ensure_chain(),
            if op == "-D" {
                " 2>/dev/null || true"
            } else {
                ""
            }
        ))
    }

    /// Cuts node `id` off from every other node, both ways, and from its clients: its host
    /// also drops every packet to its node port (SSH stays open). Its clients time out, as
    /// they would behind a real partition; nothing is reset.
    pub async fn isolate(&self, id: NodeId) -> Result<Option<f64>, HostsError> {
        // Clients first, then peers: the isolation is complete when the last cut is in.
        let line = self.client_rule(id, "-A")?;
        self.node(id)?.ssh.run(&line, CALL).await?;
        self.state().isolated.insert(id);
        self.cut(&self.touching(id)).await
    }

    /// Undoes [`HostCluster::isolate`].
    pub async fn end_isolation(&self, id: NodeId) -> Result<(), HostsError> {
        let line = self.client_rule(id, "-D")?;
        self.node(id)?.ssh.run(&line, CALL).await?;
        self.state().isolated.remove(&id);
        self.restore(&self.touching(id)).await
    }

    /// Flushes raftdrill's rules on every host and puts every proxied link in pass mode.
    pub async fn heal_links(&self) -> Result<(), HostsError> {
        if let Some(l) = &self.links {
            l.heal().await?;
        }
        let line = format!(
            "if iptables -w -L {CHAIN} -n >/dev/null 2>&1; then iptables -w -F {CHAIN}; fi"
        );
        let lines = self.nodes.keys().map(|id| (*id, line.clone())).collect();
        self.on_hosts(lines).await?;
        let mut st = self.state();
        st.cuts.clear();
        st.isolated.clear();
        Ok(())
    }

    /// Whether node `id` is cut off from every other node.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        let st = self.state();
        st.isolated.contains(&id) || {
            let touching = self.touching(id);
            !touching.is_empty() && touching.iter().all(|l| st.cuts.contains(l))
        }
    }

    /// The cuts touching node `id`, for the live view (`→2 drop`, `3→ drop`).
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        let st = self.state();
        let mut out: Vec<String> = st
            .cuts
            .iter()
            .filter_map(|(from, to)| {
                if *from == id {
                    Some(format!("→{to} drop"))
                } else if *to == id {
                    Some(format!("{from}→ drop"))
                } else {
                    None
                }
            })
            .collect();
        if st.isolated.contains(&id) {
            out.push("clients drop".into());
        }
        if let Some(l) = &self.links {
            out.extend(l.faults_of(id));
        }
        out
    }

    /// Polls every running node's `/status` until all agree on one leader.
    pub async fn wait_for_leader(&self, limit: Duration) -> Result<NodeId, HostsError> {
        let deadline = Instant::now() + limit;
        loop {
            let statuses = self.statuses().await;
            if let Some(leader) = agreed_leader(&statuses)
                && statuses.len() == self.answering().len()
            {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(HostsError::NoLeader(limit));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The nodes that run and are not paused.
    fn answering(&self) -> Vec<NodeId> {
        let st = self.state();
        st.running
            .iter()
            .copied()
            .filter(|id| !st.paused.contains(id))
            .collect()
    }

    /// The status of every running node that answers.
    pub async fn statuses(&self) -> Vec<Status> {
        let calls = self
            .answering()
            .into_iter()
            .map(|id| self.status_call(id, Duration::from_millis(500)));
        join_all(calls).await.into_iter().flatten().collect()
    }

    /// A status call for node `id` that owns what it needs (reference `/status`, or etcd's
    /// status and member list), so it can be awaited without holding the cluster.
    pub fn status_call(
        &self,
        id: NodeId,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Status>> + Send>> {
        let url = self.url(id);
        if self.opts.store.is_etcd() {
            Box::pin(etcd_status(self.etcd.clone(), url, id, timeout))
        } else {
            let admin = self.admin.clone();
            Box::pin(async move { admin.status(&url, timeout).await.ok() })
        }
    }

    /// Copies every node's log into `dir` as `<id>.log`.
    pub async fn fetch_logs(&self, dir: &Path) -> Result<(), HostsError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| HostsError::Local(format!("{}: {e}", dir.display())))?;
        for (id, n) in &self.nodes {
            let out = n
                .ssh
                .run(
                    &format!("cat {} 2>/dev/null || true", n.path("node.log")),
                    COPY,
                )
                .await?;
            let path = dir.join(format!("{id}.log"));
            std::fs::write(&path, &out.stdout)
                .map_err(|e| HostsError::Local(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Stops every node (SIGTERM, SIGKILL after `grace`) and removes raftdrill's rules, on
    /// every host, whatever this controller believes runs. Errors are collected, not fatal:
    /// each host is cleaned as far as it can be.
    /// (The SSH master connections close when the cluster is dropped.)
    pub async fn stop(&self, grace: Duration) -> Vec<HostsError> {
        if let Some(l) = &self.links {
            l.stop().await;
        }
        let calls = self
            .nodes
            .values()
            .map(|n| clean_host(n.ssh.clone(), n.spec.clone(), grace));
        let errors = join_all(calls)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        *self.state() = State::default();
        errors
    }
}

impl Drop for HostCluster {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            n.ssh.close_master();
        }
    }
}

/// The shell line that makes raftdrill's chain and jumps to it from INPUT, once.
fn ensure_chain() -> String {
    format!(
        "(iptables -w -L {CHAIN} -n >/dev/null 2>&1 || iptables -w -N {CHAIN}) && \
         (iptables -w -C INPUT -j {CHAIN} 2>/dev/null || iptables -w -I INPUT -j {CHAIN})"
    )
}

/// Stops the node of `spec` by its pid file (TERM, KILL after `grace`) and removes
/// raftdrill's chain: what `raftdrill hosts heal` does for a host a crashed controller left.
pub async fn clean_host(ssh: Ssh, spec: HostSpec, grace: Duration) -> Result<(), HostsError> {
    clean_node(&ssh, &spec, grace).await?;
    let line = format!(
        "if command -v iptables >/dev/null && iptables -w -L {CHAIN} -n >/dev/null 2>&1; then \
         iptables -w -D INPUT -j {CHAIN} 2>/dev/null; iptables -w -F {CHAIN} && iptables -w -X {CHAIN}; fi; true"
    );
    ssh.run(&line, CALL).await?;
    Ok(())
}

/// Stops the node of `spec` by its pid file: TERM (and CONT, should it be paused), KILL after
/// `grace`; then any node, load generator, link proxy or etcd member of this `data_dir` whose
/// pid file is gone.
async fn clean_node(ssh: &Ssh, spec: &HostSpec, grace: Duration) -> Result<(), HostsError> {
    let pid = quote(&spec.data_dir.join("node.pid").display().to_string());
    // Nodes, and load generators a crashed controller left on a load host.
    let pattern = quote(&format!(
        "^{} (node|load) ",
        spec.data_dir.join("raftdrill").display()
    ));
    let proxies = quote(&format!(
        "^({}|./raftdrill) proxy ",
        spec.data_dir.join("raftdrill").display()
    ));
    let etcd = quote(&format!(
        "^etcd .*--data-dir={}( |$)",
        spec.data_dir.join("data").display()
    ));
    let tenths = (grace.as_millis() / 100).max(1);
    let line = format!(
        "if [ -f {pid} ]; then p=\"$(cat {pid})\"; kill -TERM \"$p\" 2>/dev/null; kill -CONT \"$p\" 2>/dev/null; \
         i=0; while {ALIVE} && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done; \
         kill -KILL \"$p\" 2>/dev/null; rm -f {pid}; fi; \
         pkill -KILL -f {pattern} 2>/dev/null; pkill -KILL -f {proxies} 2>/dev/null; \
         pkill -KILL -f {etcd} 2>/dev/null; true"
    );
    ssh.run(&line, grace + CALL).await?;
    Ok(())
}

/// Checks one host and readies it: SSH works, its clock offset, the port is free, iptables is
/// there, the binary matches (copied if not), the token is in place.
async fn check_host(
    id: NodeId,
    spec: HostSpec,
    opts: &HostOptions,
    local_sum: &str,
    proxy_ports: &[u16],
    socket: PathBuf,
) -> Result<HostNode, HostsError> {
    let mut ssh = Ssh::new(&spec).map_err(|detail| HostsError::Unfit {
        host: spec.name.clone(),
        detail,
    })?;
    ssh.open_master(socket, CALL).await?;
    let ready = ready_host(id, spec, opts, local_sum, proxy_ports, ssh.clone()).await;
    if ready.is_err() {
        ssh.close_master();
    }
    ready
}

async fn ready_host(
    id: NodeId,
    spec: HostSpec,
    opts: &HostOptions,
    local_sum: &str,
    proxy_ports: &[u16],
    ssh: Ssh,
) -> Result<HostNode, HostsError> {
    let unfit = |detail: String| HostsError::Unfit {
        host: spec.name.clone(),
        detail,
    };
    let ip: IpAddr = spec
        .addr
        .parse()
        .map_err(|_| unfit(format!("addr {:?} is not an IP address", spec.addr)))?;
    let (clock_offset_s, clock_rtt_s) = clock_offset(&ssh).await?;
    let dir = quote(&spec.data_dir.display().to_string());
    let facts = ssh
        .run(
            &format!(
                "mkdir -p {dir} && echo ok; \
                 if [ -s {dir}/node.pid ] && kill -0 \"$(cat {dir}/node.pid)\" 2>/dev/null; then echo node-running; fi; \
                 for p in {ports}; do if ss -Htln \"sport = :$p\" | grep -q .; then echo port-busy $p; fi; done; \
                 command -v iptables >/dev/null && echo iptables; \
                 command -v etcd >/dev/null && echo etcd; \
                 sha256sum {dir}/raftdrill 2>/dev/null | cut -d' ' -f1",
                ports = std::iter::once(opts.port)
                    .chain(opts.store.is_etcd().then(|| opts.port.saturating_add(1)))
                    .chain(proxy_ports.iter().copied())
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            CALL,
        )
        .await?
        .text();
    let lines: Vec<&str> = facts.lines().map(str::trim).collect();
    if !lines.contains(&"ok") {
        return Err(unfit(format!("cannot create {}", spec.data_dir.display())));
    }
    if lines.contains(&"node-running") {
        return Err(unfit(format!(
            "a node of an earlier run still runs from {} (raftdrill hosts heal)",
            spec.data_dir.display()
        )));
    }
    if let Some(busy) = lines.iter().find_map(|l| l.strip_prefix("port-busy ")) {
        return Err(unfit(format!("port {busy} is in use")));
    }
    if !lines.contains(&"iptables") {
        return Err(unfit(
            "iptables is missing (install Debian's iptables): link faults need it".into(),
        ));
    }
    if opts.store.is_etcd() && !lines.contains(&"etcd") {
        return Err(unfit(
            "etcd is not on the host's PATH (Debian: etcd-server)".into(),
        ));
    }
    // etcd nodes need raftdrill only for link proxies.
    let needs_binary = !opts.store.is_etcd() || opts.link_proxies;
    if needs_binary && !lines.contains(&local_sum) {
        install_binary(&ssh, &spec, &opts.exe).await?;
    }
    // Every run starts its nodes empty, as a cluster on this machine does: the data and the
    // log of an earlier run on this host go.
    ssh.run(
        &format!("rm -rf {dir}/data {dir}/node.log {dir}/node.pid"),
        CALL,
    )
    .await?;
    ssh.run_with_input(
        &format!("umask 077 && cat > {dir}/token"),
        Some(opts.token.as_bytes()),
        CALL,
    )
    .await?;
    Ok(HostNode {
        id,
        addr: SocketAddr::new(ip, opts.port),
        spec,
        ssh,
        clock_offset_s,
        clock_rtt_s,
    })
}

/// Copies `exe` to `data_dir/raftdrill` on the host (through a temporary name, so a binary
/// in use is replaced, not overwritten).
pub(super) async fn install_binary(
    ssh: &Ssh,
    spec: &HostSpec,
    exe: &Path,
) -> Result<(), HostsError> {
    let dir = quote(&spec.data_dir.display().to_string());
    let bytes = tokio::fs::read(exe)
        .await
        .map_err(|e| HostsError::Local(format!("{}: {e}", exe.display())))?;
    ssh.run_with_input(
        &format!(
            "cat > {dir}/.raftdrill.part && chmod 755 {dir}/.raftdrill.part && \
             mv {dir}/.raftdrill.part {dir}/raftdrill"
        ),
        Some(&bytes),
        COPY,
    )
    .await?;
    Ok(())
}

/// The host's clock less this machine's, from the midpoint of the shortest of five round
/// trips inside one SSH session, with that round trip. (A fresh SSH call spends most of its
/// round trip on the handshake before the remote command runs, so its midpoint would read
/// the handshake as clock offset.)
pub async fn clock_offset(ssh: &Ssh) -> Result<(f64, f64), HostsError> {
    let bad = |detail: String| HostsError::Unfit {
        host: ssh.name().to_string(),
        detail,
    };
    let mut session = ssh
        .spawn("while read -r _; do date +%s.%N; done")
        .map_err(HostsError::Ssh)?;
    let mut stdin = session.stdin.take().ok_or_else(|| bad("no stdin".into()))?;
    let stdout = session
        .stdout
        .take()
        .ok_or_else(|| bad("no stdout".into()))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..5 {
        let t0 = loadgen::unix_us_now() as f64 / 1e6;
        stdin
            .write_all(b"t\n")
            .await
            .map_err(|e| bad(format!("clock probe: {e}")))?;
        let line = tokio::time::timeout(CALL, lines.next_line())
            .await
            .map_err(|_| bad(format!("clock probe: no answer within {CALL:?}")))?
            .map_err(|e| bad(format!("clock probe: {e}")))?
            .ok_or_else(|| bad("clock probe: the session ended (ssh failed?)".into()))?;
        let t1 = loadgen::unix_us_now() as f64 / 1e6;
        let remote: f64 = line
            .trim()
            .parse()
            .map_err(|_| bad(format!("`date +%s.%N` printed {line:?}")))?;
        let (offset, rtt) = (remote - (t0 + t1) / 2.0, t1 - t0);
        if best.is_none_or(|(_, r)| rtt < r) {
            best = Some((offset, rtt));
        }
    }
    drop(stdin);
    let _ = tokio::time::timeout(CALL, session.wait()).await;
    Ok(best.expect("five samples"))
}

/// The sha256 of a local file, by coreutils' `sha256sum`.
pub(super) async fn sha256(path: &Path) -> Result<String, HostsError> {
    let out = tokio::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .await
        .map_err(|e| HostsError::Local(format!("sha256sum: {e}")))?;
    if !out.status.success() {
        return Err(HostsError::Local(format!(
            "sha256sum {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().next().unwrap_or("").to_string())
}
