//! Load generators on hosts (`[load] from`): each host runs `raftdrill load --stream` over
//! SSH at its share of the load (sent as JSON on its stdin), and streams its operations and
//! seconds back (see [`loadgen::stream`]). Here: readying those hosts (SSH, clock offset, the binary) and
//! starting and fetching from their generators; the merge is `drill::remote_load`'s.
//!
//! On each host a generator lives in `data_dir/load/` (its `latency.hlog`). It stops when its
//! SSH session's stdin closes, so a controller that dies leaves no generator behind.

use std::path::{Path, PathBuf};

use futures_util::future::join_all;
use loadgen::LoadSpec;
use tokio::io::AsyncWriteExt;

use super::HostSpec;
use super::cluster::{clock_offset, install_binary, sha256};
use super::ssh::{Ssh, quote};
use super::{CALL, HostsError};

/// One load host, readied.
#[derive(Debug, Clone)]
pub struct LoadHost {
    /// The host as the file gives it.
    pub spec: HostSpec,
    /// SSH access (through its master connection).
    pub ssh: Ssh,
    /// The host clock less the controller's, seconds.
    pub clock_offset_s: f64,
    /// The round trip the offset was measured in, seconds.
    pub clock_rtt_s: f64,
}

impl LoadHost {
    /// The generator's folder on the host.
    pub fn load_dir(&self) -> PathBuf {
        self.spec.data_dir.join("load")
    }
}

/// The load hosts of a run. Dropping it closes their SSH master connections.
#[derive(Debug)]
pub struct LoadHosts {
    hosts: Vec<LoadHost>,
    _control: tempfile::TempDir,
}

impl LoadHosts {
    /// Checks and readies every host (SSH, clock, `data_dir`, the binary copied where it
    /// differs, the folder of an earlier run's generator emptied), before anything starts.
    pub async fn prepare(specs: &[HostSpec], exe: &Path) -> Result<Self, HostsError> {
        let sum = sha256(exe).await?;
        let control = tempfile::Builder::new()
            .prefix("rdld")
            .tempdir_in("/tmp")
            .map_err(|e| HostsError::Local(format!("a folder for SSH sockets: {e}")))?;
        let readies = specs.iter().enumerate().map(|(i, spec)| {
            let socket = control.path().join(i.to_string());
            let sum = sum.as_str();
            async move { ready(spec.clone(), exe, sum, socket).await }
        });
        let mut hosts = Vec::new();
        let mut failed = None;
        for r in join_all(readies).await {
            match r {
                Ok(h) => hosts.push(h),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            for h in &mut hosts {
                h.ssh.close_master();
            }
            return Err(e);
        }
        Ok(Self {
            hosts,
            _control: control,
        })
    }

    /// The hosts, in `[load] from` order.
    pub fn hosts(&self) -> &[LoadHost] {
        &self.hosts
    }

    /// Starts generator `g`: `raftdrill load --stream` in the host's `data_dir`, its stdin,
    /// stdout and stderr piped through SSH, with the run-local context `args` (endpoints,
    /// seed, start moment...) as flags and its share of the load, `spec`, as the first line of
    /// its stdin. The stdin stays open: its closing is the generator's stop.
    pub async fn start(
        &self,
        g: usize,
        args: &[String],
        spec: &LoadSpec,
    ) -> Result<tokio::process::Child, HostsError> {
        let h = &self.hosts[g];
        let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let line = format!(
            "cd {dir} && exec {exe} load --stream --out load --no-tui {args}",
            dir = quote(&h.spec.data_dir.display().to_string()),
            exe = quote(&h.spec.data_dir.join("raftdrill").display().to_string()),
            args = args.join(" "),
        );
        let mut child = h.ssh.spawn_piped(&line)?;
        let mut spec_line = serde_json::to_string(spec)
            .map_err(|e| HostsError::Local(format!("the load's spec as JSON: {e}")))?;
        spec_line.push('\n');
        let sent = match child.stdin.as_mut() {
            Some(stdin) => stdin.write_all(spec_line.as_bytes()).await,
            None => Err(std::io::Error::other("no stdin")),
        };
        // A child dropped here is killed (`spawn_piped`), so no generator is left behind.
        if let Err(e) = sent {
            return Err(HostsError::Local(format!(
                "the load's spec did not reach {}: {e}",
                h.spec.name
            )));
        }
        Ok(child)
    }

    /// Copies generator `g`'s `name` (in its load folder) to `to`; absent is not an error.
    pub async fn fetch(&self, g: usize, name: &str, to: &Path) -> Result<(), HostsError> {
        let h = &self.hosts[g];
        let remote = quote(&h.load_dir().join(name).display().to_string());
        let out = h
            .ssh
            .run(
                &format!("if [ -f {remote} ]; then cat {remote}; fi"),
                CALL * 4,
            )
            .await?;
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| HostsError::Local(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(to, &out.stdout)
            .map_err(|e| HostsError::Local(format!("{}: {e}", to.display())))
    }
}

impl Drop for LoadHosts {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            h.ssh.close_master();
        }
    }
}

async fn ready(
    spec: HostSpec,
    exe: &Path,
    sum: &str,
    socket: PathBuf,
) -> Result<LoadHost, HostsError> {
    let mut ssh = Ssh::new(&spec).map_err(|detail| HostsError::Unfit {
        host: spec.name.clone(),
        detail,
    })?;
    ssh.open_master(socket, CALL).await?;
    let readied = async {
        let (clock_offset_s, clock_rtt_s) = clock_offset(&ssh).await?;
        let dir = quote(&spec.data_dir.display().to_string());
        let load = quote(&spec.data_dir.join("load").display().to_string());
        let facts = ssh
            .run(
                &format!(
                    "mkdir -p {dir} && rm -rf {load} && mkdir {load} && echo ok; \
                     sha256sum {dir}/raftdrill 2>/dev/null | cut -d' ' -f1"
                ),
                CALL,
            )
            .await?
            .text();
        let lines: Vec<&str> = facts.lines().map(str::trim).collect();
        if !lines.contains(&"ok") {
            return Err(HostsError::Unfit {
                host: spec.name.clone(),
                detail: format!("cannot create {}", spec.data_dir.join("load").display()),
            });
        }
        if !lines.contains(&sum) {
            install_binary(&ssh, &spec, exe).await?;
        }
        Ok((clock_offset_s, clock_rtt_s))
    };
    match readied.await {
        Ok((clock_offset_s, clock_rtt_s)) => Ok(LoadHost {
            spec,
            ssh,
            clock_offset_s,
            clock_rtt_s,
        }),
        Err(e) => {
            ssh.close_master();
            Err(e)
        }
    }
}
