//! Test hosts on this machine: network namespaces on a bridge, each with a real OpenSSH sshd,
//! so the drills across hosts can be run and tested without other machines.
//!
//! `up` makes namespace `rdnet-hI` for host I, joined to the bridge `rdnet0` by a veth pair,
//! with address 198.18.0.(10+I)/24 from the benchmarking range (RFC 2544); the bridge holds
//! 198.18.0.1, the controller's side. No namespace gets a default route, so nothing run in one
//! can reach an address outside the testnet. Every host runs its own sshd with a per-run host
//! key, accepting one per-run client key. `down` removes all of it: every process in the
//! namespaces, the namespaces (and their iptables rules with them), the bridge, the keys.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{HostSpec, HostsFile};

/// The bridge on the controller's side.
pub const BRIDGE: &str = "rdnet0";
/// Prefix of the namespaces.
pub const NS_PREFIX: &str = "rdnet-h";
/// The controller's address on the bridge.
pub const CONTROLLER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The most hosts one testnet has.
pub const MAX_HOSTS: usize = 32;

/// Setting up or removing the testnet failed.
#[derive(Debug, thiserror::Error)]
pub enum TestnetError {
    /// A tool it needs is missing.
    #[error("{tool} is missing: install Debian's {package} (apt-get install -y {package})")]
    Missing {
        /// The program.
        tool: &'static str,
        /// The package that has it.
        package: &'static str,
    },
    /// The benchmarking range is in use by something else.
    #[error("198.18.0.0/15 is already routed here ({0}); refusing to shadow it")]
    RangeInUse(String),
    /// A testnet is already up.
    #[error("a testnet is already up (bridge {BRIDGE}); run `raftdrill testnet down` first")]
    AlreadyUp,
    /// A bad host count.
    #[error("--hosts must be 1 to {MAX_HOSTS}")]
    HostCount,
    /// A command failed.
    #[error("`{cmd}` failed: {detail}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its stderr or the spawn error.
        detail: String,
    },
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An sshd did not come up.
    #[error(
        "sshd of host {host} did not listen within {0:?}; see {log}",
        Duration::from_secs(10)
    )]
    SshdDown {
        /// The host's name.
        host: String,
        /// Its sshd log.
        log: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TestnetError + '_ {
    move |source| TestnetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a command, returning its stdout; a non-zero exit is an error with its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, TestnetError> {
    let cmd = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| TestnetError::Command {
            cmd: cmd.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(TestnetError::Command { cmd, detail });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The address of host `i` (1-based).
pub fn host_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 + i as u8)
}

fn ns_name(i: usize) -> String {
    format!("{NS_PREFIX}{i}")
}

/// Whether `addr` lies in 198.18.0.0/15.
fn in_bench_range(addr: Ipv4Addr) -> bool {
    let o = addr.octets();
    o[0] == 198 && (o[1] & 0xfe) == 18
}

/// Finds a program on PATH or in the sbin folders (root's tools live there).
fn find(tool: &'static str, package: &'static str) -> Result<PathBuf, TestnetError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or(TestnetError::Missing { tool, package })
}

/// Refuses when any address or route of this machine overlaps 198.18.0.0/15.
fn check_range_free() -> Result<(), TestnetError> {
    if run("ip", &["link", "show", BRIDGE]).is_ok()
        || !veths().is_empty()
        || !namespaces().is_empty()
    {
        return Err(TestnetError::AlreadyUp);
    }
    let routes = run("ip", &["-4", "route", "show", "table", "all"])?;
    let addrs = run("ip", &["-4", "-o", "addr", "show"])?;
    for line in routes.lines().chain(addrs.lines()) {
        let clash = line
            .split_whitespace()
            .filter_map(|w| w.split('/').next()?.parse::<Ipv4Addr>().ok())
            .find(|a| in_bench_range(*a));
        if clash.is_some() {
            return Err(TestnetError::RangeInUse(line.trim().to_string()));
        }
    }
    Ok(())
}

/// Brings up `n` hosts, with keys and configs under `dir`, and writes the hosts file to `out`.
/// On failure, whatever was made is removed again.
pub fn up(n: usize, dir: &Path, out: &Path) -> Result<HostsFile, TestnetError> {
    if n == 0 || n > MAX_HOSTS {
        return Err(TestnetError::HostCount);
    }
    find("ip", "iproute2")?;
    let sshd = find("sshd", "openssh-server")?;
    find("ssh", "openssh-client")?;
    find("ssh-keygen", "openssh-client")?;
    check_range_free()?;
    let made = build(n, dir, &sshd, out);
    if made.is_err() {
        let _ = down(dir);
    }
    made
}

fn build(n: usize, dir: &Path, sshd: &Path, out: &Path) -> Result<HostsFile, TestnetError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // sshd's privilege separation folder.
    std::fs::create_dir_all("/run/sshd").map_err(io(Path::new("/run/sshd")))?;
    let client_key = dir.join("id_ed25519");
    keygen(&client_key)?;
    let pubkey = client_key.with_extension("pub");
    let authorized = dir.join("authorized_keys");
    std::fs::copy(&pubkey, &authorized).map_err(io(&authorized))?;

    run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{CONTROLLER}/24"), "dev", BRIDGE],
    )?;
    run("ip", &["link", "set", BRIDGE, "up"])?;

    let mut known_hosts = String::new();
    let mut hosts = Vec::new();
    for i in 1..=n {
        make_namespace(i)?;
        let (host, known) = start_sshd(i, dir, sshd, &authorized, &client_key)?;
        known_hosts.push_str(&known);
        hosts.push(host);
    }
    let known = dir.join("known_hosts");
    std::fs::write(&known, known_hosts).map_err(io(&known))?;
    for h in &mut hosts {
        h.known_hosts = Some(known.clone());
    }
    let file = HostsFile { host: hosts };
    let text = file.to_toml();
    std::fs::write(out, text).map_err(io(out))?;
    // Where `down` finds the hosts file to remove it too.
    let marker = dir.join("hosts-file");
    std::fs::write(&marker, out.display().to_string()).map_err(io(&marker))?;
    Ok(file)
}

/// Makes host `i`'s namespace, joined to the bridge by a veth pair whose inner end is its
/// `eth0` with the host's address.
fn make_namespace(i: usize) -> Result<(), TestnetError> {
    let ns = ns_name(i);
    let (veth, inner) = (format!("rdnet-v{i}"), format!("rdnet-p{i}"));
    let addr = host_addr(i);
    run("ip", &["netns", "add", &ns])?;
    run(
        "ip",
        &["link", "add", &veth, "type", "veth", "peer", "name", &inner],
    )?;
    run("ip", &["link", "set", &veth, "master", BRIDGE, "up"])?;
    run("ip", &["link", "set", &inner, "netns", &ns])?;
    run("ip", &["-n", &ns, "link", "set", &inner, "name", "eth0"])?;
    run(
        "ip",
        &[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ],
    )?;
    run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
    run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Starts host `i`'s sshd in its namespace with a host key of its own (under `dir`), accepting
/// the keys in `authorized`, and waits until it listens. Returns the host as the hosts file
/// names it (reached with `client_key`; its known hosts are set by the caller) and its line of
/// `known_hosts`.
fn start_sshd(
    i: usize,
    dir: &Path,
    sshd: &Path,
    authorized: &Path,
    client_key: &Path,
) -> Result<(HostSpec, String), TestnetError> {
    let ns = ns_name(i);
    let addr = host_addr(i);
    let name = format!("h{i}");
    let hdir = dir.join(&name);
    std::fs::create_dir_all(&hdir).map_err(io(&hdir))?;
    let host_key = hdir.join("ssh_host_ed25519_key");
    keygen(&host_key)?;
    let host_pub =
        std::fs::read_to_string(host_key.with_extension("pub")).map_err(io(&host_key))?;
    let mut words = host_pub.split_whitespace();
    let (kind, key) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let known = format!("{addr} {kind} {key}\n");

    let config = hdir.join("sshd_config");
    let pid = hdir.join("sshd.pid");
    // `SetEnv SHLVL=1`: bash sources ~/.bashrc for a command sshd starts only as a top-level
    // shell (SHLVL below 2 once it counts itself). These hosts share this machine's home, and
    // its rc files are not theirs to run: one that rehashes pyenv's shims under a lock costs
    // every SSH call a rehash, and a session killed mid-rehash (a teardown) left the lock
    // behind, making every later call wait 60 s for it.
    let text = format!(
        "ListenAddress {addr}:22\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n\
         MaxStartups 100:30:200\nMaxSessions 100\nSubsystem sftp internal-sftp\n\
         SetEnv SHLVL=1\n",
        host_key.display(),
        pid.display(),
        authorized.display()
    );
    std::fs::write(&config, text).map_err(io(&config))?;
    let log = hdir.join("sshd.log");
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            &sshd.display().to_string(),
            "-f",
            &config.display().to_string(),
            "-E",
            &log.display().to_string(),
        ],
    )?;
    wait_listening(addr, &name, &log)?;
    let data_dir = hdir.join("data");
    let host = HostSpec {
        name,
        addr: addr.to_string(),
        ssh: format!("root@{addr}:22"),
        ssh_key: Some(client_key.to_path_buf()),
        known_hosts: None,
        data_dir,
        node: None,
    };
    Ok((host, known))
}

fn keygen(path: &Path) -> Result<(), TestnetError> {
    let p = path.display().to_string();
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "raftdrill-testnet",
            "-f",
            &p,
        ],
    )
    .map(|_| ())
}

fn wait_listening(addr: Ipv4Addr, host: &str, log: &Path) -> Result<(), TestnetError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let sock = std::net::SocketAddr::from((addr, 22));
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(TestnetError::SshdDown {
        host: host.to_string(),
        log: log.display().to_string(),
    })
}

/// The testnet's namespaces that exist now.
pub fn namespaces() -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NS_PREFIX))
        .map(str::to_string)
        .collect()
}

/// The controller's ends of the testnet's veth pairs that exist now.
pub fn veths() -> Vec<String> {
    run("ip", &["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|name| name.trim().split('@').next().unwrap_or("").to_string())
        .filter(|name| name.starts_with("rdnet-v"))
        .collect()
}

/// Removes every part of a testnet that exists: processes in its namespaces (sshd, nodes),
/// the namespaces, the bridge, `dir` with its keys, and the hosts file `up` wrote. What was
/// removed is returned, one line each; nothing to remove is not an error.
pub fn down(dir: &Path) -> Result<Vec<String>, TestnetError> {
    let mut done = Vec::new();
    for ns in namespaces() {
        let pids = run("ip", &["netns", "pids", &ns]).unwrap_or_default();
        let pids: Vec<i32> = pids.lines().filter_map(|p| p.trim().parse().ok()).collect();
        for pid in &pids {
            // SAFETY: kill(2) with a pid read from the namespace's process list.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        wait_gone(&ns);
        if !pids.is_empty() {
            done.push(format!("killed {} process(es) in {ns}", pids.len()));
        }
        run("ip", &["netns", "del", &ns])?;
        done.push(format!("removed namespace {ns}"));
    }
    // A namespace's veth pair can outlive it for a while (the kernel frees namespaces lazily),
    // so the controller's ends are removed here, which removes the pairs.
    for veth in veths() {
        if run("ip", &["link", "del", &veth]).is_ok() {
            done.push(format!("removed link {veth}"));
        }
    }
    if run("ip", &["link", "show", BRIDGE]).is_ok() {
        run("ip", &["link", "del", BRIDGE])?;
        done.push(format!("removed bridge {BRIDGE}"));
    }
    let marker = dir.join("hosts-file");
    if let Ok(out) = std::fs::read_to_string(&marker) {
        let out = PathBuf::from(out.trim());
        if std::fs::remove_file(&out).is_ok() {
            done.push(format!("removed {}", out.display()));
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
        done.push(format!("removed {}", dir.display()));
    }
    Ok(done)
}

/// Waits (bounded) until no process is left in namespace `ns`.
fn wait_gone(ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if run("ip", &["netns", "pids", ns]).is_ok_and(|p| p.trim().is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmarking_range_is_198_18_slash_15() {
        assert!(in_bench_range(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(in_bench_range(Ipv4Addr::new(198, 19, 255, 254)));
        assert!(!in_bench_range(Ipv4Addr::new(198, 20, 0, 1)));
        assert!(!in_bench_range(Ipv4Addr::new(198, 17, 0, 1)));
        assert!(!in_bench_range(Ipv4Addr::new(192, 0, 2, 1)));
        assert!((1..=MAX_HOSTS).all(|i| in_bench_range(host_addr(i))));
    }
}
