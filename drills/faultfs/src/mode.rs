//! The fault modes a filesystem can be switched into at run time, as they travel over the
//! control channel (JSON, durations as humantime strings such as `"50ms"`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the filesystem does to the I/O that passes through it.
///
/// Exactly one mode is active at a time; setting a mode replaces the previous one (setting
/// [`Mode::Pass`] during a stall releases the stall).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mode {
    /// Pass everything through unchanged.
    Pass,
    /// Add `latency ± jitter` (uniform) to each operation of the kinds in `ops`.
    Delay {
        /// Added to every matching operation.
        #[serde(with = "human_duration")]
        latency: Duration,
        /// Half-width of the uniform spread around `latency` (never below zero in total).
        #[serde(with = "human_duration", default)]
        jitter: Duration,
        /// Which operations are delayed; default: writes and syncs.
        #[serde(default = "Op::default_delayed")]
        ops: Vec<Op>,
    },
    /// Block every data or namespace operation until `for` has passed, or until the mode is
    /// changed when `for` is absent. Lookups, attribute reads and directory listings still answer.
    Stall {
        /// How long the stall lasts; `None` holds it until another mode is set.
        #[serde(
            rename = "for",
            with = "human_duration_opt",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        duration: Option<Duration>,
    },
    /// Fail writes and syncs (fsync, fdatasync, fsync of a directory) with EIO.
    ///
    /// By default a failed write changes nothing and a failed fsync persists nothing while the
    /// data stays unsynced (a later fsync may still make it durable). With `drop_dirty`, a
    /// failed fsync or fdatasync of a file behaves as Linux's does after a writeback error
    /// ("fsyncgate", PostgreSQL 2018): the data written to the file since its last successful
    /// sync is dropped (the kernel threw away the dirty pages and marked them clean), reads
    /// show what was durable (as after a power loss of that file alone), and the next fsync of
    /// the file reports success whatever the draw, without those writes (they are gone); it
    /// does persist what was written after the failure. A failed fsync of a directory drops
    /// nothing. The error is remembered per file, not per descriptor: any descriptor's next
    /// fsync succeeds, and a power loss forgets it.
    Error {
        /// Chance in `0..=1` that one operation fails; 1 fails all of them.
        probability: f64,
        /// Seed of the draw, so a drill can be replayed.
        #[serde(default)]
        seed: u64,
        /// Which operations can fail; default: writes and syncs.
        #[serde(default, skip_serializing_if = "ErrorOn::is_default")]
        on: ErrorOn,
        /// A failed fsync of a file drops the file's unsynced data and the next one succeeds
        /// (see above); needs `on` to include fsync. Default: false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        drop_dirty: bool,
    },
    /// Disk full: a write that needs space answers ENOSPC: past the end of the file (or a
    /// fallocate that would make it longer), or into a hole (a range the file was extended over
    /// by a truncate and never written, as a database grows its file). Overwriting bytes the
    /// file holds still succeeds.
    Full,
}

impl Mode {
    /// A short name for logs and stats: `pass`, `delay`, `stall`, `error`, `full`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Pass => "pass",
            Mode::Delay { .. } => "delay",
            Mode::Stall { .. } => "stall",
            Mode::Error { .. } => "error",
            Mode::Full => "full",
        }
    }

    /// Checks the values a controller may get wrong (a probability outside `0..=1`, a delay
    /// with no operations).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Mode::Error { probability, .. } if !(0.0..=1.0).contains(probability) => Err(format!(
                "error probability must be within 0..=1, got {probability}"
            )),
            Mode::Delay { ops, .. } if ops.is_empty() => {
                Err("delay needs at least one operation in `ops`".into())
            }
            Mode::Error {
                on: ErrorOn::Write,
                drop_dirty: true,
                ..
            } => {
                Err("drop_dirty needs failing fsyncs: `on` must be fsync or write-or-fsync".into())
            }
            _ => Ok(()),
        }
    }
}

/// Which operations [`Mode::Error`] fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorOn {
    /// Writes, and fsync and fdatasync of files and directories.
    #[default]
    WriteOrFsync,
    /// Writes only.
    Write,
    /// fsync and fdatasync of files and directories only; writes succeed.
    Fsync,
}

impl ErrorOn {
    /// Whether this is the default (so it is left out of the JSON).
    fn is_default(&self) -> bool {
        *self == ErrorOn::default()
    }

    /// Whether operations of kind `op` can fail (reads never do).
    pub fn fails(self, op: Op) -> bool {
        matches!(
            (self, op),
            (ErrorOn::WriteOrFsync | ErrorOn::Write, Op::Write)
                | (ErrorOn::WriteOrFsync | ErrorOn::Fsync, Op::Fsync)
        )
    }
}

/// An operation kind that [`Mode::Delay`] can slow down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// `write(2)` and friends.
    Write,
    /// `fsync(2)` and `fdatasync(2)`, of files and of directories.
    Fsync,
    /// `read(2)` and friends.
    Read,
}

impl Op {
    /// The default set of a delay: writes and syncs.
    pub fn default_delayed() -> Vec<Op> {
        vec![Op::Write, Op::Fsync]
    }
}

/// `Duration` as a humantime string (`"50ms"`, `"1s 500ms"`).
mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map_err(|e| D::Error::custom(format!("bad duration {text:?}: {e}")))
    }
}

/// `Option<Duration>` as an optional humantime string.
mod human_duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => humantime::parse_duration(text.trim())
                .map(Some)
                .map_err(|e| D::Error::custom(format!("bad duration {text:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_the_documented_json() {
        let m: Mode = serde_json::from_str(
            r#"{"mode":"delay","latency":"50ms","jitter":"10ms","ops":["fsync"]}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            Mode::Delay {
                latency: Duration::from_millis(50),
                jitter: Duration::from_millis(10),
                ops: vec![Op::Fsync]
            }
        );
        let m: Mode = serde_json::from_str(r#"{"mode":"delay","latency":"1s"}"#).unwrap();
        assert_eq!(
            m,
            Mode::Delay {
                latency: Duration::from_secs(1),
                jitter: Duration::ZERO,
                ops: vec![Op::Write, Op::Fsync]
            }
        );
        let m: Mode = serde_json::from_str(r#"{"mode":"stall","for":"2s"}"#).unwrap();
        assert_eq!(
            m,
            Mode::Stall {
                duration: Some(Duration::from_secs(2))
            }
        );
        let m: Mode = serde_json::from_str(r#"{"mode":"stall"}"#).unwrap();
        assert_eq!(m, Mode::Stall { duration: None });
        let m: Mode = serde_json::from_str(r#"{"mode":"error","probability":0.5}"#).unwrap();
        assert_eq!(
            m,
            Mode::Error {
                probability: 0.5,
                seed: 0,
                on: ErrorOn::WriteOrFsync,
                drop_dirty: false,
            }
        );
        let m: Mode = serde_json::from_str(
            r#"{"mode":"error","probability":1,"on":"fsync","drop_dirty":true}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            Mode::Error {
                probability: 1.0,
                seed: 0,
                on: ErrorOn::Fsync,
                drop_dirty: true,
            }
        );
        assert_eq!(
            serde_json::to_string(&Mode::Error {
                probability: 1.0,
                seed: 3,
                on: ErrorOn::default(),
                drop_dirty: false,
            })
            .unwrap(),
            r#"{"mode":"error","probability":1.0,"seed":3}"#,
            "the defaults keep the old shape"
        );
        assert!(
            serde_json::from_str::<Mode>(r#"{"mode":"error","probability":1,"on":"read"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Mode>(r#"{"mode":"disk-full"}"#).is_err());
        assert!(
            serde_json::from_str::<Mode>(r#"{"mode":"delay","latency":"1s","latncy":"2s"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Mode>(r#"{"mode":"delay","latency":"fast"}"#).is_err());
    }

    #[test]
    fn modes_round_trip() {
        for m in [
            Mode::Pass,
            Mode::Full,
            Mode::Stall { duration: None },
            Mode::Stall {
                duration: Some(Duration::from_millis(1500)),
            },
            Mode::Error {
                probability: 1.0,
                seed: 7,
                on: ErrorOn::default(),
                drop_dirty: false,
            },
            Mode::Error {
                probability: 0.25,
                seed: 7,
                on: ErrorOn::Fsync,
                drop_dirty: true,
            },
            Mode::Error {
                probability: 0.25,
                seed: 7,
                on: ErrorOn::Write,
                drop_dirty: false,
            },
            Mode::Delay {
                latency: Duration::from_millis(5),
                jitter: Duration::from_millis(1),
                ops: vec![Op::Read],
            },
        ] {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Mode>(&text).unwrap(), m, "{text}");
        }
    }

    #[test]
    fn validation_rejects_impossible_values() {
        let error = |probability, on, drop_dirty| Mode::Error {
            probability,
            seed: 0,
            on,
            drop_dirty,
        };
        assert!(error(1.5, ErrorOn::default(), false).validate().is_err());
        assert!(error(1.0, ErrorOn::Write, true).validate().is_err());
        assert!(error(1.0, ErrorOn::Fsync, true).validate().is_ok());
        assert!(error(1.0, ErrorOn::WriteOrFsync, true).validate().is_ok());
        assert!(
            Mode::Delay {
                latency: Duration::ZERO,
                jitter: Duration::ZERO,
                ops: vec![]
            }
            .validate()
            .is_err()
        );
        assert!(Mode::Full.validate().is_ok());
    }
}
