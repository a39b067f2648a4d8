//! Every JSON file raftdrill writes says which raftdrill wrote it and in which format:
//! `raftdrill_version` and `schema_version` lead the object, so an archived result can be told
//! apart from an older or a newer one. Files written before these fields existed have neither;
//! readers accept them (see [`Stamp`]).

use serde::{Deserialize, Serialize};

/// The version of this raftdrill.
pub const RAFTDRILL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The format version of each file; each is bumped when its schema under `results/` changes
/// in a way an old reader would misread.
pub mod schema {
    /// `summary.json` of a run (`results/summary.schema.json`).
    pub const SUMMARY: u32 = 1;
    /// `summary.json` of a repeat (`results/repeat.schema.json`).
    pub const REPEAT: u32 = 1;
    /// `suite.json`.
    pub const SUITE: u32 = 1;
    /// `capacity.json` (`results/capacity.schema.json`).
    pub const CAPACITY: u32 = 1;
    /// `compare.json`.
    pub const COMPARE: u32 = 1;
    /// `linearizability.json`.
    pub const LINEARIZABILITY: u32 = 1;
}

/// `body` with the two version fields in front of its own.
#[derive(Serialize)]
struct Versioned<'a, T: ?Sized> {
    raftdrill_version: &'static str,
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// `body` as pretty JSON, led by `raftdrill_version` and `schema_version`.
pub fn to_json<T: Serialize + ?Sized>(body: &T, schema_version: u32) -> Vec<u8> {
    serde_json::to_vec_pretty(&Versioned {
        raftdrill_version: RAFTDRILL_VERSION,
        schema_version,
        body,
    })
    .expect("raftdrill's outputs serialize")
}

/// A file whose body is `T`, as [`to_json`] writes it: what its schema describes.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct Doc<T> {
    /// The raftdrill that wrote the file.
    raftdrill_version: String,
    /// The format of the file; bumped when a change would mislead an old reader.
    schema_version: u32,
    #[serde(flatten)]
    body: T,
}

/// The JSON schema (draft 2020-12) of a file whose body is `T` and whose format is
/// `schema_version`, generated from the Rust types: the one the checked-in
/// `results/<name>.schema.json` must equal.
pub fn schema_of<T: schemars::JsonSchema>(title: &str, schema_version: u32) -> serde_json::Value {
    // The contract of what raftdrill writes: a field skipped when empty is not required.
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut s = generator.into_root_schema_for::<Doc<T>>().to_value();
    s["title"] = title.into();
    s["properties"]["schema_version"] = serde_json::json!({
        "const": schema_version,
        "description": "The format of the file; bumped when a change would mislead an old reader."
    });
    s
}

/// Checks that `results/<name>` holds `generated` (pretty JSON and a newline), or writes it
/// there with `RAFTDRILL_WRITE_SCHEMAS=1`: the checked-in schema cannot drift from the types.
#[cfg(test)]
pub fn assert_checked_in(name: &str, generated: &serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../results")
        .join(name);
    let text = serde_json::to_string_pretty(generated).unwrap() + "\n";
    if std::env::var_os("RAFTDRILL_WRITE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "results/{name} differs from the schema of the Rust types; write it again with \
         RAFTDRILL_WRITE_SCHEMAS=1 cargo test -p drills --lib, and commit it"
    );
}

/// The schema generated from `T` for `results/<name>`, checked to equal the checked-in one.
#[cfg(test)]
pub fn checked_in_schema<T: schemars::JsonSchema>(
    name: &str,
    title: &str,
    version: u32,
) -> serde_json::Value {
    let schema = schema_of::<T>(title, version);
    assert_checked_in(name, &schema);
    schema
}

/// The version fields of a file as read back; both absent in a file of an older raftdrill.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Stamp {
    /// The raftdrill that wrote it.
    #[serde(default)]
    pub raftdrill_version: Option<String>,
    /// Its format.
    #[serde(default)]
    pub schema_version: Option<u32>,
}

impl Stamp {
    /// A note for a reader when the file is not of this raftdrill's format: older (no
    /// version) or newer than `current`.
    pub fn note(&self, what: &str, current: u32) -> Option<String> {
        match self.schema_version {
            None => Some(format!(
                "{what} was written by a raftdrill older than versioned outputs (no schema_version); \
                 read as far as its fields allow"
            )),
            Some(v) if v > current => Some(format!(
                "{what} has schema_version {v} (raftdrill {}), newer than this raftdrill's {current}; \
                 fields it does not know are left out",
                self.raftdrill_version.as_deref().unwrap_or("?")
            )),
            Some(_) => None,
        }
    }
}

/// The note for the JSON file at `path` (see [`Stamp::note`]); none when it is of this format,
/// or cannot be read (its reader then says why).
pub fn note_for(path: &std::path::Path, current: u32) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let stamp: Stamp = serde_json::from_slice(&text).ok()?;
    stamp.note(&path.display().to_string(), current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        scenario: &'static str,
        n: u32,
    }

    #[test]
    fn the_version_fields_lead_and_read_back() {
        let json = String::from_utf8(to_json(
            &Body {
                scenario: "x",
                n: 3,
            },
            7,
        ))
        .unwrap();
        let first = json.lines().nth(1).unwrap();
        assert!(first.contains("\"raftdrill_version\""), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["schema_version"], 7);
        assert_eq!(v["raftdrill_version"], RAFTDRILL_VERSION);
        assert_eq!(v["scenario"], "x");
        let s: Stamp = serde_json::from_str(&json).unwrap();
        assert_eq!(s.schema_version, Some(7));
        assert_eq!(s.note("summary.json", 7), None);
        assert!(s.note("summary.json", 6).unwrap().contains("newer"));
        let old: Stamp = serde_json::from_str(r#"{"scenario": "x"}"#).unwrap();
        assert!(old.note("summary.json", 1).unwrap().contains("older"));
    }
}
