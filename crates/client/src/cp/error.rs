//! The copy error: what failed, naming the path or archive entry involved.

use std::io;
use std::path::PathBuf;

/// Why an archive entry was refused. Each is a class of bug behind a
/// `kubectl cp` CVE: an archive from a compromised container must not write
/// outside the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsafeReason {
    /// The entry's name is absolute (`/etc/passwd`).
    AbsolutePath,
    /// The entry's name contains a `..` component.
    ParentComponent,
    /// The entry's name is not under the path that was asked for.
    OutsideRequestedPath,
    /// A symbolic link whose target resolves outside the copy (absolute, too
    /// many `..`, or through other links), or that loops.
    SymlinkEscapes,
    /// A hard link whose target is not a regular file already in the copy.
    HardlinkOutside,
    /// The entry would be written through a symbolic link or a non-directory.
    ThroughLink,
    /// A device, FIFO or other special file.
    SpecialFile,
}

impl std::fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AbsolutePath => "absolute path",
            Self::ParentComponent => "'..' in the path",
            Self::OutsideRequestedPath => "not under the requested path",
            Self::SymlinkEscapes => "symbolic link pointing outside the destination",
            Self::HardlinkOutside => "hard link to something that is not a file in the copy",
            Self::ThroughLink => "would be written through a link or a non-directory",
            Self::SpecialFile => "special file (device, FIFO or socket)",
        })
    }
}

/// Everything that can go wrong in a copy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// A `SRC` or `DST` argument could not be parsed.
    #[error("invalid file spec {spec:?}: {reason}")]
    InvalidSpec {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Neither side, or both sides, name a pod.
    #[error("exactly one of source and destination must be POD:PATH ({0})")]
    Sides(&'static str),

    /// The pod does not exist.
    #[error(
        "pod {pod:?} not found in namespace {namespace:?}; check the name and the namespace (-n)"
    )]
    PodNotFound {
        /// The pod.
        pod: String,
        /// The namespace looked in.
        namespace: String,
    },

    /// The pod is not running, so nothing can be copied to or from it.
    #[error("pod {pod:?} is not running (phase {phase}); wait for it to start")]
    PodNotRunning {
        /// The pod.
        pod: String,
        /// Its phase.
        phase: String,
    },

    /// The pod has several containers and none was named.
    #[error("pod {pod:?} has several containers; choose one with -c: {}", .containers.join(", "))]
    ContainerRequired {
        /// The pod.
        pod: String,
        /// Its containers.
        containers: Vec<String>,
    },

    /// The named container is not in the pod.
    #[error("pod {pod:?} has no container {container:?}; its containers: {}", .containers.join(", "))]
    NoSuchContainer {
        /// The pod.
        pod: String,
        /// The container asked for.
        container: String,
        /// The pod's containers.
        containers: Vec<String>,
    },

    /// Starting or running the remote command failed (pod or container not
    /// found, forbidden, connection lost...).
    #[error(transparent)]
    Client(#[from] crate::Error),

    /// The remote path does not exist.
    #[error("{path}: no such file or directory in pod {pod}")]
    RemoteMissing {
        /// The pod.
        pod: String,
        /// The path in the container.
        path: String,
    },

    /// The container has no `tar` (or no `sh`), which copying needs.
    #[error("pod {pod}: the container has no `tar` or `sh`, which copying needs")]
    NoTar {
        /// The pod.
        pod: String,
    },

    /// The remote side reported a failure.
    #[error("in pod {pod}: {message}")]
    Remote {
        /// The pod.
        pod: String,
        /// What it said (tar's messages, trimmed).
        message: String,
    },

    /// The remote side ended without reporting its checksum.
    #[error("pod {pod} did not report a checksum; the copy cannot be verified")]
    NoChecksum {
        /// The pod.
        pod: String,
    },

    /// The archive that arrived is not what was sent.
    #[error("checksum mismatch: sent sha256 {sent}, received sha256 {received}")]
    ChecksumMismatch {
        /// SHA-256 of the archive on the sending side.
        sent: String,
        /// SHA-256 of the archive on the receiving side.
        received: String,
    },

    /// The archive carried an entry that could write outside the destination
    /// or is not a plain file, directory or link. Nothing was written.
    #[error("refusing archive entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry's name as the archive gave it.
        entry: String,
        /// Why it was refused.
        reason: UnsafeReason,
    },

    /// The archive is malformed or uses an unsupported feature.
    #[error("malformed archive: {0}")]
    Archive(String),

    /// A local file operation failed.
    #[error("{}: {source}", .path.display())]
    Local {
        /// The local path involved.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },

    /// The destination exists with a different kind (a file where a
    /// directory arrives, or the reverse).
    #[error("{}: {reason}", .path.display())]
    Conflict {
        /// The local path.
        path: PathBuf,
        /// What clashes.
        reason: &'static str,
    },

    /// The copy was cancelled; its remote side was stopped and nothing was
    /// left locally.
    #[error("the copy was cancelled")]
    Cancelled,

    /// Streaming between the network and the archive code failed.
    #[error("streaming the archive: {0}")]
    Stream(#[source] io::Error),
}

impl CopyError {
    /// A [`CopyError::Local`] for `path`.
    pub(crate) fn local(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Local {
            path: path.into(),
            source,
        }
    }

    /// A [`CopyError::UnsafeEntry`].
    pub(crate) fn unsafe_entry(entry: impl Into<String>, reason: UnsafeReason) -> Self {
        Self::UnsafeEntry {
            entry: entry.into(),
            reason,
        }
    }
}
