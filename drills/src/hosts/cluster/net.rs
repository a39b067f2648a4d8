//! Link faults on hosts: iptables rules by source address in raftdrill's own chain on the
//! receiving host (cuts DROP, packet loss DROPs a share with the `statistic` match, resets
//! REJECT with a TCP reset: no proxy hop for any of them), and delays and bandwidth caps by tc
//! where a host has it ([`super::super::shaping`]) and by link proxies elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use futures_util::future::join_all;
use target_cluster::typ::NodeId;

use super::{CHAIN, HostCluster};
use crate::hosts::shaping;
use crate::hosts::{CALL, HostsError, later};
use crate::links::mode_name;
use crate::proxy::LinkMode;

/// What raftdrill's chain does with a link's packets on the receiving host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Filter {
    /// Drop every packet: a cut (senders time out, as behind a real partition).
    Drop,
    /// Drop each packet with this probability (`statistic --mode random`).
    Lose(f64),
    /// Refuse every TCP packet with a reset (`REJECT --reject-with tcp-reset`).
    Reset,
}

impl Filter {
    /// The rule's match and target.
    fn rule(self) -> String {
        match self {
            Filter::Drop => "-j DROP".into(),
            Filter::Lose(p) => format!("-m statistic --mode random --probability {p} -j DROP"),
            Filter::Reset => "-p tcp -j REJECT --reject-with tcp-reset".into(),
        }
    }

    /// Its name in the live view.
    fn name(self) -> String {
        match self {
            Filter::Drop => "drop".into(),
            Filter::Lose(p) => format!("lose {:.0}%", p * 100.0),
            Filter::Reset => "reset".into(),
        }
    }
}

impl HostCluster {
    /// Every directed link between the nodes.
    pub fn links(&self) -> Vec<(NodeId, NodeId)> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        ids.iter()
            .flat_map(|a| ids.iter().filter(move |b| *b != a).map(move |b| (*a, *b)))
            .collect()
    }

    /// Runs one shell line per host, all hosts at once; returns when the last host finished
    /// (see `HostCluster::stamped`).
    async fn on_hosts(&self, lines: BTreeMap<NodeId, String>) -> Result<Option<f64>, HostsError> {
        let calls = lines
            .into_iter()
            .map(|(id, line)| async move { self.stamped(id, &line).await });
        let mut last = None;
        for r in join_all(calls).await {
            last = later(last, r?);
        }
        Ok(last)
    }

    /// The rule lines, per receiving host, that add (`-A`) or delete (`-D`) the filters of
    /// `links`.
    fn link_rules(
        &self,
        links: &[((NodeId, NodeId), Filter)],
        op: &str,
    ) -> Result<BTreeMap<NodeId, String>, HostsError> {
        let mut lines: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
        for ((from, to), filter) in links {
            let src = self.node(*from)?.addr.ip();
            self.node(*to)?;
            let rule = format!("iptables -w {op} {CHAIN} -s {src} {}", filter.rule());
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
        self.filter(links, Filter::Drop).await
    }

    /// Puts `filter` on each directed link `(from, to)`, on `to`'s host, all hosts at once.
    /// A link already filtered is changed, not filtered twice.
    pub async fn filter(
        &self,
        links: &[(NodeId, NodeId)],
        filter: Filter,
    ) -> Result<Option<f64>, HostsError> {
        let old: Vec<_> = {
            let st = self.state();
            links
                .iter()
                .filter_map(|l| st.rules.get(l).map(|f| (*l, *f)))
                .collect()
        };
        if !old.is_empty() {
            self.on_hosts(self.link_rules(&old, "-D")?).await?;
        }
        let new: Vec<_> = links.iter().map(|l| (*l, filter)).collect();
        let rules = self.link_rules(&new, "-A")?;
        // Counted as filtered before the rules go in, so a change that failed half-way is
        // still undone by [`HostCluster::restore`].
        self.state().rules.extend(new);
        self.on_hosts(rules).await
    }

    /// Whether link proxies run on the hosts (for the link faults tc does not make there).
    pub fn has_link_proxies(&self) -> bool {
        self.links.is_some()
    }

    /// Whether the sending host of `link` makes `mode` on it with tc (else its proxy does).
    pub fn shapes(&self, (from, to): (NodeId, NodeId), mode: &LinkMode) -> bool {
        match (self.nodes.get(&from), self.nodes.get(&to)) {
            (Some(f), Some(t)) => f.can_shape(mode, to, t.addr.ip()),
            _ => false,
        }
    }

    /// Puts `links` in `mode`: by tc on the sending hosts that can ([`HostCluster::shapes`]),
    /// by their link proxies elsewhere; all hosts at once, and returns when the last one did.
    pub async fn set_links(
        &self,
        links: &[(NodeId, NodeId)],
        mode: LinkMode,
    ) -> Result<Option<f64>, HostsError> {
        let (by_tc, by_proxy): (Vec<_>, Vec<_>) =
            links.iter().copied().partition(|l| self.shapes(*l, &mode));
        let mut lines: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
        for (from, to) in &by_tc {
            let line = self
                .tc_route(*from, *to)
                .and_then(|(route, peer)| shaping::set_line(*to, peer, route, &mode));
            lines
                .entry(*from)
                .or_default()
                .push(line.ok_or(HostsError::UnknownNode(*to))?);
        }
        // Counted as shaped before the lines run, so a change that failed half-way is still
        // undone by [`HostCluster::restore`].
        self.state().shaped.extend(by_tc.iter().map(|l| (*l, mode)));
        let tc = self.on_hosts(
            lines
                .into_iter()
                .map(|(id, l)| (id, l.join(" && ")))
                .collect(),
        );
        let proxies = async {
            match (&self.links, by_proxy.is_empty()) {
                (_, true) => Ok(None),
                (Some(l), false) => l.set(&by_proxy, mode).await,
                (None, false) => Err(HostsError::Local(
                    "no link proxies run on the hosts for this scenario".into(),
                )),
            }
        };
        let (tc, proxies) = tokio::join!(tc, proxies);
        Ok(later(tc?, proxies?))
    }

    /// The interface node `from`'s host reaches node `to` through, and `to`'s address.
    fn tc_route(&self, from: NodeId, to: NodeId) -> Option<(&shaping::Route, IpAddr)> {
        let peer = self.nodes.get(&to)?.addr.ip();
        let route = self.nodes.get(&from)?.shaping.as_ref()?.routes.get(&peer)?;
        Some((route, peer))
    }

    /// Undoes [`HostCluster::cut`] and [`HostCluster::set_links`] for `links`, touching only
    /// what is in place (tc classes, proxy modes, rules), all hosts at once; returns when the
    /// last host was done (see `HostCluster::stamped`).
    pub async fn restore(&self, links: &[(NodeId, NodeId)]) -> Result<Option<f64>, HostsError> {
        let (shaped, cut): (Vec<_>, Vec<_>) = {
            let st = self.state();
            (
                links
                    .iter()
                    .filter(|l| st.shaped.contains_key(l))
                    .copied()
                    .collect(),
                links
                    .iter()
                    .filter_map(|l| st.rules.get(l).map(|f| (*l, *f)))
                    .collect(),
            )
        };
        let rules = self.link_rules(&cut, "-D")?;
        let proxies = async {
            match &self.links {
                Some(l) => l.restore(links).await,
                None => Ok(None),
            }
        };
        let (tc, proxies, rules) =
            tokio::join!(self.unshape(&shaped), proxies, self.on_hosts(rules));
        let at = later(later(tc?, proxies?), rules?);
        let mut st = self.state();
        for (l, _) in &cut {
            st.rules.remove(l);
        }
        Ok(at)
    }

    /// Removes the tc shaping of `links`; returns when the last host did.
    async fn unshape(&self, links: &[(NodeId, NodeId)]) -> Result<Option<f64>, HostsError> {
        let mut lines: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
        for (from, to) in links {
            if let Some((route, _)) = self.tc_route(*from, *to) {
                lines
                    .entry(*from)
                    .or_default()
                    .push(shaping::clear_line(*to, route));
            }
        }
        let at = self
            .on_hosts(
                lines
                    .into_iter()
                    .map(|(id, l)| (id, l.join(" && ")))
                    .collect(),
            )
            .await?;
        let mut st = self.state();
        for l in links {
            st.shaped.remove(l);
        }
        Ok(at)
    }

    /// Drops, on `on`'s host, every packet from the hosts of `from`.
    pub async fn drop_from(&self, on: NodeId, from: &[NodeId]) -> Result<(), HostsError> {
        let links: Vec<(NodeId, NodeId)> = from.iter().map(|f| (*f, on)).collect();
        self.cut(&links).await.map(|_| ())
    }

    fn touching(&self, id: NodeId) -> Vec<(NodeId, NodeId)> {
        crate::links::touching(
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
    pub async fn end_isolation(&self, id: NodeId) -> Result<Option<f64>, HostsError> {
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
        let shaped: Vec<(NodeId, NodeId)> = self.state().shaped.keys().copied().collect();
        self.unshape(&shaped).await?;
        let line = format!(
            "if iptables -w -L {CHAIN} -n >/dev/null 2>&1; then iptables -w -F {CHAIN}; fi"
        );
        let lines = self.nodes.keys().map(|id| (*id, line.clone())).collect();
        self.on_hosts(lines).await?;
        let mut st = self.state();
        st.rules.clear();
        st.isolated.clear();
        Ok(())
    }

    /// Whether node `id` is cut off from every other node.
    pub fn is_isolated(&self, id: NodeId) -> bool {
        let st = self.state();
        st.isolated.contains(&id) || {
            let touching = self.touching(id);
            !touching.is_empty()
                && touching
                    .iter()
                    .all(|l| st.rules.get(l) == Some(&Filter::Drop))
        }
    }

    /// The link faults touching node `id`, for the live view (`→2 drop`, `3→ lose 20%`).
    pub fn faults_of(&self, id: NodeId) -> Vec<String> {
        let st = self.state();
        let mut out: Vec<String> = st
            .rules
            .iter()
            .filter_map(|((from, to), f)| {
                if *from == id {
                    Some(format!("→{to} {}", f.name()))
                } else if *to == id {
                    Some(format!("{from}→ {}", f.name()))
                } else {
                    None
                }
            })
            .collect();
        if st.isolated.contains(&id) {
            out.push("clients drop".into());
        }
        for ((from, to), mode) in &st.shaped {
            let name = mode_name(*mode);
            if *from == id {
                out.push(format!("→{to} {name} (tc)"));
            } else if *to == id {
                out.push(format!("{from}→ {name} (tc)"));
            }
        }
        if let Some(l) = &self.links {
            out.extend(l.faults_of(id));
        }
        out
    }
}

/// The shell line that makes raftdrill's chain and jumps to it from INPUT, once.
fn ensure_chain() -> String {
    format!(
        "(iptables -w -L {CHAIN} -n >/dev/null 2>&1 || iptables -w -N {CHAIN}) && \
         (iptables -w -C INPUT -j {CHAIN} 2>/dev/null || iptables -w -I INPUT -j {CHAIN})"
    )
}
