//! One key that is not linearizable: the evidence `linearizability.json` carries for it, and
//! the name of its picture.

use loadgen::history::HistoryRecord;
use serde::{Deserialize, Serialize};

/// One key that is not linearizable, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyAnomaly {
    /// The key.
    pub key: String,
    /// The picture's file name (in the folder of the report).
    pub file: String,
    /// Operations of this key that were checked.
    pub ops: usize,
    /// One line for a person: what cannot be placed and why.
    pub explanation: String,
    /// The id of the operation that cannot be placed.
    pub stuck: u64,
    /// The register after the longest linearizable prefix (`None`: absent).
    pub state: Option<String>,
    /// The longest linearizable prefix found: operation ids in linearization order.
    pub prefix: Vec<u64>,
    /// The operations around the failure, in invocation order (see `super::window`).
    pub window: Vec<WindowOp>,
}

impl KeyAnomaly {
    /// The ids of the window's operations.
    pub fn op_ids(&self) -> Vec<u64> {
        self.window.iter().map(|w| w.record.id).collect()
    }
}

/// One operation of an anomaly's window: its record as it was read, and its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowOp {
    /// The record.
    #[serde(flatten)]
    pub record: HistoryRecord,
    /// Its number (from 1) in the longest linearizable prefix, if it is in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// Whether this is the operation that cannot be placed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stuck: bool,
}

/// The picture's file name for `key`: `anomaly-<key>.svg`, with anything but letters, digits,
/// `-`, `_` and `.` replaced by `_`; a key that had to change (or was cut to 80 characters)
/// also gets a hash of itself, so two keys never share a file.
pub fn anomaly_file(key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .take(80)
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean == key && !clean.is_empty() {
        format!("anomaly-{clean}.svg")
    } else {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("anomaly-{clean}-{:08x}.svg", hash as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(anomaly_file("user42"), "anomaly-user42.svg");
        let a = anomaly_file("a/b");
        let b = anomaly_file("a:b");
        assert!(a.starts_with("anomaly-a_b-") && a.ends_with(".svg"), "{a}");
        assert_ne!(a, b);
        assert!(!anomaly_file("../../etc").contains('/'));
        assert!(!anomaly_file("").is_empty());
        assert!(anomaly_file(&"k".repeat(500)).len() < 110);
    }
}
