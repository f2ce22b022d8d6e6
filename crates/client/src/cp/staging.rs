//! A private staging directory beside the destination, and moving a
//! finished copy into place.
//!
//! A copy from a pod is unpacked and verified in the staging directory
//! first; only then is it renamed into place (same filesystem, so each
//! rename is atomic). A refused or broken copy leaves nothing behind: the
//! staging directory is removed when dropped.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::error::CopyError;

/// Attempts at a fresh staging name before giving up.
const ATTEMPTS: usize = 16;

/// Deepest directory nesting a merge descends.
const MAX_DEPTH: usize = 4096;

/// A fresh, private (0700) directory, removed with everything in it when
/// dropped.
#[derive(Debug)]
pub(crate) struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Create one in `parent`.
    pub(crate) fn new(parent: &Path) -> Result<Self, CopyError> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let dir = parent.join(format!(".podlink-cp-{:016x}", rand::random::<u64>()));
            match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self { dir }),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
                Err(err) => return Err(CopyError::local(parent, err)),
            }
        }
        Err(CopyError::local(
            parent,
            last.unwrap_or_else(|| io::Error::other("no free staging name")),
        ))
    }

    /// Where the copy's top entry goes.
    pub(crate) fn item(&self) -> PathBuf {
        self.dir.join("item")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // remove_dir_all does not follow links, so a link in a refused
        // archive cannot make it delete anything outside.
        if let Err(err) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "could not remove the staging directory");
        }
    }
}

/// Move `staged` to `target`: a rename when `target` is absent or both are
/// non-directories (a file or link replaces the old one); a merge, entry by
/// entry, when both are directories. A directory never replaces a file, nor
/// the reverse.
pub(crate) fn commit(staged: &Path, target: &Path) -> Result<(), CopyError> {
    commit_at(staged, target, 0)
}

fn commit_at(staged: &Path, target: &Path, depth: usize) -> Result<(), CopyError> {
    let staged_dir = fs::symlink_metadata(staged)
        .map_err(|e| CopyError::local(staged, e))?
        .is_dir();
    let target_dir = match fs::symlink_metadata(target) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(CopyError::local(target, err)),
        Ok(meta) => Some(meta.is_dir()),
    };
    match (staged_dir, target_dir) {
        (_, None) | (false, Some(false)) => {
            fs::rename(staged, target).map_err(|e| CopyError::local(target, e))
        }
        (true, Some(true)) => {
            if depth >= MAX_DEPTH {
                return Err(CopyError::Conflict {
                    path: target.to_path_buf(),
                    reason: "directories nested too deeply to merge",
                });
            }
            for entry in fs::read_dir(staged).map_err(|e| CopyError::local(staged, e))? {
                let entry = entry.map_err(|e| CopyError::local(staged, e))?;
                commit_at(&entry.path(), &target.join(entry.file_name()), depth + 1)?;
            }
            Ok(())
        }
        (true, Some(false)) => Err(CopyError::Conflict {
            path: target.to_path_buf(),
            reason: "a directory arrived where a file (or link) exists; remove it or choose another destination",
        }),
        (false, Some(true)) => Err(CopyError::Conflict {
            path: target.to_path_buf(),
            reason: "a file arrived where a directory exists; remove it or choose another destination",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_replace() {
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path().to_path_buf();
        fs::create_dir_all(base.join("target/keep")).unwrap();
        fs::write(base.join("target/keep/old"), "old").unwrap();
        fs::write(base.join("target/file"), "before").unwrap();
        let target = base.join("target");
        {
            let staging = Staging::new(&base).unwrap();
            let item = staging.item();
            fs::create_dir_all(item.join("keep")).unwrap();
            fs::write(item.join("keep/new"), "new").unwrap();
            fs::write(item.join("file"), "after").unwrap();
            commit(&item, &target).unwrap();
        }
        assert_eq!(fs::read_to_string(target.join("keep/old")).unwrap(), "old");
        assert_eq!(fs::read_to_string(target.join("keep/new")).unwrap(), "new");
        assert_eq!(fs::read_to_string(target.join("file")).unwrap(), "after");
        let left: Vec<_> = fs::read_dir(&base).unwrap().collect();
        assert_eq!(left.len(), 1, "staging directory removed");
        {
            let staging = Staging::new(&base).unwrap();
            fs::create_dir(staging.item()).unwrap();
            let err = commit(&staging.item(), &target.join("file")).unwrap_err();
            assert!(matches!(err, CopyError::Conflict { .. }), "{err}");
        }
    }
}
