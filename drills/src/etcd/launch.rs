//! What running etcd needs to know: where its binary is, the timings asked of it, and the
//! name it knows each node by. Its flag set is the store's launch line
//! (`crate::store::etcd`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use target_cluster::typ::NodeId;

use super::EtcdError;

/// The timings and extra flags of every member.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    /// `--heartbeat-interval`; etcd's default (100 ms) when not given.
    pub heartbeat: Option<Duration>,
    /// `--election-timeout`; etcd's default (1000 ms) when not given.
    pub election_timeout: Option<Duration>,
    /// Extra flags for every member (`--snapshot-count=1000`, ...).
    pub extra_flags: Vec<String>,
}

/// The etcd binary to run: `explicit` if given (it must exist), else `etcd` on `PATH`.
pub fn find_etcd(explicit: Option<&Path>) -> Result<PathBuf, EtcdError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(EtcdError::MissingBinary(path.display().to_string()))
        };
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("etcd"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| EtcdError::MissingBinary("etcd on PATH".into()))
}

/// The name etcd knows node `id` by.
pub fn member_name(id: NodeId) -> String {
    format!("m{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_debian_package() {
        let e = find_etcd(Some(Path::new("/nonexistent/etcd"))).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("etcd-server"), "{text}");
        assert!(text.contains("/nonexistent/etcd"), "{text}");
    }
}
