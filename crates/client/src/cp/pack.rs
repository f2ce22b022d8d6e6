//! Packing a local file or directory tree for the pod.
//!
//! The tree is walked first (so the size is known for the progress bar and
//! nothing half-planned is sent), never following a link below the path the
//! user named. Links that stay inside the tree travel as links; links that
//! point outside it, and devices, FIFOs and sockets, are skipped and
//! reported, so a copy never carries a file from outside what was asked for.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use tar::{EntryType, Header, HeaderMode};

use super::error::CopyError;

/// Most entries one copy may hold.
const MAX_ENTRIES: usize = 10_000_000;

/// Size of a tar block.
const BLOCK: u64 = 512;

/// Something left out of a copy to the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The local path.
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// Why a local path was left out of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A symbolic link pointing outside the copied tree.
    SymlinkEscapes,
    /// A device, FIFO or socket.
    SpecialFile,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.reason {
            SkipReason::SymlinkEscapes => "symbolic link pointing outside the copied tree",
            SkipReason::SpecialFile => "special file (device, FIFO or socket)",
        };
        write!(f, "skipped {}: {why}", self.path.display())
    }
}

enum Kind {
    Directory,
    File(u64),
    Symlink(PathBuf),
}

struct Planned {
    /// The name in the archive: the top name, then the path below it.
    name: PathBuf,
    full: PathBuf,
    kind: Kind,
    meta: Metadata,
}

/// What will be sent, walked in advance.
pub(crate) struct Plan {
    /// The top name in the archive (the source's base name).
    pub(crate) name: String,
    entries: Vec<Planned>,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) files: u64,
    pub(crate) directories: u64,
    pub(crate) symlinks: u64,
    /// Bytes of file content.
    pub(crate) content_bytes: u64,
    /// The archive's size, or slightly more when long names need extension
    /// headers: never less, so an upload can announce it and pad to it.
    pub(crate) archive_bytes: u64,
}

/// Walk `source` (following it if it is itself a link, nothing below it).
pub(crate) fn plan(source: &Path) -> Result<Plan, CopyError> {
    let meta = fs::metadata(source).map_err(|e| CopyError::local(source, e))?;
    let named = match source.file_name() {
        Some(name) => PathBuf::from(name),
        None => fs::canonicalize(source)
            .map_err(|e| CopyError::local(source, e))?
            .file_name()
            .map(PathBuf::from)
            .ok_or_else(|| CopyError::InvalidSpec {
                spec: source.display().to_string(),
                reason: "cannot copy the root directory; name a directory below it".into(),
            })?,
    };
    let name = named
        .to_str()
        .filter(|n| *n != "..")
        .ok_or_else(|| CopyError::InvalidSpec {
            spec: source.display().to_string(),
            reason: "the last component must be a UTF-8 name (not '..')".into(),
        })?
        .to_owned();
    let mut plan = Plan {
        name: name.clone(),
        entries: Vec::new(),
        skipped: Vec::new(),
        files: 0,
        directories: 0,
        symlinks: 0,
        content_bytes: 0,
        archive_bytes: 2 * BLOCK,
    };
    let mut todo = vec![(PathBuf::from(&name), source.to_path_buf(), meta)];
    while let Some((name, full, meta)) = todo.pop() {
        if plan.entries.len() >= MAX_ENTRIES {
            return Err(CopyError::InvalidSpec {
                spec: source.display().to_string(),
                reason: format!("more than {MAX_ENTRIES} entries"),
            });
        }
        let kind = if meta.is_dir() {
            let mut children = Vec::new();
            for child in fs::read_dir(&full).map_err(|e| CopyError::local(&full, e))? {
                let child = child.map_err(|e| CopyError::local(&full, e))?;
                let path = child.path();
                let child_meta =
                    fs::symlink_metadata(&path).map_err(|e| CopyError::local(&path, e))?;
                children.push((name.join(child.file_name()), path, child_meta));
            }
            // Reverse order on the stack: entries go out sorted by name.
            children.sort_by(|a, b| b.0.cmp(&a.0));
            todo.extend(children);
            plan.directories += 1;
            Kind::Directory
        } else if meta.is_file() {
            plan.files += 1;
            plan.content_bytes += meta.len();
            plan.archive_bytes += meta.len().div_ceil(BLOCK) * BLOCK;
            Kind::File(meta.len())
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(|e| CopyError::local(&full, e))?;
            if !stays_inside(&name, &target) {
                plan.skipped.push(Skipped {
                    path: full,
                    reason: SkipReason::SymlinkEscapes,
                });
                continue;
            }
            plan.symlinks += 1;
            plan.archive_bytes += long_name_bytes(target.as_os_str().len());
            Kind::Symlink(target)
        } else {
            plan.skipped.push(Skipped {
                path: full,
                reason: SkipReason::SpecialFile,
            });
            continue;
        };
        plan.archive_bytes += BLOCK + long_name_bytes(name.as_os_str().len());
        plan.entries.push(Planned {
            name,
            full,
            kind,
            meta,
        });
    }
    Ok(plan)
}

/// At most what a GNU long-name (or long-link) entry adds for a name of
/// `len` bytes, which the header's 100-byte field cannot hold: its own header
/// block plus the name, a `/` for a directory and the NUL, in whole blocks.
fn long_name_bytes(len: usize) -> u64 {
    if len < 100 {
        0
    } else {
        BLOCK + (len as u64 + 2).div_ceil(BLOCK) * BLOCK
    }
}

/// Whether a link at archive name `name` (top name first) pointing at
/// `target` stays inside the tree, judged by its text.
fn stays_inside(name: &Path, target: &Path) -> bool {
    // The top itself is never a link here (it was followed).
    let Some(mut depth) = name.components().count().checked_sub(2) else {
        return false;
    };
    // `depth` is now how deep the link's directory is below the top.
    for component in target.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return false,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::Normal(_) => depth += 1,
        }
    }
    !target.as_os_str().is_empty()
}

/// Reads exactly `left` bytes, failing if the file shrinks meanwhile (a
/// short entry would corrupt the archive).
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being copied",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Write the planned archive to `out`.
pub(crate) fn write(plan: &Plan, out: impl Write) -> Result<(), CopyError> {
    let mut builder = tar::Builder::new(out);
    for entry in &plan.entries {
        // The writer fails only when the stream to the pod is gone.
        let local = |e: io::Error| match e.kind() {
            io::ErrorKind::BrokenPipe => CopyError::Stream(e),
            _ => CopyError::local(&entry.full, e),
        };
        let mut header = Header::new_gnu();
        header.set_metadata_in_mode(&entry.meta, HeaderMode::Complete);
        match &entry.kind {
            Kind::Directory => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, &entry.name, io::empty())
            }
            Kind::File(size) => {
                let file = File::open(&entry.full).map_err(local)?;
                header.set_entry_type(EntryType::Regular);
                header.set_size(*size);
                let data = Exact {
                    inner: file,
                    left: *size,
                };
                builder.append_data(&mut header, &entry.name, data)
            }
            Kind::Symlink(target) => {
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &entry.name, target)
            }
        }
        .map_err(local)?;
    }
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(CopyError::Stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_containment_by_text() {
        let inside = |name: &str, target: &str| stays_inside(Path::new(name), Path::new(target));
        assert!(inside("top/a", "b"));
        assert!(inside("top/d/a", "../b"));
        assert!(inside("top/d/a", "./x/../../y"));
        assert!(!inside("top/a", "../x"));
        assert!(!inside("top/d/a", "../../x"));
        assert!(!inside("top/a", "/etc/passwd"));
        assert!(!inside("top", "x"));
        assert!(!inside("top/a", ""));
    }
}
