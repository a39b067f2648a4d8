//! The faults a scenario schedules: what to do ([`Action`]), to whom ([`Selector`]), when.

use std::fmt;
use std::time::Duration;

/// Which nodes a fault acts on. Resolved when the fault fires, from the poller's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The current leader.
    Leader,
    /// One follower (the lowest id that is up and not the leader).
    Follower,
    /// The n-th follower that is up, by id, counting from 1 (`follower:2` is another node
    /// than `follower` = `follower:1`).
    NthFollower(usize),
    /// Any one node that is up, chosen by the run's seed.
    Any,
    /// A minority of the voters (⌊(n−1)/2⌋ of them), chosen among the followers so that the
    /// leader stays on the majority side.
    Minority,
    /// A majority of the voters (the rest), the leader among them.
    Majority,
    /// A fixed node id.
    Node(u64),
    /// Every node.
    All,
}

impl Selector {
    /// Parses `leader | follower | any | minority | majority | node:N | all`.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "leader" => Selector::Leader,
            "follower" => Selector::Follower,
            "any" => Selector::Any,
            "minority" => Selector::Minority,
            "majority" => Selector::Majority,
            "all" => Selector::All,
            other => {
                let unknown = || {
                    format!(
                        "unknown target {other:?}; use leader, follower, follower:N, any, minority, majority, node:N or all"
                    )
                };
                if let Some(n) = other.strip_prefix("follower:") {
                    match n.parse::<usize>() {
                        Ok(n) if n >= 1 => Selector::NthFollower(n),
                        _ => return Err(unknown()),
                    }
                } else {
                    match other.strip_prefix("node:").map(str::parse::<u64>) {
                        Some(Ok(id)) if id >= 1 => Selector::Node(id),
                        _ => return Err(unknown()),
                    }
                }
            }
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Leader => f.write_str("leader"),
            Selector::Follower => f.write_str("follower"),
            Selector::NthFollower(n) => write!(f, "follower:{n}"),
            Selector::Any => f.write_str("any"),
            Selector::Minority => f.write_str("minority"),
            Selector::Majority => f.write_str("majority"),
            Selector::Node(id) => write!(f, "node:{id}"),
            Selector::All => f.write_str("all"),
        }
    }
}

/// Which of the target's links a link fault touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Links from the target to its peers and from its peers to it.
    #[default]
    Both,
    /// Only the peers' links to the target: the target can still reach them (one-way).
    In,
    /// Only the target's links to its peers.
    Out,
}

impl Direction {
    /// Parses `both | in | out`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "both" => Ok(Direction::Both),
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            other => Err(format!("unknown direction {other:?}; use both, in or out")),
        }
    }
}

/// A disk operation a `disk-delay` slows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskOp {
    /// write(2).
    Write,
    /// fsync(2) and fdatasync(2), of files and directories.
    Fsync,
    /// read(2).
    Read,
}

impl DiskOp {
    /// Parses `write | fsync | read`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "write" => Ok(DiskOp::Write),
            "fsync" => Ok(DiskOp::Fsync),
            "read" => Ok(DiskOp::Read),
            other => Err(format!(
                "unknown disk operation {other:?}; use write, fsync or read"
            )),
        }
    }
}

/// What `corrupt` does to the chosen range of a node's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CorruptHow {
    /// Flip one bit in each byte of the range.
    Flip,
    /// Overwrite the range with zeros.
    Zero,
    /// Cut the file at the range's start.
    Truncate,
}

impl CorruptHow {
    /// Parses `flip | zero | truncate`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "flip" => Ok(CorruptHow::Flip),
            "zero" => Ok(CorruptHow::Zero),
            "truncate" => Ok(CorruptHow::Truncate),
            other => Err(format!(
                "unknown corruption {other:?}; use flip, zero or truncate"
            )),
        }
    }
}

/// Which of a node's files `corrupt` damages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CorruptFile {
    /// Its log (the reference node's WAL segments, etcd's WAL files).
    Log,
    /// Its snapshot (the reference node's `snapshot.bin`, etcd's `.snap` files).
    Snapshot,
}

impl CorruptFile {
    /// Parses `log | snapshot`.
    pub fn parse(text: &str) -> Result<Self, String> {
        [CorruptFile::Log, CorruptFile::Snapshot]
            .into_iter()
            .find(|f| f.name() == text)
            .ok_or_else(|| format!("unknown file {text:?}; use log or snapshot"))
    }

    /// Its name in a scenario file.
    pub fn name(self) -> &'static str {
        match self {
            CorruptFile::Log => "log",
            CorruptFile::Snapshot => "snapshot",
        }
    }
}

/// How a `clock` fault changes a node's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockChange {
    /// Jump by this many seconds (negative: back).
    Jump(f64),
    /// Run at this rate (0.1 = ten times slower than real time).
    Rate(f64),
    /// Jump by `offset` seconds and back again, every `every`.
    Strobe {
        /// The size of the jump, in seconds.
        offset: f64,
        /// How long between jumps.
        every: Duration,
    },
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// SIGKILL.
    Kill,
    /// SIGTERM, then wait.
    Stop,
    /// SIGSTOP (undone by SIGCONT).
    Pause,
    /// Start a stopped or killed node again on its data dir.
    Restart,
    /// Remove from the membership, delete the data, start empty, re-add and promote.
    Wipe,
    /// The classic operator error: kill, delete the data, and start the node again empty with
    /// the same id and no membership change. Its vote and log are gone while its peers still
    /// count it as a voter, which Raft cannot survive in general.
    WipeInPlace,
    /// Cut every link between the target and the other nodes.
    Isolate,
    /// Split the cluster: the target nodes (or `groups`) on one side, the rest on the other.
    Partition {
        /// Explicit groups of node ids; nodes in different groups cannot talk.
        groups: Option<Vec<Vec<u64>>>,
    },
    /// Delay the target's links.
    Delay {
        /// Mean added one-way delay.
        latency: Duration,
        /// Uniform ± jitter.
        jitter: Duration,
        /// Which links.
        direction: Direction,
    },
    /// Cap the target's links.
    Bandwidth {
        /// Bytes per second per link and direction.
        bytes_per_sec: u64,
        /// Which links.
        direction: Direction,
    },
    /// Hold every byte on the target's links.
    Blackhole {
        /// Which links (`in` makes a one-way partition).
        direction: Direction,
    },
    /// Cut the target's connections with RST and refuse new ones.
    Reset {
        /// Which links.
        direction: Direction,
    },
    /// Drop a share of the packets on the target's links (hosts only: an iptables rule on the
    /// receiving host, with no proxy hop).
    Loss {
        /// Chance in `(0, 1]` that one packet is dropped.
        probability: f64,
        /// Which links.
        direction: Direction,
    },
    /// Restore every link and resume every paused node.
    Heal,
    /// Slow the target's disk: `latency ± jitter` on the listed operations.
    DiskDelay {
        /// Added to every matching operation.
        latency: Duration,
        /// Uniform ± spread.
        jitter: Duration,
        /// Which operations: writes, syncs, reads.
        ops: Vec<DiskOp>,
    },
    /// Block every I/O of the target's disk until undone (`for`).
    DiskStall,
    /// Fail the target's writes and syncs with EIO at this probability.
    DiskError {
        /// Chance in `(0, 1]` per operation.
        probability: f64,
        /// Which operations fail: writes, syncs, or both (the default).
        on: raftdrill_faultfs::ErrorOn,
        /// A failed fsync of a file loses the data written since its last good one, and the
        /// next fsync reports success, as Linux does ("fsyncgate").
        drop_dirty: bool,
    },
    /// The target's disk is full: writes that grow a file fail with ENOSPC.
    DiskFull,
    /// Cut the power: SIGKILL, then what the disk had not made durable is gone, or, with
    /// `keep`, part of it survives: a prefix torn at a sector boundary, or a subset in another
    /// order (see the faultfs README). `for` starts the node again after that long.
    PowerLoss {
        /// What survives of the unsynced writes: none (the default), torn or reordered.
        keep: raftdrill_faultfs::Keep,
    },
    /// A limping node: its process keeps running under a CPU quota of `share` of one core
    /// (a control group), until `for` lifts it.
    CpuLimit {
        /// The share of one core, in (0, 64]: 0.05 is 5 %.
        share: f64,
    },
    /// Damage a node's files while it is stopped: SIGTERM, then flip, zero or cut a range of
    /// one of its log or snapshot files chosen by the fault's seed, then start it again. It
    /// must either refuse to start or recover; the cluster must lose nothing.
    Corrupt {
        /// What is done to the range.
        how: CorruptHow,
        /// Which files.
        file: CorruptFile,
        /// How many bytes the range spans (flip, zero).
        bytes: u64,
    },
    /// Change the clock the node's process reads (through libc): a jump, a rate or a strobe.
    /// Undone by `for`: the clock is true again.
    Clock {
        /// How.
        change: ClockChange,
    },
    /// Start a new node and add it as a voter.
    AddNode,
    /// Remove the target from the membership (its process keeps running, outside the cluster).
    RemoveNode,
}

impl Action {
    /// The scenario-file name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Stop => "stop",
            Action::Pause => "pause",
            Action::Restart => "restart",
            Action::Wipe => "wipe",
            Action::WipeInPlace => "wipe-in-place",
            Action::Isolate => "isolate",
            Action::Partition { .. } => "partition",
            Action::Delay { .. } => "delay",
            Action::Bandwidth { .. } => "bandwidth",
            Action::Blackhole { .. } => "blackhole",
            Action::Reset { .. } => "reset",
            Action::Loss { .. } => "loss",
            Action::Heal => "heal",
            Action::DiskDelay { .. } => "disk-delay",
            Action::DiskStall => "disk-stall",
            Action::DiskError { .. } => "disk-error",
            Action::DiskFull => "disk-full",
            Action::PowerLoss { .. } => "power-loss",
            Action::CpuLimit { .. } => "cpu-limit",
            Action::Corrupt { .. } => "corrupt",
            Action::Clock { .. } => "clock",
            Action::AddNode => "add-node",
            Action::RemoveNode => "remove-node",
        }
    }

    /// Whether `for` can undo the action (restart, resume, heal).
    pub fn undoable(&self) -> bool {
        !matches!(
            self,
            Action::Restart
                | Action::Wipe
                | Action::WipeInPlace
                | Action::Corrupt { .. }
                | Action::Heal
                | Action::AddNode
                | Action::RemoveNode
        )
    }

    /// Whether the action takes its target out of the cluster's service (a leader it hits must
    /// then be replaced): true for process faults and for cut links; false for a slowed link
    /// (delay, bandwidth) and for a one-way cut that leaves the target's own traffic out
    /// (`direction = "in"`: the leader still reaches its followers). A stalled disk deposes:
    /// a leader that cannot persist cannot commit, and a cluster that keeps it is stuck for as
    /// long as the stall lasts. A slow, failing or full disk does not, by itself.
    pub fn deposes(&self) -> bool {
        match self {
            Action::Delay { .. }
            | Action::Bandwidth { .. }
            | Action::Heal
            | Action::AddNode
            | Action::DiskDelay { .. }
            | Action::DiskError { .. }
            | Action::DiskFull
            | Action::CpuLimit { .. }
            | Action::Clock { .. }
            | Action::Loss { .. } => false,
            Action::Blackhole { direction } | Action::Reset { direction } => {
                *direction != Direction::In
            }
            _ => true,
        }
    }

    /// Whether the action needs the fault-injecting filesystem under the target's data.
    pub fn is_disk_fault(&self) -> bool {
        matches!(
            self,
            Action::DiskDelay { .. }
                | Action::DiskStall
                | Action::DiskError { .. }
                | Action::DiskFull
                | Action::PowerLoss { .. }
        )
    }

    /// Whether the action acts on the links rather than the processes.
    pub fn is_link_fault(&self) -> bool {
        matches!(
            self,
            Action::Isolate
                | Action::Partition { .. }
                | Action::Delay { .. }
                | Action::Bandwidth { .. }
                | Action::Blackhole { .. }
                | Action::Reset { .. }
                | Action::Loss { .. }
        )
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// When it fires, from the start of the run (after warmup counts as part of the run).
    pub at: Duration,
    /// What it does.
    pub action: Action,
    /// To whom.
    pub target: Selector,
    /// Undo it after this long.
    pub undo_after: Option<Duration>,
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} at {}s",
            self.action.name(),
            self.target,
            self.at.as_secs_f64()
        )?;
        if let Some(d) = self.undo_after {
            write!(f, " for {}s", d.as_secs_f64())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_print_back() {
        for s in [
            "leader",
            "follower",
            "follower:2",
            "any",
            "minority",
            "majority",
            "all",
            "node:3",
        ] {
            assert_eq!(Selector::parse(s).unwrap().to_string(), s);
        }
        assert!(Selector::parse("node:0").is_err());
        assert!(Selector::parse("node:x").is_err());
        assert!(Selector::parse("follower:0").is_err());
        assert!(Selector::parse("leaderr").is_err());
    }

    #[test]
    fn only_reversible_actions_are_undoable() {
        assert!(Action::Kill.undoable());
        assert!(
            Action::Blackhole {
                direction: Direction::In
            }
            .undoable()
        );
        assert!(!Action::Restart.undoable());
        assert!(!Action::AddNode.undoable());
    }
}
