//! Delays and bandwidth caps made by a host's own traffic control (`tc`), as Jepsen's net layer
//! makes them: on the sending host's interface toward the peer, an htb root (handle
//! [`ROOT`]) holds one class per shaped link, a u32 filter sends the packets for the peer's
//! address into it, and its leaf is a netem qdisc (delay, jitter) or a tbf qdisc (bandwidth).
//! Packets to anyone else go past the classes untouched (htb's direct queue).
//!
//! A link here is what tc sees: the packets from the sending host to the peer's address, so a
//! shaped link A→B slows A's requests to B and A's answers to B's requests alike (a link
//! proxy shapes the connections A opens, both ways). Delaying both directions of a node's
//! links adds the delay twice to every round trip in either case.
//!
//! Whether a host can do it is found out per host before anything starts ([`probe_line`]): on
//! a throwaway veth pair, never on a live interface, and a live interface whose root qdisc is
//! someone else's is left alone. A host that cannot falls back to link proxies. The root is
//! removed by every clean-up ([`clean_line`]), also by `raftdrill hosts heal`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use target_cluster::typ::NodeId;

use crate::proxy::LinkMode;

/// raftdrill's root qdisc handle (`0x5244`, "RD") on a shaped interface.
pub const ROOT: &str = "5244";

/// The highest node id whose link gets a class of its own (class minor and filter priority
/// are the peer's id).
const MAX_PEER: NodeId = 0xfff;

/// What a host's kernel and `tc` offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TcSupport {
    /// htb classes and u32 filters: one qdisc per peer address.
    pub classes: bool,
    /// The netem qdisc (delay, jitter).
    pub netem: bool,
    /// The tbf qdisc (bandwidth).
    pub tbf: bool,
}

/// The interface a host sends to one peer through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The interface's name.
    pub dev: String,
    /// Its MTU, bytes (a tbf burst must hold a packet).
    pub mtu: u32,
    /// Its root qdisc is the kernel's default (handle `0:`) or raftdrill's: raftdrill may
    /// put its own there.
    pub root_free: bool,
}

/// What [`probe_line`] found on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// The qdiscs that work there.
    pub support: TcSupport,
    /// The interface toward each peer address.
    pub routes: BTreeMap<IpAddr, Route>,
}

impl Probe {
    /// Reads [`probe_line`]'s output.
    pub fn parse(text: &str) -> Self {
        let mut p = Self::default();
        for line in text.lines().map(str::trim) {
            match line {
                "tc-classes" => p.support.classes = true,
                "tc-netem" => p.support.netem = true,
                "tc-tbf" => p.support.tbf = true,
                _ => {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if let ["tc-route", addr, dev, mtu, handle, ..] = f[..]
                        && let (Ok(addr), Ok(mtu)) = (addr.parse(), mtu.parse())
                    {
                        let root_free =
                            dev != "lo" && (handle == "0:" || handle == format!("{ROOT}:"));
                        p.routes.insert(
                            addr,
                            Route {
                                dev: dev.to_string(),
                                mtu,
                                root_free,
                            },
                        );
                    }
                }
            }
        }
        p
    }

    /// Whether this host can put its link to `peer` (node `to`) in `mode` with tc.
    pub fn can(&self, mode: &LinkMode, to: NodeId, peer: IpAddr) -> bool {
        let kind = match mode {
            LinkMode::Delay { .. } => self.support.netem,
            LinkMode::Bandwidth { bytes_per_sec } => self.support.tbf && *bytes_per_sec > 0,
            _ => false,
        };
        kind && self.support.classes
            && (1..=MAX_PEER).contains(&to)
            && self.routes.get(&peer).is_some_and(|r| r.root_free)
    }
}

/// The shell line that finds out what a host can shape, printing `tc-classes`, `tc-netem`,
/// `tc-tbf` for what works and `tc-route ADDR DEV MTU ROOT_HANDLE` for each of `peers`. The
/// qdiscs are tried on a veth pair made for the purpose and removed at once, so no live
/// interface is touched. Always succeeds.
pub fn probe_line(peers: &[IpAddr]) -> String {
    let peers: Vec<String> = peers.iter().map(IpAddr::to_string).collect();
    format!(
        "p=rdtc$$; \
         if command -v tc >/dev/null && ip link add $p type veth peer name ${{p}}p 2>/dev/null; then \
         if tc qdisc add dev $p root handle 1: htb 2>/dev/null \
         && tc class add dev $p parent 1: classid 1:1 htb rate 10gbit quantum 1514 2>/dev/null \
         && tc filter add dev $p parent 1: protocol ip prio 1 u32 match ip dst 192.0.2.1/32 flowid 1:1 2>/dev/null; then \
         echo tc-classes; \
         if tc qdisc add dev $p parent 1:1 handle 10: netem delay 1ms 2>/dev/null; then \
         echo tc-netem; tc qdisc del dev $p parent 1:1 handle 10: 2>/dev/null; fi; \
         if tc qdisc add dev $p parent 1:1 handle 11: tbf rate 1mbit burst 32kb latency 1s 2>/dev/null; then \
         echo tc-tbf; fi; \
         fi; \
         ip link del $p 2>/dev/null; \
         fi; \
         for a in {peers}; do \
         d=\"$(ip -o route get $a 2>/dev/null | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')\"; \
         if [ -n \"$d\" ]; then echo \"tc-route $a $d $(cat /sys/class/net/$d/mtu 2>/dev/null || echo 0) \
         $(tc qdisc show dev $d root 2>/dev/null | head -n1 | cut -d' ' -f3)\"; fi; \
         done; true",
        peers = peers.join(" ")
    )
}

/// The class, filter priority and leaf handle of the link to node `to`.
fn ids(to: NodeId) -> (String, u64, String) {
    (format!("{ROOT}:{to:x}"), to, format!("{:x}:", 0x5300 + to))
}

/// The shell line that removes the shaping of the link to node `to` (none there is no error).
pub fn clear_line(to: NodeId, route: &Route) -> String {
    let (class, prio, _) = ids(to);
    let dev = &route.dev;
    format!(
        "{{ tc filter del dev {dev} parent {ROOT}: prio {prio} 2>/dev/null; \
         tc class del dev {dev} classid {class} 2>/dev/null; true; }}"
    )
}

/// The shell line that shapes the link to node `to` at `peer` through `route` in `mode`
/// (replacing any shaping it had); `None` for a mode tc does not make.
pub fn set_line(to: NodeId, peer: IpAddr, route: &Route, mode: &LinkMode) -> Option<String> {
    let leaf = match *mode {
        LinkMode::Delay { latency, jitter } => {
            let (l, j) = (latency.as_micros(), jitter.as_micros());
            if j > 0 {
                format!("netem delay {l}us {j}us limit 100000")
            } else {
                format!("netem delay {l}us limit 100000")
            }
        }
        LinkMode::Bandwidth { bytes_per_sec } if bytes_per_sec > 0 => {
            // A burst must hold a whole packet; a twentieth of a second of the rate otherwise,
            // as the link proxies allow. Up to a second of the rate may queue.
            let burst = (bytes_per_sec / 20).max(2 * u64::from(route.mtu)).max(3000);
            let limit = bytes_per_sec.max(4 * burst);
            format!(
                "tbf rate {}bit burst {burst} limit {limit}",
                bytes_per_sec * 8
            )
        }
        _ => return None,
    };
    let (class, prio, handle) = ids(to);
    let dev = &route.dev;
    let m = match peer {
        IpAddr::V4(a) => format!("protocol ip prio {prio} u32 match ip dst {a}/32"),
        IpAddr::V6(a) => format!("protocol ipv6 prio {prio} u32 match ip6 dst {a}/128"),
    };
    Some(format!(
        "{{ tc qdisc show dev {dev} root | grep -q '^qdisc htb {ROOT}: ' \
         || tc qdisc replace dev {dev} root handle {ROOT}: htb; }} && {clear} && \
         tc class add dev {dev} parent {ROOT}: classid {class} htb rate 10gbit quantum 1514 && \
         tc qdisc add dev {dev} parent {class} handle {handle} {leaf} && \
         tc filter add dev {dev} parent {ROOT}: {m} flowid {class}",
        clear = clear_line(to, route)
    ))
}

/// The shell line that removes raftdrill's root qdisc from every interface of a host (with
/// every class under it) and any probe pair a killed probe left. Always succeeds.
pub fn clean_line() -> String {
    format!(
        "if command -v tc >/dev/null; then for d in $(ls /sys/class/net); do \
         if tc qdisc show dev \"$d\" root 2>/dev/null | grep -q '^qdisc htb {ROOT}: '; then \
         tc qdisc del dev \"$d\" root; fi; \
         case \"$d\" in rdtc*) ip link del \"$d\" 2>/dev/null;; esac; \
         done; fi; true"
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn route(handle: &str) -> String {
        format!("tc-route 198.18.0.3 veth0 1500 {handle}")
    }

    #[test]
    fn the_probe_is_read_and_a_foreign_root_or_loopback_is_left_alone() {
        let p = Probe::parse(&format!(
            "tc-classes\ntc-tbf\n{}\ntc-route 198.18.0.4 eth1 9000 8001:\ntc-route ::1 lo 65536 0:\n",
            route("0:")
        ));
        assert_eq!(
            p.support,
            TcSupport {
                classes: true,
                netem: false,
                tbf: true
            }
        );
        let a3: IpAddr = "198.18.0.3".parse().unwrap();
        let a4: IpAddr = "198.18.0.4".parse().unwrap();
        let bw = LinkMode::Bandwidth {
            bytes_per_sec: 10_000,
        };
        let delay = LinkMode::Delay {
            latency: Duration::from_millis(5),
            jitter: Duration::ZERO,
        };
        assert!(p.can(&bw, 3, a3));
        // No netem here; someone else's root on eth1; a cap of 0 is a blackhole's.
        assert!(!p.can(&delay, 3, a3));
        assert!(!p.can(&bw, 4, a4));
        assert!(!p.can(&LinkMode::Bandwidth { bytes_per_sec: 0 }, 3, a3));
        assert!(!p.can(&LinkMode::Reset, 3, a3));
        assert!(!p.can(&bw, 3, "::1".parse().unwrap()));
        // raftdrill's own root (left by a run) counts as free.
        assert!(Probe::parse(&format!("tc-classes\ntc-tbf\n{}", route("5244:"))).can(&bw, 3, a3));
        // Without classes no link of its own can be shaped.
        assert!(!Probe::parse(&format!("tc-tbf\n{}", route("0:"))).can(&bw, 3, a3));
    }

    #[test]
    fn set_lines_put_a_leaf_under_a_class_of_the_peer() {
        let r = Route {
            dev: "veth0".into(),
            mtu: 1500,
            root_free: true,
        };
        let peer: IpAddr = "198.18.0.3".parse().unwrap();
        let bw = set_line(
            3,
            peer,
            &r,
            &LinkMode::Bandwidth {
                bytes_per_sec: 100_000,
            },
        )
        .unwrap();
        assert!(
            bw.contains("tc qdisc replace dev veth0 root handle 5244: htb"),
            "{bw}"
        );
        assert!(bw.contains("classid 5244:3 htb"), "{bw}");
        assert!(
            bw.contains("parent 5244:3 handle 5303: tbf rate 800000bit burst 5000 limit 100000"),
            "{bw}"
        );
        assert!(
            bw.contains("prio 3 u32 match ip dst 198.18.0.3/32 flowid 5244:3"),
            "{bw}"
        );
        // A slow cap still bursts two packets.
        let slow = set_line(
            3,
            peer,
            &r,
            &LinkMode::Bandwidth {
                bytes_per_sec: 1000,
            },
        )
        .unwrap();
        assert!(slow.contains("burst 3000 limit 12000"), "{slow}");
        let d = set_line(
            12,
            "fd00::2".parse().unwrap(),
            &r,
            &LinkMode::Delay {
                latency: Duration::from_millis(50),
                jitter: Duration::from_millis(5),
            },
        )
        .unwrap();
        assert!(d.contains("classid 5244:c htb"), "{d}");
        assert!(d.contains("handle 530c: netem delay 50000us 5000us"), "{d}");
        assert!(
            d.contains("protocol ipv6 prio 12 u32 match ip6 dst fd00::2/128"),
            "{d}"
        );
        assert!(set_line(3, peer, &r, &LinkMode::Reset).is_none());
        assert!(clear_line(3, &r).contains("tc class del dev veth0 classid 5244:3"));
    }
}
