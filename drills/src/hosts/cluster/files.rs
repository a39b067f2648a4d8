//! A node's files on its host, through SSH: listed, read whole, overwritten in place or cut.

use std::path::{Path, PathBuf};

use target_cluster::typ::NodeId;

use super::HostCluster;
use crate::hosts::ssh::quote;
use crate::hosts::{CALL, HostsError};

impl HostCluster {
    /// The files in `dir` on node `id`'s host whose names end in `suffix`, with their sizes.
    pub async fn list_files(
        &self,
        id: NodeId,
        dir: &Path,
        suffix: &str,
    ) -> Result<Vec<(PathBuf, u64)>, HostsError> {
        let n = self.node(id)?;
        let line = format!(
            "if [ -d {dir} ]; then find {dir} -maxdepth 1 -type f -name {pattern} -printf '%s %p\\n'; fi",
            dir = quote(&dir.display().to_string()),
            pattern = quote(&format!("*{suffix}")),
        );
        let out = n.ssh.run(&line, CALL).await?.text();
        Ok(out
            .lines()
            .filter_map(|l| {
                let (size, path) = l.split_once(' ')?;
                Some((PathBuf::from(path), size.parse().ok()?))
            })
            .collect())
    }

    /// The whole of file `path` on node `id`'s host.
    pub async fn read_file(&self, id: NodeId, path: &Path) -> Result<Vec<u8>, HostsError> {
        let n = self.node(id)?;
        let line = format!("cat {}", quote(&path.display().to_string()));
        Ok(n.ssh.run(&line, CALL).await?.stdout)
    }

    /// Overwrites `bytes` at `offset` of file `path` on node `id`'s host (its length kept
    /// when the range lies within it), then syncs it.
    pub async fn write_at(
        &self,
        id: NodeId,
        path: &Path,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), HostsError> {
        let n = self.node(id)?;
        let line = format!(
            "dd of={p} bs=65536 seek={offset} oflag=seek_bytes iflag=fullblock conv=notrunc,fsync status=none",
            p = quote(&path.display().to_string()),
        );
        n.ssh.run_with_input(&line, Some(bytes), CALL).await?;
        Ok(())
    }

    /// Cuts file `path` on node `id`'s host to `len` bytes, then syncs it.
    pub async fn truncate(&self, id: NodeId, path: &Path, len: u64) -> Result<(), HostsError> {
        let n = self.node(id)?;
        let p = quote(&path.display().to_string());
        n.ssh
            .run(&format!("truncate -s {len} {p} && sync {p}"), CALL)
            .await?;
        Ok(())
    }
}
