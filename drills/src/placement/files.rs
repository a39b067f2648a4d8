//! Reading and changing a node's files where the node runs: on this machine with `std::fs`,
//! on a host through SSH. The `corrupt` fault uses these on a stopped node.

use std::path::{Path, PathBuf};

use target_cluster::typ::NodeId;

use super::{Placement, PlacementError};

/// A change to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patch {
    /// Overwrite `bytes` at `offset` (the file keeps its length when the range lies within it).
    Write {
        /// Where, in bytes from the start.
        offset: u64,
        /// What.
        bytes: Vec<u8>,
    },
    /// Cut the file to `len` bytes.
    Truncate {
        /// Its new length.
        len: u64,
    },
}

impl Placement {
    /// The files in `dir` on node `id`'s machine whose names end in `suffix`, with their
    /// sizes, by name. A folder that does not exist holds none.
    pub async fn list_files(
        &self,
        id: NodeId,
        dir: &Path,
        suffix: &str,
    ) -> Result<Vec<(PathBuf, u64)>, PlacementError> {
        let mut files = match self {
            Placement::Local(_) => list_here(dir, suffix)?,
            Placement::Hosts(h) => h.list_files(id, dir, suffix).await?,
        };
        files.sort();
        Ok(files)
    }

    /// The whole of file `path` on node `id`'s machine.
    pub async fn read_file(&self, id: NodeId, path: &Path) -> Result<Vec<u8>, PlacementError> {
        match self {
            Placement::Local(_) => std::fs::read(path).map_err(|e| PlacementError::dir(path, e)),
            Placement::Hosts(h) => Ok(h.read_file(id, path).await?),
        }
    }

    /// Applies `patch` to file `path` on node `id`'s machine.
    pub async fn patch_file(
        &self,
        id: NodeId,
        path: &Path,
        patch: &Patch,
    ) -> Result<(), PlacementError> {
        match self {
            Placement::Local(_) => {
                patch_here(path, patch).map_err(|e| PlacementError::dir(path, e))
            }
            Placement::Hosts(h) => match patch {
                Patch::Write { offset, bytes } => Ok(h.write_at(id, path, *offset, bytes).await?),
                Patch::Truncate { len } => Ok(h.truncate(id, path, *len).await?),
            },
        }
    }
}

fn list_here(dir: &Path, suffix: &str) -> Result<Vec<(PathBuf, u64)>, PlacementError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PlacementError::dir(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PlacementError::dir(dir, e))?;
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|e| PlacementError::dir(&path, e))?;
        if meta.is_file() && path.to_string_lossy().ends_with(suffix) {
            out.push((path, meta.len()));
        }
    }
    Ok(out)
}

fn patch_here(path: &Path, patch: &Patch) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    match patch {
        Patch::Write { offset, bytes } => {
            file.seek(SeekFrom::Start(*offset))?;
            file.write_all(bytes)?;
        }
        Patch::Truncate { len } => file.set_len(*len)?,
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_overwrites_in_place_or_cuts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.wal");
        std::fs::write(&f, b"abcdef").unwrap();
        std::fs::write(dir.path().join("b.spare"), b"x").unwrap();
        let listed = list_here(dir.path(), ".wal").unwrap();
        assert_eq!(listed, vec![(f.clone(), 6)]);
        assert!(
            list_here(&dir.path().join("none"), ".wal")
                .unwrap()
                .is_empty()
        );
        let write = Patch::Write {
            offset: 2,
            bytes: vec![b'X', b'Y'],
        };
        patch_here(&f, &write).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"abXYef");
        patch_here(&f, &Patch::Truncate { len: 3 }).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"abX");
    }
}
