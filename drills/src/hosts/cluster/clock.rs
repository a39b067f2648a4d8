//! Clock faults on hosts, for a store that reads its clock through libc (the reference node):
//! as on this machine (see `crate::placement::clock`), through libfaketime, with the node's
//! control file `node.faketime` beside its data on its host, rewritten over SSH.

use target_cluster::typ::NodeId;

use super::HostCluster;
use crate::hosts::ssh::{Ssh, quote};
use crate::hosts::{CALL, HostsError};
use crate::placement::clock::{ClockFile, NodeClock, Put, preload_env, spec};
use crate::scenario::ClockChange;

/// A node's control file on its host.
#[derive(Clone)]
pub(crate) struct HostClockFile {
    ssh: Ssh,
    /// The file's path, quoted for the host's shell.
    path: String,
}

impl ClockFile for HostClockFile {
    /// Replaces the file at once (a rename), so a clock read never sees half a line.
    fn put(&self, line: String) -> Put {
        let (ssh, path) = (self.ssh.clone(), self.path.clone());
        Box::pin(async move {
            ssh.run(&put_line(&path, &line), CALL)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// The shell line that puts `line` into the control file at `path` (quoted), whole.
fn put_line(path: &str, line: &str) -> String {
    format!(
        "printf '%s' {line} > {path}.tmp && mv -f {path}.tmp {path}",
        line = quote(line)
    )
}

impl HostCluster {
    /// What node `id`'s start line begins with, and what goes before its program, when it
    /// starts with libfaketime: a true clock in its control file, and the preloading
    /// environment. Empty otherwise.
    pub(super) fn clock_prefix(&self, id: NodeId) -> Result<(String, String), HostsError> {
        let n = self.node(id)?;
        let Some(library) = &n.faketime else {
            return Ok(Default::default());
        };
        let file = n.path("node.faketime");
        let unquoted = n.spec.data_dir.join("node.faketime").display().to_string();
        let env: Vec<String> = preload_env(library, &unquoted)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", quote(&v)))
            .collect();
        Ok((
            format!("{}; ", put_line(&file, &spec(0.0, 1.0))),
            format!("env {} ", env.join(" ")),
        ))
    }

    /// Node `id` started now with a true clock (a strobe running on its old clock stops).
    pub(super) fn clock_started(&self, id: NodeId) {
        let Some(n) = self.nodes.get(&id).filter(|n| n.faketime.is_some()) else {
            return;
        };
        let file = HostClockFile {
            ssh: n.ssh.clone(),
            path: n.path("node.faketime"),
        };
        self.clocks().insert(id, NodeClock::starting(file));
    }

    fn clocks(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<NodeId, NodeClock<HostClockFile>>>
    {
        self.clocks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes node `id`'s clock, or makes it true again with `None`.
    pub async fn set_clock(
        &self,
        id: NodeId,
        change: Option<ClockChange>,
    ) -> Result<(), HostsError> {
        let put = match self.clocks().get_mut(&id) {
            Some(c) => c.change(change),
            None if change.is_none() => return Ok(()),
            None => {
                return Err(HostsError::Local(format!(
                    "node {id} was not started with libfaketime"
                )));
            }
        };
        put.await
            .map_err(|e| HostsError::Local(format!("node {id}'s clock: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_line_is_put_whole_through_a_rename() {
        assert_eq!(
            put_line("'/d/node.faketime'", "-4.500000 x0.1\n"),
            "printf '%s' '-4.500000 x0.1\n' > '/d/node.faketime'.tmp && \
             mv -f '/d/node.faketime'.tmp '/d/node.faketime'"
        );
    }
}
