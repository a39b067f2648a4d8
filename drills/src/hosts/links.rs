//! Link proxies on hosts, for the link faults iptables cannot make (delay with jitter, a
//! bandwidth cap, resets): each host runs `raftdrill proxy` over SSH for the links its node
//! opens (see [`crate::proxy::remote`]), and its node reaches each peer through its own host's
//! proxy. So link A→B lives on A's host and carries the connections A opens to B, both ways,
//! as on one machine. The proxies run only for a scenario that needs them: they add a hop.
//!
//! A proxy process stops when its SSH session's stdin closes, so none outlives its
//! controller. Its log is `data_dir/proxy.log` on the host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use target_cluster::typ::NodeId;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::node::HostNode;
use super::ssh::quote;
use super::{CALL, HostsError, later};
use crate::links::mode_name;
use crate::proxy::LinkMode;
use crate::proxy::remote::{ProxyCommand, ProxyReply};

/// The port on node `from`'s host where its proxy to node `to` listens: the node port plus
/// 100 plus `to` (7101 + 2 = 7103 for node 2 with the default node port).
pub fn proxy_port(node_port: u16, to: NodeId) -> u16 {
    node_port.saturating_add(100).saturating_add(to as u16)
}

/// One host's proxy process and its conversation.
struct Session {
    child: Child,
    /// `None` once stopped.
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

/// The proxies on every host.
pub struct HostLinks {
    sessions: BTreeMap<NodeId, tokio::sync::Mutex<Session>>,
    /// Where node `from` reaches node `to`: its own host's proxy.
    addrs: BTreeMap<(NodeId, NodeId), SocketAddr>,
    offsets: BTreeMap<NodeId, f64>,
    hosts: BTreeMap<NodeId, String>,
    /// Links not in pass mode.
    modes: Mutex<BTreeMap<(NodeId, NodeId), LinkMode>>,
}

impl HostLinks {
    /// Starts a proxy process on every host, one proxy per link its node opens, and waits
    /// until each says it listens.
    pub async fn start(nodes: &BTreeMap<NodeId, HostNode>) -> Result<Self, HostsError> {
        let mut addrs = BTreeMap::new();
        let mut starts = Vec::new();
        for (from, n) in nodes {
            let mut flags = Vec::new();
            for (to, peer) in nodes.iter().filter(|(to, _)| *to != from) {
                let listen = SocketAddr::new(n.addr.ip(), proxy_port(n.addr.port(), *to));
                addrs.insert((*from, *to), listen);
                flags.push(format!("--link={to}={listen},{}", peer.addr));
            }
            let dir = quote(&n.spec.data_dir.display().to_string());
            let line = format!(
                "cd {dir} && exec ./raftdrill proxy {} 2>> proxy.log",
                flags.join(" ")
            );
            starts.push(async move { (*from, start_one(n, &line).await) });
        }
        let mut sessions = BTreeMap::new();
        let mut failed = None;
        for (id, started) in join_all(starts).await {
            match started {
                Ok(s) => {
                    sessions.insert(id, tokio::sync::Mutex::new(s));
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let links = Self {
            sessions,
            addrs,
            offsets: nodes
                .iter()
                .map(|(id, n)| (*id, n.clock_offset_s))
                .collect(),
            hosts: nodes
                .iter()
                .map(|(id, n)| (*id, n.spec.name.clone()))
                .collect(),
            modes: Mutex::new(BTreeMap::new()),
        };
        match failed {
            Some(e) => {
                links.stop().await;
                Err(e)
            }
            None => Ok(links),
        }
    }

    /// Where node `from` reaches node `to`.
    pub fn peer_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.addrs.get(&(from, to)).copied()
    }

    fn modes(&self) -> std::sync::MutexGuard<'_, BTreeMap<(NodeId, NodeId), LinkMode>> {
        self.modes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `cmd` to node `from`'s proxy; returns when it was carried out there, on the
    /// controller's clock (Unix seconds).
    async fn ask(&self, from: NodeId, cmd: &ProxyCommand) -> Result<Option<f64>, HostsError> {
        let host = self.hosts.get(&from).cloned().unwrap_or_default();
        let fail = |detail: String| HostsError::Unfit {
            host: host.clone(),
            detail: format!("link proxy: {detail}"),
        };
        let session = self
            .sessions
            .get(&from)
            .ok_or(HostsError::UnknownNode(from))?;
        let mut s = session.lock().await;
        let mut line = serde_json::to_string(cmd).expect("commands serialize");
        line.push('\n');
        s.stdin
            .as_mut()
            .ok_or_else(|| fail("stopped".into()))?
            .write_all(line.as_bytes())
            .await
            .map_err(|e| fail(format!("cannot send: {e}")))?;
        let answer = tokio::time::timeout(CALL, s.lines.next_line())
            .await
            .map_err(|_| fail(format!("no answer within {CALL:?}")))?
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("the proxy process ended (see proxy.log on the host)".into()))?;
        let reply: ProxyReply =
            serde_json::from_str(&answer).map_err(|_| fail(format!("it said {answer:?}")))?;
        if !reply.ok {
            return Err(fail(reply.error.unwrap_or_default()));
        }
        let offset = self.offsets.get(&from).copied().unwrap_or(0.0);
        Ok(reply.unix_s.map(|t| t - offset))
    }

    /// Puts `links` in `mode`, all sending hosts at once; returns when the last one did it.
    pub async fn set(
        &self,
        links: &[(NodeId, NodeId)],
        mode: LinkMode,
    ) -> Result<Option<f64>, HostsError> {
        let mut by_sender: BTreeMap<NodeId, Vec<u64>> = BTreeMap::new();
        for (from, to) in links {
            by_sender.entry(*from).or_default().push(*to);
        }
        let calls = by_sender.into_iter().map(|(from, to)| {
            let cmd = ProxyCommand::Set {
                to,
                mode: mode.into(),
            };
            async move { self.ask(from, &cmd).await }
        });
        let mut last = None;
        for r in join_all(calls).await {
            last = later(last, r?);
        }
        let mut modes = self.modes();
        for l in links {
            if mode == LinkMode::Pass {
                modes.remove(l);
            } else {
                modes.insert(*l, mode);
            }
        }
        Ok(last)
    }

    /// Puts back in pass mode those of `links` that are not; returns when the last host did.
    pub async fn restore(&self, links: &[(NodeId, NodeId)]) -> Result<Option<f64>, HostsError> {
        let changed: Vec<_> = {
            let modes = self.modes();
            links
                .iter()
                .filter(|l| modes.contains_key(l))
                .copied()
                .collect()
        };
        if changed.is_empty() {
            return Ok(None);
        }
        self.set(&changed, LinkMode::Pass).await
    }

    /// Every link back in pass mode.
    pub async fn heal(&self) -> Result<(), HostsError> {
        let all: Vec<_> = self.modes().keys().copied().collect();
        self.restore(&all).await.map(|_| ())
    }

    /// Node `id` went down: the proxies to it refuse at once (as its closed port would)
    /// instead of taking connections they cannot forward. Best effort.
    pub async fn node_down(&self, id: NodeId) {
        let calls = self
            .sessions
            .keys()
            .filter(|from| **from != id)
            .map(|from| {
                let cmd = ProxyCommand::Down { to: vec![id] };
                async move { (*from, self.ask(*from, &cmd).await) }
            });
        for (from, r) in join_all(calls).await {
            if let Err(e) = r {
                tracing::warn!(from, to = id, error = %e, "the down hint did not reach a proxy");
            }
        }
    }

    /// The link modes touching node `id`, for the live view (`→2 delay 50ms`).
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        self.modes()
            .iter()
            .filter_map(|((from, to), mode)| {
                if *from == id {
                    Some(format!("→{to} {}", mode_name(*mode)))
                } else if *to == id {
                    Some(format!("{from}→ {}", mode_name(*mode)))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Whether any link is not in pass mode.
    pub fn any_fault(&self) -> bool {
        !self.modes().is_empty()
    }

    /// The links in a mode other than pass.
    pub fn faulted(&self) -> BTreeSet<(NodeId, NodeId)> {
        self.modes().keys().copied().collect()
    }

    /// Stops every proxy process: its stdin closes and it exits; one that does not within a
    /// few seconds has its SSH session killed (`hosts heal` removes leftovers on the host).
    pub async fn stop(&self) {
        let stops = self.sessions.values().map(|s| async move {
            let mut s = s.lock().await;
            drop(s.stdin.take());
            if tokio::time::timeout(Duration::from_secs(5), s.child.wait())
                .await
                .is_err()
            {
                let _ = s.child.kill().await;
            }
        });
        join_all(stops).await;
        self.modes().clear();
    }
}

/// Starts one host's proxy process and waits for its first line.
async fn start_one(n: &HostNode, line: &str) -> Result<Session, HostsError> {
    let fail = |detail: String| HostsError::Unfit {
        host: n.spec.name.clone(),
        detail: format!("link proxies: {detail}"),
    };
    let mut child = n.ssh.spawn_piped(line)?;
    let stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("no stdout".into()))?;
    // Its stderr goes to proxy.log on the host; SSH's own is dropped.
    drop(child.stderr.take());
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(CALL, lines.next_line())
        .await
        .map_err(|_| fail(format!("not listening within {CALL:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    match first.map(|l| serde_json::from_str::<ProxyReply>(&l)) {
        Some(Ok(r)) if r.ok => Ok(Session {
            child,
            stdin: Some(stdin),
            lines,
        }),
        _ => {
            let _ = child.kill().await;
            Err(fail(format!(
                "did not start (see {} on the host)",
                n.spec.data_dir.join("proxy.log").display()
            )))
        }
    }
}
