//! Free ports on loopback for nodes that bind them later, in their own processes.

use std::net::TcpListener;

use super::PlacementError;

/// How many of the most recently handed-out ports this process never hands out again.
const RECENT_PORTS: usize = 4096;

/// Ports this process handed out lately, oldest first.
static HANDED_OUT: std::sync::Mutex<std::collections::VecDeque<u16>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// `n` distinct free ports chosen below the kernel's ephemeral range.
///
/// A node's port is chosen here but bound later by the node process. A port the OS handed out
/// for `:0` would be free in between for anyone else's `:0` bind or outgoing connection (a
/// link proxy, a client), which has been seen to take it. Ports below the ephemeral range are
/// never handed out that way. Within this process, a port is not handed out again while it is
/// among the last [`RECENT_PORTS`]: a bind check alone would hand another cluster the port of
/// a node that is starting or is down for a drill, and one of the two would then fail to
/// bind. Only another program choosing ports itself could still collide.
pub fn free_ports_below_ephemeral(n: usize) -> Result<Vec<u16>, PlacementError> {
    let mut recent = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let lowest_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let top = lowest_ephemeral.clamp(2048, 32768);
    let bottom = top.saturating_sub(12_000).max(1024);
    let span = u64::from(top - bottom);
    // A cheap seed: different for concurrent processes and for successive calls.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 20) ^ 0x9E37_79B9_7F4A_7C15;
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n * 200 {
        if ports.len() == n {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = bottom + (x % span) as u16;
        if ports.contains(&port) || recent.contains(&port) {
            continue;
        }
        // Hold each listener until all are chosen so the ports are distinct and free now.
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            ports.push(port);
        }
    }
    if ports.len() < n {
        let e = std::io::Error::other(format!("no {n} free ports in {bottom}..{top}"));
        return Err(PlacementError::NoPort(e));
    }
    for &port in &ports {
        if recent.len() == RECENT_PORTS {
            recent.pop_front();
        }
        recent.push_back(port);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2,000 ports from a span of 12,000 would repeat many times over if chosen by a bind check
    /// alone (the birthday bound expects over a hundred repeats); none may repeat.
    #[test]
    fn a_port_is_not_handed_out_twice_while_it_is_recent() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            for port in free_ports_below_ephemeral(20).unwrap() {
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }
}
