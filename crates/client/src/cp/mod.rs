//! Copying files and directories to and from a container, verified.
//!
//! As `kubectl cp` does, podlink streams a tar archive over an exec session
//! (`tar cf -` or `tar xmf -` in the container, so the container needs `sh`
//! and `tar`). Unlike it, podlink
//! - **verifies** the copy: the container runs the archive through
//!   `sha256sum` as it sends or receives it, podlink hashes the same bytes,
//!   and a difference is an error ([`CopyError::ChecksumMismatch`]);
//! - **never writes outside the destination**: an archive from the pod is
//!   unpacked by podlink's own code into a private staging directory beside
//!   the destination, refusing absolute names, `..`, links that resolve
//!   outside the copy, writes through links and special files, and is moved
//!   into place only once complete and verified (a refused or broken copy
//!   leaves nothing behind);
//! - **resumes nothing**: every copy starts from scratch.
//!
//! Destination naming follows `cp`: an existing directory receives the
//! source under its own name; any other destination path becomes the copy.
//!
//! ```no_run
//! # async fn demo(client: podlink_client::Client) -> Result<(), podlink_client::cp::CopyError> {
//! use podlink_client::cp::CopyRequest;
//! let report = client.copy(CopyRequest::parse("demo:/etc/hostname", "./hostname")?).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

mod bridge;
mod download;
mod error;
mod pack;
mod pod;
mod progress;
mod remote;
mod spec;
mod staging;
mod unpack;
mod upload;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{CopyError, UnsafeReason};
pub use pack::{SkipReason, Skipped};
pub use progress::Progress;
pub use spec::{Location, PodPath};
pub use tokio_util::sync::CancellationToken;

use crate::exec::{CancelPolicy, Exec, ExecRequest, ExitStatus};
use crate::Client;

/// How long cancelling the remote side of a failed copy may take.
const CANCEL_BOUND: Duration = Duration::from_secs(10);

/// Which way a copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Direction {
    FromPod { pod: PodPath, local: PathBuf },
    ToPod { local: PathBuf, pod: PodPath },
}

/// What to copy where, built with [`CopyRequest::new`] or
/// [`CopyRequest::parse`] and the `with_*` methods.
#[derive(Clone)]
#[must_use]
pub struct CopyRequest {
    direction: Direction,
    container: Option<String>,
    progress: Option<Arc<dyn Progress>>,
    cancel: Option<CancellationToken>,
}

impl fmt::Debug for CopyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyRequest")
            .field("direction", &self.direction)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

impl CopyRequest {
    /// Copy `src` to `dst`; exactly one must be in a pod.
    ///
    /// # Errors
    /// [`CopyError::Sides`] when both or neither are in a pod.
    pub fn new(src: Location, dst: Location) -> Result<Self, CopyError> {
        let direction = match (src, dst) {
            (Location::Pod(pod), Location::Local(local)) => Direction::FromPod { pod, local },
            (Location::Local(local), Location::Pod(pod)) => Direction::ToPod { local, pod },
            (Location::Pod(_), Location::Pod(_)) => {
                return Err(CopyError::Sides(
                    "both name a pod; one must be a local path",
                ))
            }
            (Location::Local(_), Location::Local(_)) => {
                return Err(CopyError::Sides("neither names a pod"))
            }
        };
        Ok(Self {
            direction,
            container: None,
            progress: None,
            cancel: None,
        })
    }

    /// Parse kubectl-style `SRC` and `DST` (see [`Location`]).
    ///
    /// # Errors
    /// [`CopyError::InvalidSpec`] or [`CopyError::Sides`].
    pub fn parse(src: &str, dst: &str) -> Result<Self, CopyError> {
        Self::new(src.parse()?, dst.parse()?)
    }

    /// Whether this copies from this machine into a pod.
    #[must_use]
    pub fn is_to_pod(&self) -> bool {
        matches!(self.direction, Direction::ToPod { .. })
    }

    /// The container (default: the pod's default container).
    pub fn with_container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Report progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Stop the copy when `token` is cancelled: the remote side is stopped,
    /// local leftovers removed, and the copy ends with
    /// [`CopyError::Cancelled`]. (Dropping the copy's future also stops it,
    /// but cannot wait for that clean-up.)
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Resolves when the copy is cancelled (never without a token).
    async fn cancelled(&self) {
        match &self.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// The exec request running `argv` in `container` of the request's pod.
    fn exec(
        &self,
        pod: &PodPath,
        container: String,
        argv: Vec<String>,
        stdin: bool,
    ) -> ExecRequest {
        let mut request = ExecRequest::new(pod.pod.clone(), argv)
            .with_stdin(stdin)
            .with_stdout(!stdin)
            .with_stderr(true);
        if let Some(namespace) = &pod.namespace {
            request = request.with_namespace(namespace.clone());
        }
        request.with_container(container)
    }
}

/// Which way a finished copy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CopyDirection {
    /// From the pod to this machine.
    FromPod,
    /// From this machine to the pod.
    ToPod,
}

/// What a verified copy moved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyReport {
    /// Which way it went.
    pub direction: CopyDirection,
    /// Where the copy now is (a local path or `[NS/]POD:PATH`).
    pub destination: String,
    /// Regular files copied.
    pub files: u64,
    /// Directories copied.
    pub directories: u64,
    /// Symbolic links copied.
    pub symlinks: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// Bytes of the tar archive that crossed the connection.
    pub archive_bytes: u64,
    /// SHA-256 (hex) of the archive, equal on both sides.
    pub sha256: String,
    /// Local paths left out of a copy to the pod.
    pub skipped: Vec<Skipped>,
    /// The exec protocol that carried it.
    pub protocol: String,
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![count(self.files, "file", "files")];
        if self.directories > 0 {
            parts.push(count(self.directories, "directory", "directories"));
        }
        if self.symlinks > 0 {
            parts.push(count(self.symlinks, "symlink", "symlinks"));
        }
        write!(
            f,
            "copied {} ({}) to {}; verified: sha256 {} on both sides",
            parts.join(", "),
            human_bytes(self.content_bytes),
            self.destination,
            self.sha256
        )
    }
}

/// `1.5 MiB`-style sizes.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Client {
    /// Copy as `request` says, verify the archive's checksum on both sides,
    /// and report what moved.
    ///
    /// # Errors
    /// See [`CopyError`]: bad paths, the pod or container missing (as
    /// [`CopyError::Client`]), the remote path missing, `tar` missing, an
    /// unsafe archive, or a checksum mismatch.
    pub async fn copy(&self, request: CopyRequest) -> Result<CopyReport, CopyError> {
        let pod = match &request.direction {
            Direction::FromPod { pod, .. } | Direction::ToPod { pod, .. } => pod,
        };
        let container = pod::container(self, pod, request.container.as_deref()).await?;
        match &request.direction {
            Direction::FromPod { pod, local } => {
                download::run(self, &request, container, pod, local).await
            }
            Direction::ToPod { local, pod } => {
                upload::run(self, &request, container, local, pod).await
            }
        }
    }
}

/// A task aborted when its handle is dropped, so a copy that is dropped
/// (cancelled) or fails stops its pumps too.
struct Task<T> {
    handle: tokio::task::JoinHandle<T>,
    finished: bool,
}

impl<T: Send + 'static> Task<T> {
    fn spawn(future: impl std::future::Future<Output = T> + Send + 'static) -> Self {
        Self {
            handle: tokio::spawn(future),
            finished: false,
        }
    }

    /// On a blocking thread (which runs to its end regardless).
    fn blocking(work: impl FnOnce() -> T + Send + 'static) -> Self {
        Self {
            handle: tokio::task::spawn_blocking(work),
            finished: false,
        }
    }

    /// Its result; a panic in it becomes a stream error. Call once (a call
    /// abandoned midway does not count).
    async fn join(&mut self) -> Result<T, CopyError> {
        let outcome = (&mut self.handle).await;
        self.finished = true;
        outcome.map_err(|e| CopyError::Stream(std::io::Error::other(e)))
    }

    /// Wait for it to end, if it has not been joined, discarding its result.
    async fn end(&mut self) {
        if !self.finished {
            let _ = self.join().await;
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Stop the remote side of a copy that failed here, bounded in time.
async fn abandon(exec: Exec) {
    match tokio::time::timeout(CANCEL_BOUND, exec.cancel(CancelPolicy::Kill)).await {
        Ok(outcome) => tracing::debug!(?outcome, "abandoned the remote side of the copy"),
        Err(_) => tracing::warn!("the remote side of the copy may still be running"),
    }
}

/// The exit code, when the command ran and reported one.
fn exit_code(status: &ExitStatus) -> Option<u32> {
    match status {
        ExitStatus::Success => Some(0),
        ExitStatus::Exited { code } => Some(*code),
        _ => None,
    }
}

/// Explain a remote failure from the script's report and exit status, if
/// anything failed there.
fn remote_failure(
    pod: &PodPath,
    report: &remote::Report,
    status: &ExitStatus,
) -> Option<CopyError> {
    let remote = |message: String| {
        Some(CopyError::Remote {
            pod: pod.pod.clone(),
            message,
        })
    };
    let code = exit_code(status);
    if report.missing {
        return Some(CopyError::RemoteMissing {
            pod: pod.pod.clone(),
            path: pod.path.clone(),
        });
    }
    if report.tar_exit == Some(127) || code == Some(127) {
        return Some(CopyError::NoTar {
            pod: pod.pod.clone(),
        });
    }
    if report.no_parent {
        return remote(format!(
            "{}: the directory to copy into does not exist",
            pod.path
        ));
    }
    if let Some(code) = report.tar_exit.filter(|c| *c != 0) {
        return remote(report.message_or(&format!("tar failed with exit status {code}")));
    }
    if report.move_failed {
        return remote(report.message_or("moving the copy into place failed"));
    }
    match status {
        ExitStatus::Success => None,
        // Older protocols report no status: tar's own report stands in.
        ExitStatus::Missing if report.tar_exit.is_some() => None,
        ExitStatus::Failed { message, .. } | ExitStatus::ExitedWithoutCode { message } => {
            remote(message.clone())
        }
        _ => remote(report.message_or(&format!("the copy command ended with {status:?}"))),
    }
}

/// Compare the checksums of both sides.
fn verify(
    pod: &PodPath,
    local: String,
    remote: Option<&String>,
    sending: bool,
) -> Result<String, CopyError> {
    let remote = remote.ok_or_else(|| CopyError::NoChecksum {
        pod: pod.pod.clone(),
    })?;
    if *remote == local {
        return Ok(local);
    }
    let (sent, received) = if sending {
        (local, remote.clone())
    } else {
        (remote.clone(), local)
    };
    Err(CopyError::ChecksumMismatch { sent, received })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides() {
        assert!(CopyRequest::parse("a:/x", "b:/y").is_err());
        assert!(CopyRequest::parse("x", "y").is_err());
        assert!(CopyRequest::parse("demo:/x", "y").is_ok());
        assert!(CopyRequest::parse("y", "ns/demo:/x").is_ok());
    }

    #[test]
    fn report_text() {
        let report = CopyReport {
            direction: CopyDirection::ToPod,
            destination: "demo:/tmp/x".into(),
            files: 2,
            directories: 1,
            symlinks: 0,
            content_bytes: 3 * 1024 * 1024 / 2,
            archive_bytes: 0,
            sha256: "ab".into(),
            skipped: Vec::new(),
            protocol: "v5.channel.k8s.io".into(),
        };
        assert_eq!(
            report.to_string(),
            "copied 2 files, 1 directory (1.5 MiB) to demo:/tmp/x; verified: sha256 ab on both sides"
        );
    }
}
