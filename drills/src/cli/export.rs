//! `export`: a scenario's faults in another tool's format.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `raftdrill export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The format.
    #[command(subcommand)]
    pub format: ExportFormat,
}

/// The formats `export` writes.
#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// A Chaos Mesh Workflow (YAML) that applies the scenario's faults on its schedule to the
    /// pods of a store in Kubernetes. Chaos Mesh picks pods by label: give the store's labels,
    /// and for faults aimed at the leader or a follower the labels your operator puts on them.
    /// Faults with no equivalent are refused by name unless --skip-unsupported.
    ChaosMesh(ChaosMeshArgs),
}

/// `raftdrill export chaos-mesh`.
#[derive(Debug, Args)]
pub struct ChaosMeshArgs {
    /// A scenario file or a built-in name (default: leader-kill).
    pub scenario: Option<String>,
    /// Labels every pod of the store carries, KEY=VALUE (repeatable), e.g. app=mystore.
    #[arg(long, required = true, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub selector: Vec<(String, String)>,
    /// The namespace of the store's pods (and of the Workflow).
    #[arg(long, default_value = "default", value_parser = parse_name)]
    pub namespace: String,
    /// The StatefulSet whose pod NAME-(N-1) is node N (for node:N targets and partition groups).
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub statefulset: Option<String>,
    /// Labels only the leader's pod carries (for `leader` targets), KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub leader_label: Vec<(String, String)>,
    /// Labels only followers' pods carry (for `follower` and `minority`), KEY=VALUE.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub follower_label: Vec<(String, String)>,
    /// Where the store's data volume is mounted in its pods (for disk faults), e.g. /var/lib/etcd.
    #[arg(long, value_name = "PATH")]
    pub volume_path: Option<String>,
    /// The Workflow's name (default: raftdrill-<scenario>).
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,
    /// Leave out the faults with no Chaos Mesh equivalent (listed on stderr and in the
    /// Workflow's annotations) instead of refusing the scenario.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Write the YAML here instead of stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// A Kubernetes object name (a DNS-1123 label): lower-case letters, digits and `-`, starting
/// and ending with a letter or digit, at most 63 characters.
pub fn parse_name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    match ok {
        true => Ok(text.to_string()),
        false => Err(format!(
            "{text:?} is not a Kubernetes name (lower-case letters, digits and '-', at most 63)"
        )),
    }
}

/// A Kubernetes label, KEY=VALUE: the key is an optional DNS prefix and `/`, then a name of
/// letters, digits, `-`, `_`, `.`; the value is such a name (or empty), at most 63 characters.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    let name_ok = |s: &str| {
        s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
    let prefix_ok = prefix.is_empty()
        || (prefix.len() <= 253
            && prefix.split('.').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            }));
    if !prefix_ok || !name_ok(name) {
        return Err(format!("{key:?} is not a Kubernetes label key"));
    }
    if !value.is_empty() && !name_ok(value) {
        return Err(format!("{value:?} is not a Kubernetes label value"));
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_as_kubernetes_does() {
        assert_eq!(
            parse_label("app=mystore").unwrap(),
            ("app".into(), "mystore".into())
        );
        assert!(parse_label("app.kubernetes.io/name=etcd").is_ok());
        assert!(parse_label("tier=").is_ok());
        assert!(parse_name("my-store-0").is_ok());
        for bad in ["", "My", "a_b", "-a", "a-", &"x".repeat(64)] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
        for bad in ["app", "=x", "a b=c", "app=-x", "Bad_Prefix/x=y", "app=x y"] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
    }
}
