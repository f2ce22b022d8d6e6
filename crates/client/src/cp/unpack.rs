//! Safe extraction of a tar stream from a pod into a fresh staging
//! directory that only this code writes to.
//!
//! tar's own unpack logic is never trusted with names. Every entry's name is
//! normalised and must stay under the requested path (no absolute names, no
//! `..`); parents are created here and an entry is never written through a
//! link or a non-directory; hard links must name a regular file already in
//! the copy; devices and FIFOs are refused; and once the whole archive is in,
//! every symbolic link is resolved against the links the archive created and
//! must stay inside the copy. Any violation fails the whole copy (the caller
//! discards the staging directory), so a hostile archive writes nothing.
//!
//! Extension headers (GNU long names, PAX) are read here too, with a size
//! bound, instead of by the tar crate, which would buffer any size a header
//! announces.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use tar::EntryType;

use super::error::{CopyError, UnsafeReason};

/// Largest extension header (long name, long link, PAX records) accepted.
const MAX_EXTENSION: u64 = 64 * 1024;

/// Most entries one archive may hold.
const MAX_ENTRIES: usize = 10_000_000;

/// Most link substitutions while resolving one symbolic link (loops end here).
const MAX_LINK_STEPS: usize = 4096;

/// What an extraction produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unpacked {
    /// Regular files (hard links included).
    pub(crate) files: u64,
    /// Directories.
    pub(crate) directories: u64,
    /// Symbolic links.
    pub(crate) symlinks: u64,
    /// Bytes of file content written.
    pub(crate) content_bytes: u64,
}

/// Extract the archive read from `reader` to `root`, which must not exist
/// yet (its parent must). Entries must be named `top` or `top/…` (any name
/// when `top` is `.`); `top` itself lands at `root`.
pub(crate) fn unpack(reader: impl Read, top: &str, root: &Path) -> Result<Unpacked, CopyError> {
    let mut unpacker = Unpacker {
        root,
        top: (top != ".").then(|| OsStr::new(top)),
        dirs: HashSet::new(),
        dir_modes: Vec::new(),
        links: HashMap::new(),
        done: Unpacked::default(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(archive_error)?.raw(true);
    let mut pending = Extensions::default();
    for (index, entry) in entries.enumerate() {
        if index >= MAX_ENTRIES {
            return Err(CopyError::Archive(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        let mut entry = entry.map_err(archive_error)?;
        match entry.header().entry_type() {
            EntryType::GNULongName => pending.long_name = Some(read_extension(&mut entry)?),
            EntryType::GNULongLink => pending.long_link = Some(read_extension(&mut entry)?),
            EntryType::XHeader => pending.apply_pax(&read_extension(&mut entry)?)?,
            EntryType::XGlobalHeader => {
                read_extension(&mut entry)?;
            }
            _ => unpacker.entry(&mut entry, std::mem::take(&mut pending))?,
        }
    }
    if pending != Extensions::default() {
        return Err(CopyError::Archive(
            "an extension header describes no entry".into(),
        ));
    }
    unpacker.finish()
}

fn archive_error(err: io::Error) -> CopyError {
    CopyError::Archive(err.to_string())
}

/// Read an extension header's data, refusing more than [`MAX_EXTENSION`].
fn read_extension(entry: &mut impl Read) -> Result<Vec<u8>, CopyError> {
    let mut data = Vec::new();
    entry
        .take(MAX_EXTENSION + 1)
        .read_to_end(&mut data)
        .map_err(archive_error)?;
    if data.len() as u64 > MAX_EXTENSION {
        return Err(CopyError::Archive(format!(
            "extension header larger than {MAX_EXTENSION} bytes"
        )));
    }
    // GNU long names are NUL-terminated.
    while data.last() == Some(&0) {
        data.pop();
    }
    Ok(data)
}

/// Long names and PAX records that apply to the next real entry.
#[derive(Debug, Default, PartialEq, Eq)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

impl Extensions {
    fn apply_pax(&mut self, data: &[u8]) -> Result<(), CopyError> {
        for record in tar::PaxExtensions::new(data) {
            let record = record.map_err(archive_error)?;
            let value = record.value_bytes();
            match record.key_bytes() {
                b"path" => self.pax_path = Some(value.to_vec()),
                b"linkpath" => self.pax_link = Some(value.to_vec()),
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| CopyError::Archive("bad PAX size record".into()))?;
                    self.pax_size = Some(size);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

struct Unpacker<'a> {
    root: &'a Path,
    top: Option<&'a OsStr>,
    /// Paths (relative to `root`) known to be real directories made here.
    dirs: HashSet<PathBuf>,
    /// Directories from the archive and their modes, applied at the end.
    dir_modes: Vec<(PathBuf, u32)>,
    /// Symbolic links made here: path relative to `root` → target.
    links: HashMap<PathBuf, PathBuf>,
    done: Unpacked,
}

impl Unpacker<'_> {
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        ext: Extensions,
    ) -> Result<(), CopyError> {
        let header = entry.header().clone();
        let name = match ext.pax_path.or(ext.long_name) {
            Some(name) => name,
            None => header.path_bytes().into_owned(),
        };
        let shown = String::from_utf8_lossy(&name).into_owned();
        let size = header.entry_size().map_err(archive_error)?;
        if ext.pax_size.is_some_and(|pax| pax != size) {
            return Err(CopyError::Archive(format!(
                "{shown}: PAX size override is not supported"
            )));
        }
        let rel = self.relative(&name, &shown)?;
        let mode = header.mode().map_err(archive_error)? & 0o777;
        match header.entry_type() {
            EntryType::Directory => self.directory(&rel, &shown, mode),
            EntryType::Regular | EntryType::Continuous => {
                let mtime = header.mtime().map_err(archive_error)?;
                self.file(&rel, &shown, entry, size, mode, mtime)
            }
            EntryType::Symlink => {
                let target = match ext.pax_link.or(ext.long_link) {
                    Some(target) => target,
                    None => header.link_name_bytes().unwrap_or_default().into_owned(),
                };
                self.symlink(&rel, &shown, &target)
            }
            EntryType::Link => {
                let target = match ext.pax_link.or(ext.long_link) {
                    Some(target) => target,
                    None => header.link_name_bytes().unwrap_or_default().into_owned(),
                };
                self.hard_link(&rel, &shown, &target)
            }
            EntryType::GNUSparse => Err(CopyError::Archive(format!(
                "{shown}: sparse files are not supported"
            ))),
            _ => Err(CopyError::unsafe_entry(shown, UnsafeReason::SpecialFile)),
        }
    }

    /// `rel` below the root (the root itself when empty: `join("")` would
    /// add a trailing slash, which only a directory satisfies).
    fn full(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(rel)
        }
    }

    /// The entry's path relative to `root`, or why it is refused.
    fn relative(&self, name: &[u8], shown: &str) -> Result<PathBuf, CopyError> {
        let mut parts = Vec::new();
        for component in Path::new(OsStr::from_bytes(name)).components() {
            match component {
                Component::Prefix(_) | Component::RootDir => {
                    return Err(CopyError::unsafe_entry(shown, UnsafeReason::AbsolutePath))
                }
                Component::ParentDir => {
                    return Err(CopyError::unsafe_entry(
                        shown,
                        UnsafeReason::ParentComponent,
                    ))
                }
                Component::CurDir => {}
                Component::Normal(part) => parts.push(part),
            }
        }
        let rest = match self.top {
            None => &parts[..],
            Some(top) if parts.first() == Some(&top) => &parts[1..],
            Some(_) => {
                return Err(CopyError::unsafe_entry(
                    shown,
                    UnsafeReason::OutsideRequestedPath,
                ))
            }
        };
        Ok(rest.iter().collect())
    }

    /// Make sure every parent of `rel` is a real directory made here
    /// (creating missing ones), and clear the way for a new entry at `rel`.
    /// Returns the full path.
    fn prepare(&mut self, rel: &Path, shown: &str, dir: bool) -> Result<PathBuf, CopyError> {
        let parents: Vec<&Path> = rel.ancestors().skip(1).collect();
        for parent in parents.into_iter().rev() {
            if self.dirs.contains(parent) {
                continue;
            }
            let full = self.full(parent);
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(CopyError::unsafe_entry(shown, UnsafeReason::ThroughLink)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&full).map_err(|e| CopyError::local(&full, e))?;
                }
                Err(err) => return Err(CopyError::local(full, err)),
            }
            self.dirs.insert(parent.to_path_buf());
        }
        let full = self.full(rel);
        match fs::symlink_metadata(&full) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(CopyError::local(full, err)),
            Ok(meta) if meta.is_dir() && dir => {}
            Ok(meta) if meta.is_dir() || dir => {
                return Err(CopyError::Archive(format!(
                    "{shown}: appears both as a directory and as something else"
                )))
            }
            // A later entry of the same name replaces the earlier one, as tar does.
            Ok(_) => {
                fs::remove_file(&full).map_err(|e| CopyError::local(&full, e))?;
                self.links.remove(rel);
            }
        }
        Ok(full)
    }

    fn directory(&mut self, rel: &Path, shown: &str, mode: u32) -> Result<(), CopyError> {
        let full = self.prepare(rel, shown, true)?;
        if !self.dirs.contains(rel) {
            match fs::create_dir(&full) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(CopyError::local(full, err)),
            }
            self.dirs.insert(rel.to_path_buf());
        }
        self.dir_modes.push((rel.to_path_buf(), mode));
        self.done.directories += 1;
        Ok(())
    }

    fn file(
        &mut self,
        rel: &Path,
        shown: &str,
        data: &mut impl Read,
        size: u64,
        mode: u32,
        mtime: u64,
    ) -> Result<(), CopyError> {
        let full = self.prepare(rel, shown, false)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)
            .map_err(|e| CopyError::local(&full, e))?;
        let written = io::copy(data, &mut file).map_err(|e| match e.kind() {
            io::ErrorKind::Other | io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                archive_error(e)
            }
            _ => CopyError::local(&full, e),
        })?;
        if written != size {
            return Err(CopyError::Archive(format!(
                "{shown}: truncated ({written} of {size} bytes)"
            )));
        }
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| CopyError::local(&full, e))?;
        // A time past what the system can represent is left unset.
        if let Some(modified) = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(mtime)) {
            file.set_modified(modified)
                .map_err(|e| CopyError::local(&full, e))?;
        }
        self.done.files += 1;
        self.done.content_bytes += written;
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, shown: &str, target: &[u8]) -> Result<(), CopyError> {
        let target = PathBuf::from(OsStr::from_bytes(target));
        if target.as_os_str().is_empty() || target.has_root() {
            return Err(CopyError::unsafe_entry(shown, UnsafeReason::SymlinkEscapes));
        }
        let full = self.prepare(rel, shown, false)?;
        std::os::unix::fs::symlink(&target, &full).map_err(|e| CopyError::local(&full, e))?;
        self.links.insert(rel.to_path_buf(), target);
        self.done.symlinks += 1;
        Ok(())
    }

    fn hard_link(&mut self, rel: &Path, shown: &str, target: &[u8]) -> Result<(), CopyError> {
        let outside = || CopyError::unsafe_entry(shown, UnsafeReason::HardlinkOutside);
        let target_shown = String::from_utf8_lossy(target).into_owned();
        let target_rel = self
            .relative(target, &target_shown)
            .map_err(|_| outside())?;
        // Its parents must be directories made here, so `link(2)` resolves no
        // link on the way to it.
        if target_rel
            .ancestors()
            .skip(1)
            .any(|parent| !self.dirs.contains(parent))
        {
            return Err(outside());
        }
        let source = self.full(&target_rel);
        match fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_file() => {}
            _ => return Err(outside()),
        }
        let full = self.prepare(rel, shown, false)?;
        fs::hard_link(&source, &full).map_err(|e| CopyError::local(&full, e))?;
        self.done.files += 1;
        Ok(())
    }

    /// Check every symbolic link against the final tree, then apply the
    /// directories' modes (kept owner-writable so the copy can be moved
    /// into place).
    fn finish(self) -> Result<Unpacked, CopyError> {
        for link in self.links.keys() {
            if !resolves_inside(&self.links, link) {
                return Err(CopyError::unsafe_entry(
                    link.display().to_string(),
                    UnsafeReason::SymlinkEscapes,
                ));
            }
        }
        for (rel, mode) in self.dir_modes.iter().rev() {
            let full = self.full(rel);
            fs::set_permissions(&full, fs::Permissions::from_mode(mode | 0o700))
                .map_err(|e| CopyError::local(&full, e))?;
        }
        Ok(self.done)
    }
}

/// One step of resolving a link target.
enum Step {
    Up,
    Into(OsString),
}

fn steps(target: &Path) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for component in target.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return None,
            Component::CurDir => {}
            Component::ParentDir => steps.push(Step::Up),
            Component::Normal(part) => steps.push(Step::Into(part.to_owned())),
        }
    }
    Some(steps)
}

/// Whether the link at `link` (relative to the copy's root) resolves inside
/// the copy, following the links in `links` as the kernel would. A link at
/// the root itself points outside by definition; loops count as outside.
fn resolves_inside(links: &HashMap<PathBuf, PathBuf>, link: &Path) -> bool {
    let (Some(parent), Some(target)) = (link.parent(), links.get(link)) else {
        return false;
    };
    let Some(mut todo) = steps(target) else {
        return false;
    };
    todo.reverse();
    let mut at = parent.to_path_buf();
    let mut budget = MAX_LINK_STEPS;
    while let Some(step) = todo.pop() {
        budget = match budget.checked_sub(1) {
            Some(left) => left,
            None => return false,
        };
        match step {
            Step::Up => {
                if !at.pop() {
                    return false;
                }
            }
            Step::Into(part) => {
                at.push(part);
                if let Some(next) = links.get(&at) {
                    at.pop();
                    let Some(more) = steps(next) else {
                        return false;
                    };
                    todo.extend(more.into_iter().rev());
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&str, &str)]) -> HashMap<PathBuf, PathBuf> {
        pairs
            .iter()
            .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
            .collect()
    }

    fn header(kind: EntryType, size: u64, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_mtime(1_000_000_000);
        header
    }

    #[test]
    fn benign_archive_with_every_kind_of_entry() {
        let mut builder = tar::Builder::new(Vec::new());
        // Longer than a header's 100 bytes: a GNU long-name entry.
        let deep = format!("{}/{}/file", "a".repeat(80), "b".repeat(80));
        let long = format!("top/{deep}");
        builder
            .append_data(
                &mut header(EntryType::Directory, 0, 0o750),
                "top/",
                io::empty(),
            )
            .unwrap();
        builder
            .append_data(
                &mut header(EntryType::Regular, 5, 0o4755),
                "top/sub/exe",
                &b"hello"[..],
            )
            .unwrap();
        builder
            .append_data(&mut header(EntryType::Regular, 2, 0o644), &long, &b"hi"[..])
            .unwrap();
        builder
            .append_link(
                &mut header(EntryType::Link, 0, 0o644),
                "top/hard",
                "top/sub/exe",
            )
            .unwrap();
        builder
            .append_link(
                &mut header(EntryType::Symlink, 0, 0o777),
                "top/sub/up",
                "../hard",
            )
            .unwrap();
        let archive = builder.into_inner().unwrap();

        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("item");
        let done = unpack(&archive[..], "top", &root).unwrap();
        assert_eq!((done.files, done.directories, done.symlinks), (3, 1, 1));
        assert_eq!(done.content_bytes, 7);
        assert_eq!(fs::read(root.join("sub/exe")).unwrap(), b"hello");
        assert_eq!(fs::read(root.join(&deep)).unwrap(), b"hi");
        assert_eq!(fs::read(root.join("hard")).unwrap(), b"hello");
        assert_eq!(
            fs::read_link(root.join("sub/up")).unwrap(),
            Path::new("../hard")
        );
        let mode = fs::metadata(root.join("sub/exe"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "set-id bits dropped");
        let dir_mode = fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o750);
    }

    #[test]
    fn link_resolution_follows_chains() {
        let set = links(&[
            ("d/up", ".."),
            ("l1", "d"),
            ("ok", "l1/up/d"),
            ("bad", "l1/up/.."),
            ("abs", "/etc"),
            ("loop", "loop"),
            ("deep", "d/../d/../.."),
        ]);
        assert!(resolves_inside(&set, Path::new("d/up")));
        assert!(resolves_inside(&set, Path::new("l1")));
        assert!(resolves_inside(&set, Path::new("ok")));
        assert!(!resolves_inside(&set, Path::new("bad")));
        assert!(!resolves_inside(&set, Path::new("abs")));
        assert!(!resolves_inside(&set, Path::new("loop")));
        assert!(!resolves_inside(&set, Path::new("deep")));
        // A link at the top of the copy points next to it: outside.
        assert!(!resolves_inside(&links(&[("", "x")]), Path::new("")));
    }
}
