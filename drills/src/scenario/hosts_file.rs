//! The hosts file (`--hosts FILE`): one `[[host]]` table per machine.
//!
//! ```toml
//! [[host]]
//! name = "h1"
//! addr = "198.18.0.11"          # where nodes listen and peers and clients connect
//! ssh = "root@198.18.0.11:22"   # user@host[:port]
//! ssh_key = "/path/id_ed25519"  # optional; else ssh's own defaults
//! known_hosts = "/path/known"   # optional; else ssh's own known_hosts
//! data_dir = "/var/lib/raftdrill"
//! node = 1                      # optional; else nodes are placed in order
//! ```

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// A short name, unique in the file.
    pub name: String,
    /// The address nodes listen on and are reached at.
    pub addr: String,
    /// `user@host[:port]`.
    pub ssh: String,
    /// The private key to log in with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
    /// The known_hosts file that holds this host's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// Where the node keeps its binary, data, pid file, log and token on the host.
    pub data_dir: PathBuf,
    /// The node this host runs; without it, hosts take nodes 1, 2, ... in file order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
}

/// The parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsFile {
    /// The hosts, in file order.
    #[serde(default)]
    pub host: Vec<HostSpec>,
}

/// A hosts file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostsFileError {
    /// Unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or fields the format does not have.
    #[error("{path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// Valid TOML that describes no usable set of hosts.
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// `user`, `host` and `port` of an `ssh` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The login name.
    pub user: String,
    /// The host name or address.
    pub host: String,
    /// The port (22 by default).
    pub port: u16,
}

impl HostSpec {
    /// The parsed `ssh` field.
    pub fn ssh_target(&self) -> Result<SshTarget, String> {
        let (user, rest) = self
            .ssh
            .split_once('@')
            .ok_or_else(|| format!("host {}: ssh must be user@host[:port]", self.name))?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("host {}: bad ssh port {p:?}", self.name))?,
            ),
            None => (rest, 22),
        };
        if user.is_empty() || host.is_empty() {
            return Err(format!("host {}: ssh must be user@host[:port]", self.name));
        }
        Ok(SshTarget {
            user: user.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

impl HostsFile {
    /// Reads and checks a hosts file.
    pub fn load(path: &Path) -> Result<Self, HostsFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| HostsFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: HostsFile = toml::from_str(&text).map_err(|e| HostsFileError::Parse {
            path: path.to_path_buf(),
            detail: e.message().to_string(),
        })?;
        file.check().map_err(|detail| HostsFileError::Invalid {
            path: path.to_path_buf(),
            detail,
        })?;
        Ok(file)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("hosts serialize")
    }

    /// Checks the hosts: names unique, addresses IPs, `ssh` well formed, `data_dir` absolute,
    /// node placement consistent.
    pub fn check(&self) -> Result<(), String> {
        if self.host.is_empty() {
            return Err("no [[host]] tables".into());
        }
        let mut names = BTreeSet::new();
        for h in &self.host {
            if !names.insert(&h.name) {
                return Err(format!("host name {:?} appears twice", h.name));
            }
            h.addr
                .parse::<IpAddr>()
                .map_err(|_| format!("host {}: addr {:?} is not an IP address", h.name, h.addr))?;
            h.ssh_target()?;
            if !h.data_dir.is_absolute() {
                return Err(format!(
                    "host {}: data_dir must be an absolute path",
                    h.name
                ));
            }
        }
        self.placement().map(|_| ())
    }

    /// The first of `names` that names no host here.
    pub fn unknown<'a>(&self, names: &'a [String]) -> Option<&'a String> {
        names
            .iter()
            .find(|n| !self.host.iter().any(|h| &h.name == *n))
    }

    /// The hosts split in two: those that run nodes (in file order) and those named in
    /// `load_from` (in its order), which run the load. A load host placed on a node is an
    /// error, as is a name no host has.
    pub fn split(&self, load_from: &[String]) -> Result<(HostsFile, Vec<HostSpec>), String> {
        if let Some(n) = self.unknown(load_from) {
            return Err(format!(
                "[load] from names host {n:?}, which the hosts file lacks"
            ));
        }
        let mut load = Vec::new();
        for name in load_from {
            let h = self.host.iter().find(|h| &h.name == name).expect("known");
            if let Some(node) = h.node {
                return Err(format!(
                    "host {name} runs the load ([load] from) and node {node} (node = {node})"
                ));
            }
            load.push(h.clone());
        }
        let nodes = self
            .host
            .iter()
            .filter(|h| !load_from.contains(&h.name))
            .cloned()
            .collect();
        Ok((HostsFile { host: nodes }, load))
    }

    /// Which host runs which node: `(node id, host)` in id order. Hosts with `node = N` take
    /// node N; the others take the lowest free ids in file order.
    pub fn placement(&self) -> Result<Vec<(u64, &HostSpec)>, String> {
        let mut taken = BTreeSet::new();
        for h in &self.host {
            if let Some(n) = h.node {
                if n == 0 {
                    return Err(format!("host {}: node ids start at 1", h.name));
                }
                if !taken.insert(n) {
                    return Err(format!("node {n} is placed on two hosts"));
                }
            }
        }
        let mut next = 1;
        let mut placed = Vec::new();
        for h in &self.host {
            let id = match h.node {
                Some(n) => n,
                None => {
                    while taken.contains(&next) {
                        next += 1;
                    }
                    taken.insert(next);
                    next
                }
            };
            placed.push((id, h));
        }
        placed.sort_by_key(|(id, _)| *id);
        Ok(placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostsFile, String> {
        let f: HostsFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        f.check()?;
        Ok(f)
    }

    const TWO: &str = r#"
[[host]]
name = "a"
addr = "198.18.0.11"
ssh = "root@198.18.0.11"
data_dir = "/srv/rd"
node = 2

[[host]]
name = "b"
addr = "198.18.0.12"
ssh = "ops@b.example:2222"
data_dir = "/srv/rd"
"#;

    #[test]
    fn nodes_are_placed_by_node_then_in_order() {
        let f = parse(TWO).unwrap();
        let p: Vec<(u64, &str)> = f
            .placement()
            .unwrap()
            .into_iter()
            .map(|(id, h)| (id, h.name.as_str()))
            .collect();
        assert_eq!(p, [(1, "b"), (2, "a")]);
        let t = f.host[1].ssh_target().unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("ops", "b.example", 2222)
        );
        assert_eq!(f.host[0].ssh_target().unwrap().port, 22);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let typo = TWO.replace(
            "data_dir = \"/srv/rd\"\nnode",
            "datadir = \"/srv/rd\"\nnode",
        );
        assert!(parse(&typo).unwrap_err().contains("datadir"));
        let dup = TWO.replace("name = \"b\"", "name = \"a\"");
        assert!(parse(&dup).unwrap_err().contains("twice"));
        let addr = TWO.replace("addr = \"198.18.0.12\"", "addr = \"b.example\"");
        assert!(parse(&addr).unwrap_err().contains("not an IP"));
        let ssh = TWO.replace("ops@b.example:2222", "b.example");
        assert!(parse(&ssh).unwrap_err().contains("user@host"));
        let both = TWO.replace(
            "ssh = \"ops@b.example:2222\"",
            "ssh = \"ops@b.example:2222\"\nnode = 2",
        );
        assert!(parse(&both).unwrap_err().contains("two hosts"));
        let rel = TWO.replace("/srv/rd", "srv/rd");
        assert!(parse(&rel).unwrap_err().contains("absolute"));
        assert!(parse("").unwrap_err().contains("no [[host]]"));
    }

    #[test]
    fn the_file_round_trips() {
        let f = parse(TWO).unwrap();
        assert_eq!(parse(&f.to_toml()).unwrap(), f);
    }
}
