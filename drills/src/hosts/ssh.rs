//! Commands on a host through the system's OpenSSH client.
//!
//! Each call spawns `ssh` in batch mode (no prompts), with the host's key and known_hosts file
//! when the hosts file names them, a connect timeout, and keep-alives that notice a dead host;
//! the whole call is also bounded by the caller's deadline and the `ssh` process is killed if
//! it runs over. No agent protocol of raftdrill's own runs on the host: a shell, coreutils,
//! `kill`, `setsid` and `iptables`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{HostSpec, SshTarget};

/// A command on a host that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    /// `ssh` could not be started here.
    #[error("cannot run ssh (install Debian's openssh-client): {0}")]
    NoClient(String),
    /// The host could not be reached or refused the login (ssh's exit code 255).
    #[error("host {host}: ssh failed: {detail}")]
    Connect {
        /// The host's name.
        host: String,
        /// ssh's message.
        detail: String,
    },
    /// The command ran and failed.
    #[error("host {host}: `{cmd}` exited {code}: {stderr}")]
    Failed {
        /// The host's name.
        host: String,
        /// The remote command.
        cmd: String,
        /// Its exit code.
        code: i32,
        /// Its stderr.
        stderr: String,
    },
    /// The call ran over its deadline.
    #[error("host {host}: `{cmd}` did not finish within {limit:?}")]
    Timeout {
        /// The host's name.
        host: String,
        /// The remote command.
        cmd: String,
        /// The deadline.
        limit: Duration,
    },
}

/// How to reach one host.
#[derive(Debug, Clone)]
pub struct Ssh {
    name: String,
    target: SshTarget,
    key: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    /// The control socket of a master connection that later calls share.
    control: Option<PathBuf>,
}

/// How long a master connection outlives its last use, so one left by a crashed controller
/// goes away by itself.
const PERSIST_S: u32 = 60;

/// What a successful command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Its stdout.
    pub stdout: Vec<u8>,
}

impl Output {
    /// stdout as text, trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }
}

impl Ssh {
    /// The SSH access of `spec`.
    pub fn new(spec: &HostSpec) -> Result<Self, String> {
        Ok(Self {
            name: spec.name.clone(),
            target: spec.ssh_target()?,
            key: spec.ssh_key.clone(),
            known_hosts: spec.known_hosts.clone(),
            control: None,
        })
    }

    /// Opens a master connection whose socket is `socket`; every later call (of this value
    /// and its clones) goes through it, without a handshake of its own: a few milliseconds
    /// instead of a few hundred, which keeps a fault's moment close to its schedule.
    pub async fn open_master(&mut self, socket: PathBuf, limit: Duration) -> Result<(), SshError> {
        let mut c = self.base();
        c.arg("-o")
            .arg(format!("ControlPath={}", socket.display()))
            .args(["-o", "ControlMaster=yes"])
            .arg("-o")
            .arg(format!("ControlPersist={PERSIST_S}"))
            .args(["-f", "-N"])
            .arg(&self.target.host);
        // `-f` forks the master into the background once logged in; it must hold none of our
        // pipes, or a read of its output would never end.
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = c.spawn().map_err(|e| SshError::NoClient(e.to_string()))?;
        let out = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| SshError::Timeout {
                host: self.name.clone(),
                cmd: "open the master connection".into(),
                limit,
            })?
            .map_err(|e| SshError::NoClient(e.to_string()))?;
        if !out.status.success() {
            return Err(SshError::Connect {
                host: self.name.clone(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        self.control = Some(socket);
        Ok(())
    }

    /// Closes the master connection, if one is open. Blocking, but quick: it only asks the
    /// master over its local socket to exit (also from `Drop`, where nothing can be awaited).
    pub fn close_master(&mut self) {
        let Some(socket) = self.control.take() else {
            return;
        };
        let mut c = std::process::Command::new("ssh");
        c.arg("-o")
            .arg(format!("ControlPath={}", socket.display()))
            .args(["-O", "exit", "-l", &self.target.user])
            .args(["-p", &self.target.port.to_string()])
            .arg(&self.target.host)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ssh` with the options every call shares, up to the destination.
    fn base(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ssh");
        c.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
            .args(["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"])
            .args(["-o", "LogLevel=ERROR", "-T"])
            .args(["-p", &self.target.port.to_string()])
            .args(["-l", &self.target.user]);
        if let Some(key) = &self.key {
            c.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
        }
        if let Some(known) = &self.known_hosts {
            c.arg("-o")
                .arg(format!("UserKnownHostsFile={}", known.display()))
                .args(["-o", "StrictHostKeyChecking=yes"]);
        }
        c
    }

    fn command(&self, remote: &str) -> tokio::process::Command {
        let mut c = self.base();
        if let Some(socket) = &self.control {
            c.arg("-o")
                .arg(format!("ControlPath={}", socket.display()))
                .args(["-o", "ControlMaster=no"]);
        }
        c.arg(&self.target.host).arg("--").arg(remote);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Starts `remote` with its stdin and stdout piped, for a conversation; the `ssh` process
    /// is killed when the child is dropped.
    pub fn spawn(&self, remote: &str) -> Result<tokio::process::Child, SshError> {
        let mut cmd = self.command(remote);
        cmd.stdin(Stdio::piped()).stderr(Stdio::null());
        cmd.spawn().map_err(|e| SshError::NoClient(e.to_string()))
    }

    /// Starts `remote` with stdin, stdout and stderr piped (for a long-running command whose
    /// errors the caller reports); the `ssh` process is killed when the child is dropped.
    pub fn spawn_piped(&self, remote: &str) -> Result<tokio::process::Child, SshError> {
        let mut cmd = self.command(remote);
        cmd.stdin(Stdio::piped());
        cmd.spawn().map_err(|e| SshError::NoClient(e.to_string()))
    }

    /// Runs `remote` (a shell command line) within `limit`.
    pub async fn run(&self, remote: &str, limit: Duration) -> Result<Output, SshError> {
        self.run_with_input(remote, None, limit).await
    }

    /// Runs `remote` with `input` on its stdin, within `limit`.
    pub async fn run_with_input(
        &self,
        remote: &str,
        input: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Output, SshError> {
        let mut cmd = self.command(remote);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| SshError::NoClient(e.to_string()))?;
        let stdin = child.stdin.take();
        let work = async move {
            if let (Some(mut w), Some(bytes)) = (stdin, input) {
                // A remote command that exits early closes the pipe; its exit status says why.
                let _ = w.write_all(bytes).await;
                let _ = w.shutdown().await;
            }
            child.wait_with_output().await
        };
        let out = match tokio::time::timeout(limit, work).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(SshError::NoClient(e.to_string())),
            Err(_) => {
                return Err(SshError::Timeout {
                    host: self.name.clone(),
                    cmd: short(remote),
                    limit,
                });
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        match out.status.code() {
            Some(0) => Ok(Output { stdout: out.stdout }),
            Some(255) | None => Err(SshError::Connect {
                host: self.name.clone(),
                detail: stderr,
            }),
            Some(code) => Err(SshError::Failed {
                host: self.name.clone(),
                cmd: short(remote),
                code,
                stderr,
            }),
        }
    }
}

/// A command line shortened for an error message.
fn short(cmd: &str) -> String {
    const MAX: usize = 120;
    if cmd.len() <= MAX {
        return cmd.to_string();
    }
    let mut end = MAX;
    while !cmd.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &cmd[..end])
}

/// `s` quoted for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,@+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_words_whole() {
        assert_eq!(quote("/srv/rd/node.log"), "/srv/rd/node.log");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote(""), "''");
    }
}
