//! Pod → local: stream `tar cf -` out of the container, unpack it safely
//! into a staging directory while hashing it, compare checksums, then move
//! the copy into place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::bridge::{self, ChunkReader, Tally, DEPTH};
use super::error::CopyError;
use super::spec::{PodPath, RemoteSplit};
use super::staging::{self, Staging};
use super::{
    abandon, remote, remote_failure, unpack, verify, CopyDirection, CopyReport, CopyRequest, Task,
};
use crate::Client;

pub(super) async fn run(
    client: &Client,
    request: &CopyRequest,
    container: String,
    pod: &PodPath,
    local: &Path,
) -> Result<CopyReport, CopyError> {
    let split = RemoteSplit::new(&pod.path)?;
    let target = local_target(local, &split.name)?;
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Shared with the unpacking thread, so the directory outlives it even
    // when this copy is dropped midway.
    let staging = Arc::new(Staging::new(&parent)?);
    let argv = remote::download(&split.parent, &split.name);
    let mut exec = client
        .exec(request.exec(pod, container, argv, false))
        .await?;
    let protocol = exec.protocol().to_owned();
    let (Some(stdout), Some(stderr)) = (exec.stdout(), exec.stderr()) else {
        return Err(CopyError::Stream(io::Error::other(
            "the session has no stdout or stderr",
        )));
    };

    let (tx, rx) = mpsc::channel(DEPTH);
    let root = staging.item();
    let top = split.name.clone();
    let held = Arc::clone(&staging);
    let mut unpacking = Task::blocking(move || {
        let outcome = unpack::unpack(ChunkReader::new(rx), &top, &root);
        drop(held);
        outcome
    });
    let mut pump = Task::spawn(bridge::pump_from(
        stdout,
        tx,
        Tally::new(request.progress.clone()),
    ));
    let mut report = Task::spawn(remote::read_report(stderr, request.progress.clone()));

    // Everything from the pod, unless refused midway or cancelled; then the
    // remote side is stopped at once.
    let outcome = {
        let transfer = async {
            let unpacked = match unpacking.join().await.and_then(|outcome| outcome) {
                // Refused or failed here: nothing more from the pod can help.
                Err(err @ (CopyError::UnsafeEntry { .. } | CopyError::Local { .. })) => {
                    return Err(err)
                }
                other => other,
            };
            Ok((unpacked, pump.join().await?, report.join().await?))
        };
        tokio::select! {
            outcome = transfer => outcome,
            () = request.cancelled() => Err(CopyError::Cancelled),
        }
    };
    let (unpacked, pumped, report) = match outcome {
        Ok(done) => done,
        Err(err) => {
            drop((pump, report));
            abandon(exec).await;
            // Its input is gone, so it ends now, releasing the staging
            // directory, which is removed on return.
            unpacking.end().await;
            return Err(err);
        }
    };
    let report = report.map_err(CopyError::Stream)?;
    let status = exec.wait().await?;
    if let Some(err) = remote_failure(pod, &report, &status) {
        return Err(err);
    }
    let unpacked = unpacked?;
    let (local_sha, archive_bytes) = pumped.map_err(CopyError::Stream)?.finish();
    let sha256 = verify(pod, local_sha, report.sha256.as_ref(), false)?;
    if fs::symlink_metadata(staging.item()).is_err() {
        return Err(CopyError::Archive("the archive was empty".into()));
    }
    staging::commit(&staging.item(), &target)?;
    Ok(CopyReport {
        direction: CopyDirection::FromPod,
        destination: target.display().to_string(),
        files: unpacked.files,
        directories: unpacked.directories,
        symlinks: unpacked.symlinks,
        content_bytes: unpacked.content_bytes,
        archive_bytes,
        sha256,
        skipped: Vec::new(),
        protocol,
    })
}

/// Where the copy of remote `name` lands: inside `local` when it is an
/// existing directory, else at `local` (whose directory must exist).
fn local_target(local: &Path, name: &str) -> Result<PathBuf, CopyError> {
    match fs::metadata(local) {
        Ok(meta) if meta.is_dir() && name != "." => Ok(local.join(name)),
        Ok(_) => Ok(local.to_path_buf()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let parent = match local.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            if fs::metadata(parent).is_ok_and(|m| m.is_dir()) {
                Ok(local.to_path_buf())
            } else {
                Err(CopyError::local(
                    parent,
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "the directory to copy into does not exist",
                    ),
                ))
            }
        }
        Err(err) => Err(CopyError::local(local, err)),
    }
}
