//! From `history.jsonl` to per-key operations: reading the file with line numbers, judging
//! what each record says about the register (results/README.md holds the contract), and
//! splitting the history by key with values interned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use loadgen::history::HistoryRecord;
use loadgen::outcome::Outcome;
use loadgen::workload::OpKind;

use super::model::{ABSENT, Action, Value};

/// The name of the history file inside a run folder.
pub const HISTORY_FILE: &str = "history.jsonl";

/// Why a history could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file (or folder) could not be read.
    // The reason is in the message, so it is not also a `source` (printed twice in a chain).
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        error: std::io::Error,
    },
    /// A folder was given that holds no `history.jsonl`.
    #[error("{}: no {HISTORY_FILE} in this folder (was the run recorded with history = true?)", dir.display())]
    NoHistory {
        /// The folder.
        dir: PathBuf,
    },
    /// A line of the file is not a valid record.
    #[error("{}:{line}: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Its line, from 1.
        line: usize,
        /// What is wrong, naming the field where there is one.
        problem: Problem,
    },
    /// A record handed to [`super::check_records`] is not valid.
    #[error("record {index} (id {id}): {problem}")]
    Record {
        /// Its position in the slice.
        index: usize,
        /// Its operation id.
        id: u64,
        /// What is wrong.
        problem: Problem,
    },
}

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field at fault, when one is (`None`: the line is not JSON at all).
    pub field: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field \"{field}\": {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Problem {
    fn field(field: &str, message: impl Into<String>) -> Self {
        Problem {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

/// The history file a path names: the path itself, or `history.jsonl` inside a folder.
pub fn history_path(path: &Path) -> Result<PathBuf, CheckError> {
    if path.is_dir() {
        let file = path.join(HISTORY_FILE);
        if file.is_file() {
            Ok(file)
        } else {
            Err(CheckError::NoHistory {
                dir: path.to_path_buf(),
            })
        }
    } else {
        Ok(path.to_path_buf())
    }
}

/// Reads a history file (or a run folder's `history.jsonl`). Every record is validated, so a
/// bad one is reported with its line and field rather than later by position.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRecord>, CheckError> {
    let path = history_path(path)?;
    let text = std::fs::read_to_string(&path).map_err(|error| CheckError::Read {
        path: path.clone(),
        error,
    })?;
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |problem| CheckError::Malformed {
            path: path.clone(),
            line: n + 1,
            problem,
        };
        let record = parse_line(line).map_err(malformed)?;
        judge(&record).map_err(malformed)?;
        records.push(record);
    }
    Ok(records)
}

/// Parses one line, naming the field that failed.
fn parse_line(line: &str) -> Result<HistoryRecord, Problem> {
    let mut de = serde_json::Deserializer::from_str(line);
    let record: HistoryRecord = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let column = inner.column();
        let syntax = inner.is_syntax() || inner.is_eof();
        // serde_json appends " at line 1 column N", which says nothing on a one-line record.
        let text = inner.to_string();
        let text = match text.rfind(" at line ") {
            Some(at) => text[..at].to_string(),
            None => text,
        }
        .replace('`', "\"");
        if syntax {
            Problem {
                field: None,
                message: format!("not valid JSON at column {column}: {text}"),
            }
        } else if let Some(name) = text.strip_prefix("missing field ") {
            Problem::field(name.trim_matches('"'), "missing")
        } else if path == "." {
            Problem {
                field: None,
                message: text,
            }
        } else {
            Problem::field(&path, text)
        }
    })?;
    de.end().map_err(|e| Problem {
        field: None,
        message: format!("text after the record at column {}", e.column()),
    })?;
    Ok(record)
}

/// What a valid record says about its key's register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meaning<'a> {
    /// Nothing: a failed operation, a read that did not complete, a swap never sent.
    Nothing,
    /// A read of this value (`None`: the key was absent).
    Read(Option<&'a str>),
    /// A write of this value; `optional` when its outcome is unknown.
    Write { value: &'a str, optional: bool },
    /// A swap from `expect` to `new`; `optional` when its outcome is unknown.
    Cas {
        expect: Option<&'a str>,
        new: &'a str,
        optional: bool,
    },
    /// A swap that found another value than `expect`.
    CasRefused { expect: Option<&'a str> },
}

/// Judges one record against the contract in results/README.md.
pub(crate) fn judge(r: &HistoryRecord) -> Result<Meaning<'_>, Problem> {
    if r.complete_us < r.invoke_us {
        return Err(Problem::field(
            "complete_us",
            format!("{} is before invoke_us {}", r.complete_us, r.invoke_us),
        ));
    }
    if r.outcome == Outcome::Fail {
        return Ok(Meaning::Nothing);
    }
    let optional = r.outcome == Outcome::Unknown;
    let value = || {
        r.value
            .as_deref()
            .ok_or_else(|| Problem::field("value", format!("missing on an {:?} write", r.outcome)))
    };
    Ok(match r.kind {
        OpKind::Read if optional => Meaning::Nothing,
        OpKind::Read => Meaning::Read(r.returned.as_deref()),
        // The record says this completed write did not take effect.
        OpKind::Update | OpKind::Insert if r.applied == Some(false) && !optional => {
            Meaning::Nothing
        }
        OpKind::Update | OpKind::Insert => Meaning::Write {
            value: value()?,
            optional,
        },
        OpKind::ReadModifyWrite => {
            let Some(expect) = &r.expect else {
                // Its read failed, so no swap was sent.
                return Ok(Meaning::Nothing);
            };
            let expect = expect.as_deref();
            let new = value()?;
            match (optional, r.applied) {
                (true, _) => Meaning::Cas {
                    expect,
                    new,
                    optional,
                },
                (false, Some(true)) => Meaning::Cas {
                    expect,
                    new,
                    optional,
                },
                (false, Some(false)) => Meaning::CasRefused { expect },
                (false, None) => {
                    return Err(Problem::field(
                        "applied",
                        "missing on a completed rmw (true: it swapped, false: it did not)",
                    ));
                }
            }
        }
    })
}

/// One operation of a key, ready for the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyOp {
    /// Its index in the records the check was given.
    pub record: usize,
    /// What it does to the register.
    pub action: Action,
    /// Unknown outcome: it may have taken effect at any time after `invoke`, or never.
    pub optional: bool,
    /// When it was invoked (µs).
    pub invoke: u64,
    /// When it completed (µs); `None` for unknown outcomes, whose end is open.
    pub complete: Option<u64>,
}

/// The operations of one key, in invocation order, with the key's value table.
#[derive(Debug, Clone)]
pub(crate) struct KeyHistory<'a> {
    /// The key.
    pub key: &'a str,
    /// Its operations, sorted by invocation.
    pub ops: Vec<KeyOp>,
    /// Interned values: value `v` (≥ 1) is `values[v - 1]`; [`ABSENT`] is the missing key.
    pub values: Vec<&'a str>,
    /// The register before the history.
    pub initial: Value,
}

impl KeyHistory<'_> {
    /// The text of an interned value (`None`: absent).
    pub(crate) fn text(&self, v: Value) -> Option<&str> {
        (v != ABSENT).then(|| self.values[v as usize - 1])
    }
}

/// Per-key value interning.
struct Interner<'a> {
    ids: HashMap<&'a str, Value>,
    values: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, v: Option<&'a str>) -> Value {
        let Some(v) = v else { return ABSENT };
        *self.ids.entry(v).or_insert_with(|| {
            self.values.push(v);
            self.values.len() as Value
        })
    }
}

/// Splits the records by key into [`KeyHistory`]s, dropping what constrains nothing. Keys
/// come out sorted. Returns the keys and the number of records dropped.
pub(crate) fn split_by_key<'a>(
    records: &'a [HistoryRecord],
    initial: &'a HashMap<String, String>,
) -> Result<(Vec<KeyHistory<'a>>, usize), CheckError> {
    let mut keys: HashMap<&'a str, (Interner<'a>, Vec<KeyOp>)> = HashMap::new();
    let mut dropped = 0;
    for (index, r) in records.iter().enumerate() {
        let meaning = judge(r).map_err(|problem| CheckError::Record {
            index,
            id: r.id,
            problem,
        })?;
        if meaning == Meaning::Nothing {
            dropped += 1;
            continue;
        }
        let (interner, ops) = keys.entry(r.key.as_str()).or_insert_with(|| {
            let mut interner = Interner {
                ids: HashMap::new(),
                values: Vec::new(),
            };
            // The initial value takes id 1, so it is interned before any record's.
            interner.id(initial.get(r.key.as_str()).map(String::as_str));
            (interner, Vec::new())
        });
        let (action, optional) = match meaning {
            // Counted and skipped above.
            Meaning::Nothing => continue,
            Meaning::Read(v) => (Action::Read(interner.id(v)), false),
            Meaning::Write { value, optional } => {
                (Action::Write(interner.id(Some(value))), optional)
            }
            Meaning::Cas {
                expect,
                new,
                optional,
            } => {
                let expect = interner.id(expect);
                let new = interner.id(Some(new));
                if optional && expect == new {
                    // It could never change the register, and it need not have happened.
                    dropped += 1;
                    continue;
                }
                (Action::Cas { expect, new }, optional)
            }
            Meaning::CasRefused { expect } => (
                Action::CasRefused {
                    expect: interner.id(expect),
                },
                false,
            ),
        };
        ops.push(KeyOp {
            record: index,
            action,
            optional,
            invoke: r.invoke_us,
            complete: (!optional).then_some(r.complete_us),
        });
    }
    let mut out: Vec<KeyHistory<'a>> = keys
        .into_iter()
        .map(|(key, (interner, mut ops))| {
            ops.sort_by_key(|o| (o.invoke, o.record));
            let initial = match initial.get(key) {
                Some(_) => 1,
                None => ABSENT,
            };
            KeyHistory {
                key,
                ops,
                values: interner.values,
                initial,
            }
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(b.key));
    Ok((out, dropped))
}
