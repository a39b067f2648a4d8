//! Readying and cleaning hosts: the checks before anything starts (SSH, clock, ports,
//! iptables, the binary), the binary's copy, and the clean-up `raftdrill hosts heal` shares.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use target_cluster::typ::NodeId;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::{ALIVE, CHAIN, COPY, HostOptions};
use crate::hosts::HostSpec;
use crate::hosts::shaping::{self, Probe};
use crate::hosts::ssh::{Ssh, quote};
use crate::hosts::{CALL, HostNode, HostsError};

/// Stops the node of `spec` by its pid file (TERM, KILL after `grace`) and removes
/// raftdrill's iptables chain and tc root qdiscs: what `raftdrill hosts heal` does for a host a crashed controller left.
pub async fn clean_host(ssh: Ssh, spec: HostSpec, grace: Duration) -> Result<(), HostsError> {
    clean_node(&ssh, &spec, grace).await?;
    let line = format!(
        "if command -v iptables >/dev/null && iptables -w -L {CHAIN} -n >/dev/null 2>&1; then \
         iptables -w -D INPUT -j {CHAIN} 2>/dev/null; iptables -w -F {CHAIN} && iptables -w -X {CHAIN}; fi; {tc}; {cpu}",
        tc = shaping::clean_line(),
        cpu =
            crate::placement::cgroup::lift_line(&crate::placement::cgroup::host_group(&spec.name)),
    );
    ssh.run(&line, CALL).await?;
    Ok(())
}

/// Stops the node of `spec` by its pid file: TERM (and CONT, should it be paused), KILL after
/// `grace`; then any node, load generator, link proxy or etcd member of this `data_dir` whose
/// pid file is gone.
pub(super) async fn clean_node(
    ssh: &Ssh,
    spec: &HostSpec,
    grace: Duration,
) -> Result<(), HostsError> {
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
pub(super) async fn check_host(
    id: NodeId,
    spec: HostSpec,
    opts: &HostOptions,
    local_sum: &str,
    proxy_ports: &[u16],
    probe: Option<Vec<IpAddr>>,
    socket: PathBuf,
) -> Result<HostNode, HostsError> {
    let mut ssh = Ssh::new(&spec).map_err(|detail| HostsError::Unfit {
        host: spec.name.clone(),
        detail,
    })?;
    ssh.open_master(socket, CALL).await?;
    let ready = ready_host(id, spec, opts, local_sum, proxy_ports, probe, ssh.clone()).await;
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
    probe: Option<Vec<IpAddr>>,
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
    let facts = host_facts(&ssh, &dir, opts, proxy_ports, probe.as_deref()).await?;
    let lines: Vec<&str> = facts.lines().map(str::trim).collect();
    let etcd = opts.store.kind() == crate::store::TargetKind::Etcd;
    if let Some(why) = unfit_because(&lines, &spec, etcd, opts.clocks) {
        return Err(unfit(why));
    }
    // etcd nodes need no raftdrill (link proxies, its only use there, are refused for etcd).
    if !etcd && !lines.contains(&local_sum) {
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
        shaping: probe.map(|_| Probe::parse(&facts)),
        faketime: lines
            .iter()
            .find_map(|l| l.strip_prefix("faketime "))
            .map(str::to_string),
    })
}

/// What a host says of itself in one SSH call: its folder made (`ok`), a node of an earlier
/// run still running, busy ports, iptables and etcd on its PATH, the sum of its raftdrill,
/// and (with `probe`) what tc can do towards those peers.
async fn host_facts(
    ssh: &Ssh,
    dir: &str,
    opts: &HostOptions,
    proxy_ports: &[u16],
    probe: Option<&[IpAddr]>,
) -> Result<String, HostsError> {
    let ports = std::iter::once(opts.port)
        .chain((opts.store.ports_per_node() > 1).then(|| opts.port.saturating_add(1)))
        .chain(proxy_ports.iter().copied())
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let line = format!(
        "mkdir -p {dir} && echo ok; \
         if [ -s {dir}/node.pid ] && kill -0 \"$(cat {dir}/node.pid)\" 2>/dev/null; then echo node-running; fi; \
         for p in {ports}; do if ss -Htln \"sport = :$p\" | grep -q .; then echo port-busy $p; fi; done; \
         command -v iptables >/dev/null && echo iptables; \
         command -v etcd >/dev/null && echo etcd; \
         sha256sum {dir}/raftdrill 2>/dev/null | cut -d' ' -f1; {faketime}{probe}",
        faketime = if opts.clocks {
            faketime_probe()
        } else {
            String::new()
        },
        probe = probe.map(shaping::probe_line).unwrap_or_default(),
    );
    Ok(ssh.run(&line, CALL).await?.text())
}

/// A shell line that prints `faketime <path>` for the first libfaketime the host has.
fn faketime_probe() -> String {
    let paths: Vec<String> = crate::placement::clock::LIBRARIES
        .iter()
        .map(|p| quote(p))
        .collect();
    format!(
        "for f in {}; do if [ -f \"$f\" ]; then echo \"faketime $f\"; break; fi; done; ",
        paths.join(" ")
    )
}

/// Why a host whose facts are `lines` cannot run a node (of etcd, when `etcd`; with
/// libfaketime, when `clocks`).
fn unfit_because(lines: &[&str], spec: &HostSpec, etcd: bool, clocks: bool) -> Option<String> {
    if !lines.contains(&"ok") {
        return Some(format!("cannot create {}", spec.data_dir.display()));
    }
    if lines.contains(&"node-running") {
        return Some(format!(
            "a node of an earlier run still runs from {} (raftdrill hosts heal)",
            spec.data_dir.display()
        ));
    }
    if let Some(busy) = lines.iter().find_map(|l| l.strip_prefix("port-busy ")) {
        return Some(format!("port {busy} is in use"));
    }
    if !lines.contains(&"iptables") {
        return Some("iptables is missing (install Debian's iptables): link faults need it".into());
    }
    if etcd && !lines.contains(&"etcd") {
        return Some("etcd is not on the host's PATH (Debian: etcd-server)".into());
    }
    if clocks && !lines.iter().any(|l| l.starts_with("faketime ")) {
        return Some(
            "libfaketime is missing (install Debian's faketime): clock faults need it".into(),
        );
    }
    None
}

/// Copies `exe` to `data_dir/raftdrill` on the host (through a temporary name, so a binary
/// in use is replaced, not overwritten).
pub(in crate::hosts) async fn install_binary(
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
pub(in crate::hosts) async fn sha256(path: &Path) -> Result<String, HostsError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_without_libfaketime_is_unfit_only_for_clock_faults() {
        let spec = HostSpec {
            name: "h1".into(),
            addr: "10.0.0.1".into(),
            ssh: "root@10.0.0.1".into(),
            ssh_key: None,
            known_hosts: None,
            data_dir: "/srv/rd".into(),
            node: None,
        };
        let fit = ["ok", "iptables", "etcd"];
        assert_eq!(unfit_because(&fit, &spec, false, false), None);
        let why = unfit_because(&fit, &spec, false, true).unwrap();
        assert!(why.starts_with("libfaketime is missing"), "{why}");
        let with = [
            "ok",
            "iptables",
            "faketime /usr/lib/faketime/libfaketime.so.1",
        ];
        assert_eq!(unfit_because(&with, &spec, false, true), None);
        // The probe prints that line for the first library it finds.
        assert!(faketime_probe().contains("echo \"faketime $f\"; break"));
    }
}
