//! The nodes' disks for a drill with disk faults: one fault-injecting filesystem
//! (`raftdrill faultfs`, FUSE) mounted over each node's data folder before the node starts,
//! switched per node into delay, stall, error or full, or made to lose power.
//!
//! Drills without a disk fault mount nothing, so they keep the native disk's speed. The mounts
//! never outlive raftdrill: each filesystem process is stopped and its mount detached when the
//! drill ends, on every path (its guard's `Drop`, and the process's own parent-death signal if
//! raftdrill is killed); a stale mount left by a killed faultfs is detached at the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raftdrill_faultfs::{
    CleanupScope, FaultFsClient, FaultFsLaunch, FaultFsProcess, Mode, Op, PowerLoss,
    PowerLossReport, available, cleanup_stale,
};
use target_cluster::typ::NodeId;

use crate::scenario::DiskOp;

/// How long a filesystem may take to stop before its mount is detached.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// One filesystem per node.
pub struct Disks {
    fs: BTreeMap<NodeId, FaultFsProcess>,
    /// Backing folders and control sockets; removed after the filesystems are gone.
    _root: tempfile::TempDir,
}

/// Why disks cannot be given faults here (exit 4).
pub fn check_available() -> Result<(), String> {
    available().map_err(|why| format!("disk faults need a FUSE mount: {why}"))
}

/// Detaches faultfs mounts a killed run left behind; one line per mount for the user.
pub fn clean_stale_mounts() -> Vec<String> {
    match cleanup_stale(CleanupScope::Stale) {
        Ok(cleaned) => cleaned
            .into_iter()
            .map(|m| {
                format!(
                    "detached a stale faultfs mount left by a killed run: {}",
                    m.mount_point.display()
                )
            })
            .collect(),
        Err(e) => vec![format!("cannot look for stale faultfs mounts: {e}")],
    }
}

impl Disks {
    /// A folder for the backing stores and sockets, to be filled by [`Disks::mount`].
    pub fn root() -> Result<tempfile::TempDir, String> {
        tempfile::Builder::new()
            .prefix("rd-disks-")
            .tempdir()
            .map_err(|e| format!("cannot create a folder for the disks: {e}"))
    }

    /// Mounts a filesystem over each `(node, data folder)`, its backing store in `root`, its
    /// log in `log_dir/<id>.faultfs.log`. Nothing is mounted when any mount fails.
    pub async fn mount(
        exe: &Path,
        root: tempfile::TempDir,
        data: &[(NodeId, PathBuf)],
        log_dir: &Path,
    ) -> Result<Disks, String> {
        let mut fs = BTreeMap::new();
        for (id, dir) in data {
            let backing = root.path().join(format!("disk-{id}"));
            for d in [&backing, dir] {
                std::fs::create_dir_all(d)
                    .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            }
            let control = root.path().join(format!("fs-{id}.sock"));
            let mut launch =
                FaultFsLaunch::raftdrill(exe.to_path_buf(), backing, dir.clone(), control);
            launch.log = Some(log_dir.join(format!("{id}.faultfs.log")));
            let p = FaultFsProcess::spawn(&launch)
                .await
                .map_err(|e| format!("cannot mount a faultfs for node {id}: {e}"))?;
            fs.insert(*id, p);
        }
        Ok(Disks { fs, _root: root })
    }

    /// The control socket of node `id`'s disk.
    pub fn control(&self, id: NodeId) -> Result<PathBuf, String> {
        self.fs
            .get(&id)
            .map(|p| p.control().to_path_buf())
            .ok_or_else(|| format!("node {id} has no fault-injecting disk"))
    }

    /// The control sockets of every disk.
    pub fn controls(&self) -> Vec<(NodeId, PathBuf)> {
        self.fs
            .iter()
            .map(|(id, p)| (*id, p.control().to_path_buf()))
            .collect()
    }

    /// Stops every filesystem and detaches its mount.
    pub async fn stop(self) {
        for (_, p) in self.fs {
            p.stop(STOP_GRACE).await;
        }
    }
}

async fn client(control: &Path) -> Result<FaultFsClient, String> {
    FaultFsClient::connect(control)
        .await
        .map_err(|e| format!("the disk at {}: {e}", control.display()))
}

/// Switches the disk behind `control` into `mode`.
pub async fn set_mode(control: &Path, mode: Mode) -> Result<(), String> {
    client(control)
        .await?
        .set_mode(mode)
        .await
        .map_err(|e| format!("cannot set the disk's mode: {e}"))
}

/// Drops what the disk behind `control` had not made durable, keeping of the unsynced writes
/// what `loss` says (`PowerLoss::default()`: none; torn or reordered, drawn from its seed).
/// Call it only once the node's process is gone, so none of its writes can land afterwards.
pub async fn power_loss(control: &Path, loss: PowerLoss) -> Result<PowerLossReport, String> {
    client(control)
        .await?
        .power_loss(loss)
        .await
        .map_err(|e| format!("cannot cut the disk's power: {e}"))
}

/// The filesystem's operation kinds for a scenario's `ops`.
pub fn ops(ops: &[DiskOp]) -> Vec<Op> {
    ops.iter()
        .map(|o| match o {
            DiskOp::Write => Op::Write,
            DiskOp::Fsync => Op::Fsync,
            DiskOp::Read => Op::Read,
        })
        .collect()
}
