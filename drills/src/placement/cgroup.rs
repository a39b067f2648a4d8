//! A limping node: a node process held to a share of one core by a CPU quota of the kernel's
//! control groups, while it keeps running. Version 1 (`cpu.cfs_quota_us` over
//! `cpu.cfs_period_us` in the `cpu` hierarchy) and version 2 (`cpu.max` in the unified one)
//! are both found at run time. The quota applies to the process it was given: a node started
//! again runs unlimited.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use target_cluster::typ::NodeId;

/// The quota's period, µs (the kernel's default).
const PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel takes, µs.
const MIN_QUOTA_US: u64 = 1_000;

/// Which control groups this machine has, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// Version 1: the root of the `cpu` hierarchy.
    V1(PathBuf),
    /// Version 2: the root of the unified hierarchy, with the `cpu` controller.
    V2(PathBuf),
}

impl Cgroups {
    /// The control groups of this machine, or why a CPU quota cannot be set here.
    pub fn detect() -> Result<Cgroups, String> {
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            return Ok(Cgroups::V1(v1.to_path_buf()));
        }
        let v2 = Path::new("/sys/fs/cgroup");
        match std::fs::read_to_string(v2.join("cgroup.controllers")) {
            Ok(c) if c.split_whitespace().any(|c| c == "cpu") => Ok(Cgroups::V2(v2.to_path_buf())),
            Ok(_) => Err("the cgroup v2 hierarchy has no cpu controller".into()),
            Err(_) => Err("no cgroup cpu controller is mounted (v1 cpu, or v2)".into()),
        }
    }

    fn root(&self) -> &Path {
        match self {
            Cgroups::V1(r) | Cgroups::V2(r) => r,
        }
    }
}

/// The quota of `share` of one core, µs per period.
pub fn quota_us(share: f64) -> u64 {
    ((share * PERIOD_US as f64) as u64).max(MIN_QUOTA_US)
}

/// The CPU quotas this run has set, one group per node; every group is removed when lifted
/// or when this is dropped.
pub struct CpuLimits {
    cgroups: Cgroups,
    groups: BTreeMap<NodeId, PathBuf>,
}

impl CpuLimits {
    /// Quotas on this machine's control groups.
    pub fn new() -> Result<CpuLimits, String> {
        Ok(CpuLimits {
            cgroups: Cgroups::detect()?,
            groups: BTreeMap::new(),
        })
    }

    /// Holds process `pid` (node `id`) to `share` of one core.
    pub fn limit(&mut self, id: NodeId, pid: u32, share: f64) -> Result<(), String> {
        let group = self
            .cgroups
            .root()
            .join(format!("raftdrill-{}-n{id}", std::process::id()));
        let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", group.display());
        std::fs::create_dir_all(&group).map_err(|e| io("cannot make the cgroup", e))?;
        self.groups.insert(id, group.clone());
        let quota = quota_us(share);
        match &self.cgroups {
            Cgroups::V1(_) => {
                write(&group.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&group.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            Cgroups::V2(root) => {
                // The controller must be on for the children of the root (a no-op when it is).
                let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
                write(&group.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
            }
        }
        write(&group.join("cgroup.procs"), &pid.to_string())
    }

    /// Lifts node `id`'s quota: its processes go back to the root group, and the group goes.
    pub fn lift(&mut self, id: NodeId) -> Result<(), String> {
        let Some(group) = self.groups.remove(&id) else {
            return Ok(());
        };
        let procs = std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            // A process that is gone meanwhile has nothing to move.
            let _ = std::fs::write(self.cgroups.root().join("cgroup.procs"), pid);
        }
        std::fs::remove_dir(&group)
            .map_err(|e| format!("cannot remove the cgroup {}: {e}", group.display()))
    }

    /// Whether node `id` is held to a quota.
    pub fn is_limited(&self, id: NodeId) -> bool {
        self.groups.contains_key(&id)
    }

    /// Lifts every quota; failures are logged.
    pub fn lift_all(&mut self) {
        let ids: Vec<NodeId> = self.groups.keys().copied().collect();
        for id in ids {
            if let Err(e) = self.lift(id) {
                tracing::warn!(node = id, error = %e, "cannot lift a CPU quota");
            }
        }
    }
}

impl Drop for CpuLimits {
    fn drop(&mut self) {
        self.lift_all();
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The name of the CPU group of the node on host `host`.
pub fn host_group(host: &str) -> String {
    format!("raftdrill-{host}")
}

/// Where a session that does not see the machine's control groups mounts the `cpu` hierarchy.
/// A session of an sshd started by `ip netns exec` sees a fresh `/sys` without them.
const SESSION_MOUNT: &str = "/run/raftdrill-cgroup";

/// Shell that sets `$r` to the root of the `cpu` control groups and `$v` to 1 or 2, mounting
/// the hierarchy at [`SESSION_MOUNT`] when this session sees none; fails when there is none.
fn find_root_line() -> String {
    let m = SESSION_MOUNT;
    format!(
        "if [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then r=/sys/fs/cgroup/cpu; v=1; \
         elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then r=/sys/fs/cgroup; v=2; \
         else r={m}; mkdir -p $r || exit 1; \
         if [ -f $r/cpu.cfs_quota_us ]; then v=1; elif [ -f $r/cgroup.controllers ]; then v=2; \
         elif mount -t cgroup -o cpu raftdrill $r 2>/dev/null; then v=1; \
         elif mount -t cgroup2 raftdrill $r; then v=2; \
         else echo 'no cgroup cpu controller here' >&2; exit 1; fi; fi"
    )
}

/// The shell line that holds the node whose pid is in `pid_file` to `share` of one core in a
/// group named `name` (v1 or v2, whichever the host has); on hosts, over SSH.
pub fn limit_line(name: &str, pid_file: &str, share: f64) -> String {
    let q = quota_us(share);
    format!(
        "p=\"$(cat {pid_file})\" || exit 1; {root}; g=$r/{name}; mkdir -p $g || exit 1; \
         if [ $v = 1 ]; then echo {PERIOD_US} > $g/cpu.cfs_period_us && \
         echo {q} > $g/cpu.cfs_quota_us || exit 1; \
         else echo +cpu 2>/dev/null > $r/cgroup.subtree_control; \
         echo '{q} {PERIOD_US}' > $g/cpu.max || exit 1; fi; echo \"$p\" > $g/cgroup.procs",
        root = find_root_line()
    )
}

/// The shell line that lifts the quota of group `name` (its processes back to the root, the
/// group removed); nothing when there is none.
pub fn lift_line(name: &str) -> String {
    format!(
        "for r in /sys/fs/cgroup/cpu /sys/fs/cgroup {SESSION_MOUNT}; do g=$r/{name}; \
         if [ -d $g ]; then \
         for p in $(cat $g/cgroup.procs 2>/dev/null); do echo $p 2>/dev/null > $r/cgroup.procs; done; \
         rmdir $g; fi; done; true"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_becomes_a_quota_of_the_period_never_below_the_kernels_least() {
        assert_eq!(quota_us(0.05), 5_000);
        assert_eq!(quota_us(1.5), 150_000);
        assert_eq!(quota_us(0.001), MIN_QUOTA_US);
    }

    /// On this machine (root, cgroup v1 or v2): a child joins a group with its quota, and the
    /// group is gone once the quota is lifted.
    #[test]
    fn a_process_joins_a_group_with_its_quota_and_the_group_goes_after() {
        let Ok(mut limits) = CpuLimits::new() else {
            eprintln!("skipped: no cgroup cpu controller here");
            return;
        };
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        limits.limit(7, pid, 0.05).unwrap();
        let group = limits.groups[&7].clone();
        let inside = std::fs::read_to_string(group.join("cgroup.procs")).unwrap();
        assert!(
            inside.split_whitespace().any(|p| p == pid.to_string()),
            "{inside}"
        );
        let quota = match &limits.cgroups {
            Cgroups::V1(_) => std::fs::read_to_string(group.join("cpu.cfs_quota_us")).unwrap(),
            Cgroups::V2(_) => std::fs::read_to_string(group.join("cpu.max")).unwrap(),
        };
        assert!(quota.starts_with("5000"), "{quota}");
        limits.lift(7).unwrap();
        assert!(!group.exists(), "the group is removed");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The lines a host runs over SSH, run here: the process joins the group with its quota,
    /// and the group is gone after the lift.
    #[test]
    fn the_host_lines_limit_a_process_and_lift_it_again() {
        let Ok(cgroups) = Cgroups::detect() else {
            eprintln!("skipped: no cgroup cpu controller here");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid_file = dir.path().join("node.pid");
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let name = format!("raftdrill-linetest-{}", std::process::id());
        let sh = |line: String| {
            let out = std::process::Command::new("sh")
                .args(["-c", &line])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh(limit_line(&name, &pid_file.display().to_string(), 0.05));
        let group = cgroups.root().join(&name);
        let inside = std::fs::read_to_string(group.join("cgroup.procs")).unwrap();
        assert!(
            inside
                .split_whitespace()
                .any(|p| p == child.id().to_string()),
            "{inside}"
        );
        sh(lift_line(&name));
        assert!(!group.exists(), "the group is removed");
        let _ = child.kill();
        let _ = child.wait();
    }
}
