//! YCSB-style workloads: which operation comes next, on which key, with which value.
//!
//! # Determinism
//!
//! Operation number `n` (a global counter shared by all workers) fully decides the kind of
//! operation, the key rank and the value written: they come from a generator seeded with
//! `(seed, n)`. Which worker runs operation `n` depends on timing, and so does one thing in
//! workload `d`: an insert takes the next id of the insert sequence when it is issued, and a
//! `latest` read resolves its rank against the newest id inserted so far, as in YCSB.

use std::sync::atomic::{AtomicU64, Ordering};

use raftdrill_wire::Consistency;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::keys::{Distribution, KeyChooser, key_name};
use crate::rng::SplitMix64;

/// The YCSB core workloads (e is left out: the API has no scans) plus a write-only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Read 50 % / update 50 %, zipfian.
    A,
    /// Read 95 % / update 5 %, zipfian.
    B,
    /// Read 100 %, zipfian.
    C,
    /// Read 95 % / insert 5 %, latest.
    D,
    /// Read 50 % / read-modify-write (a read, then a compare-and-swap) 50 %, zipfian.
    F,
    /// Update 100 %, uniform.
    W,
}

impl WorkloadKind {
    /// The one-letter name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::A => "a",
            WorkloadKind::B => "b",
            WorkloadKind::C => "c",
            WorkloadKind::D => "d",
            WorkloadKind::F => "f",
            WorkloadKind::W => "w",
        }
    }

    /// The key distribution the workload uses unless told otherwise.
    pub(crate) fn default_distribution(self) -> Distribution {
        match self {
            WorkloadKind::D => Distribution::Latest,
            WorkloadKind::W => Distribution::Uniform,
            _ => Distribution::Zipfian,
        }
    }

    /// The mix: (kind, share in percent), summing to 100.
    pub fn mix(self) -> &'static [(OpKind, u32)] {
        match self {
            WorkloadKind::A => &[(OpKind::Read, 50), (OpKind::Update, 50)],
            WorkloadKind::B => &[(OpKind::Read, 95), (OpKind::Update, 5)],
            WorkloadKind::C => &[(OpKind::Read, 100)],
            WorkloadKind::D => &[(OpKind::Read, 95), (OpKind::Insert, 5)],
            WorkloadKind::F => &[(OpKind::Read, 50), (OpKind::ReadModifyWrite, 50)],
            WorkloadKind::W => &[(OpKind::Update, 100)],
        }
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "a" => Ok(WorkloadKind::A),
            "b" => Ok(WorkloadKind::B),
            "c" => Ok(WorkloadKind::C),
            "d" => Ok(WorkloadKind::D),
            "f" => Ok(WorkloadKind::F),
            "w" => Ok(WorkloadKind::W),
            other => Err(format!(
                "unknown workload {other:?} (expected a, b, c, d, f or w)"
            )),
        }
    }
}

/// The kind of one operation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// `GET /kv/{key}`.
    Read,
    /// `PUT /kv/{key}` on an existing key.
    Update,
    /// `PUT /kv/{key}` on a new key.
    Insert,
    /// `GET` then `POST /kv/{key}/cas` expecting what was read.
    #[serde(rename = "rmw")]
    ReadModifyWrite,
}

impl OpKind {
    /// Every kind, in index order.
    pub const ALL: [OpKind; 4] = [
        OpKind::Read,
        OpKind::Update,
        OpKind::Insert,
        OpKind::ReadModifyWrite,
    ];

    /// A dense index, for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in files and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::ReadModifyWrite => "rmw",
        }
    }

    /// Whether the operation may change data.
    pub(crate) fn is_write(self) -> bool {
        !matches!(self, OpKind::Read)
    }
}

/// Everything that defines a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    /// Which YCSB workload.
    pub kind: WorkloadKind,
    /// Size of the key space the workload starts with.
    pub keys: u64,
    /// Overrides the workload's own distribution.
    pub distribution: Option<Distribution>,
    /// Bytes per written value.
    pub value_size: usize,
    /// Consistency of reads.
    pub consistency: Consistency,
    /// Seed of the operation sequence.
    pub seed: u64,
}

impl WorkloadSpec {
    /// Workload `kind` with the defaults: 10 000 keys, 256-byte values, linearizable reads,
    /// seed 1.
    pub fn new(kind: WorkloadKind) -> Self {
        Self {
            kind,
            keys: 10_000,
            distribution: None,
            value_size: 256,
            consistency: Consistency::Linearizable,
            seed: 1,
        }
    }

    /// The distribution in force.
    pub fn distribution(&self) -> Distribution {
        self.distribution
            .unwrap_or_else(|| self.kind.default_distribution())
    }
}

/// One operation to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The operation number.
    pub n: u64,
    /// What to do.
    pub kind: OpKind,
    /// The key.
    pub key: String,
    /// The value to write (`None` for reads; for a read-modify-write the value to swap in).
    pub value: Option<String>,
}

/// A workload ready to generate operations; shared by all workers.
#[derive(Debug)]
pub struct Workload {
    spec: WorkloadSpec,
    chooser: KeyChooser,
    /// Cumulative thresholds of the mix, in units of 1/100.
    cumulative: Vec<(OpKind, u32)>,
    /// Next id of the insert sequence (workload d).
    next_insert: AtomicU64,
}

impl Workload {
    /// Prepare `spec` (a zipfian over many keys costs O(keys) once).
    pub fn new(spec: WorkloadSpec) -> Self {
        let chooser = KeyChooser::new(spec.keys, spec.distribution());
        let mut sum = 0;
        let cumulative = spec
            .kind
            .mix()
            .iter()
            .map(|(k, share)| {
                sum += share;
                (*k, sum)
            })
            .collect();
        let next_insert = AtomicU64::new(spec.keys.max(1));
        Self {
            spec,
            chooser,
            cumulative,
            next_insert,
        }
    }

    /// The spec this workload was built from.
    pub fn spec(&self) -> &WorkloadSpec {
        &self.spec
    }

    /// The kinds this workload issues.
    pub fn kinds(&self) -> impl Iterator<Item = OpKind> + '_ {
        self.cumulative.iter().map(|(k, _)| *k)
    }

    /// Operation number `n`.
    pub fn op(&self, n: u64) -> Op {
        let mut rng = SplitMix64::for_stream(self.spec.seed, n);
        let pick = rng.below(100) as u32;
        let kind = self
            .cumulative
            .iter()
            .find(|(_, upto)| pick < *upto)
            .map(|(k, _)| *k)
            .unwrap_or(OpKind::Read);
        let id = match kind {
            OpKind::Insert => self.next_insert.fetch_add(1, Ordering::Relaxed),
            _ => {
                let latest = self.next_insert.load(Ordering::Relaxed).saturating_sub(1);
                self.chooser.choose(&mut rng, latest)
            }
        };
        let value = kind
            .is_write()
            .then(|| make_value(self.spec.seed, n, self.spec.value_size, &mut rng));
        Op {
            n,
            kind,
            key: key_name(id),
            value,
        }
    }
}

/// A value of `size` bytes that is unique to `(seed, n)`: it starts with both in hex, so the
/// lost-write checker can tell every write apart, and is padded with pseudo-random letters.
fn make_value(seed: u64, n: u64, size: usize, rng: &mut SplitMix64) -> String {
    let mut value = format!("{seed:x}-{n:x}-");
    let mut bits = rng.next_u64();
    while value.len() < size {
        if bits == 0 {
            bits = rng.next_u64() | 1;
        }
        value.push((b'a' + (bits % 26) as u8) as char);
        bits /= 26;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(kind: WorkloadKind, ops: u64) -> [f64; 4] {
        let w = Workload::new(WorkloadSpec::new(kind));
        let mut counts = [0u64; 4];
        for n in 0..ops {
            counts[w.op(n).kind.index()] += 1;
        }
        counts.map(|c| c as f64 * 100.0 / ops as f64)
    }

    #[test]
    fn mix_ratios_hold_within_two_percent() {
        for kind in [
            WorkloadKind::A,
            WorkloadKind::B,
            WorkloadKind::C,
            WorkloadKind::D,
            WorkloadKind::F,
            WorkloadKind::W,
        ] {
            let got = shares(kind, 20_000);
            let mut want = [0.0; 4];
            for (k, share) in kind.mix() {
                want[k.index()] = *share as f64;
            }
            for i in 0..4 {
                assert!(
                    (got[i] - want[i]).abs() <= 2.0,
                    "workload {kind:?} kind {i}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let a = Workload::new(WorkloadSpec::new(WorkloadKind::A));
        let b = Workload::new(WorkloadSpec::new(WorkloadKind::A));
        for n in (0..500).rev() {
            assert_eq!(a.op(n), b.op(n));
        }
        let mut other = WorkloadSpec::new(WorkloadKind::A);
        other.seed = 2;
        let c = Workload::new(other);
        assert!((0..50).any(|n| a.op(n) != c.op(n)));
    }

    #[test]
    fn writes_carry_unique_values_of_the_asked_size() {
        let mut spec = WorkloadSpec::new(WorkloadKind::W);
        spec.value_size = 40;
        let w = Workload::new(spec);
        let mut seen = std::collections::HashSet::new();
        for n in 0..1000 {
            let v = w.op(n).value.unwrap();
            assert_eq!(v.len(), 40);
            assert!(seen.insert(v));
        }
    }

    #[test]
    fn inserts_take_new_keys() {
        let w = Workload::new(WorkloadSpec {
            keys: 100,
            ..WorkloadSpec::new(WorkloadKind::D)
        });
        let inserts: Vec<String> = (0..2000)
            .map(|n| w.op(n))
            .filter(|op| op.kind == OpKind::Insert)
            .map(|op| op.key)
            .collect();
        assert!(!inserts.is_empty());
        assert_eq!(inserts[0], key_name(100));
        let unique: std::collections::HashSet<_> = inserts.iter().collect();
        assert_eq!(unique.len(), inserts.len());
    }
}
