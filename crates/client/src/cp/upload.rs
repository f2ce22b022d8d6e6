//! Local → pod: walk and pack the local tree (on a blocking thread),
//! stream it into `tar xmf -` in the container while hashing it, and compare
//! with the checksum the container computed of what it received.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::bridge::{self, ChunkWriter, Tally, CHUNK, DEPTH};
use super::error::CopyError;
use super::spec::PodPath;
use super::{
    abandon, joined, pack, remote, remote_failure, verify, CopyDirection, CopyReport, CopyRequest,
};
use crate::Client;

pub(super) async fn run(
    client: &Client,
    request: &CopyRequest,
    container: String,
    local: &Path,
    pod: &PodPath,
) -> Result<CopyReport, CopyError> {
    let source = local.to_path_buf();
    let plan = joined(tokio::task::spawn_blocking(move || pack::plan(&source))).await??;
    for skipped in &plan.skipped {
        tracing::debug!("{skipped}");
    }
    if let Some(progress) = &request.progress {
        progress.set_total(plan.archive_bytes);
    }
    let argv = remote::upload(&pod.path, &plan.name);
    let mut exec = client
        .exec(request.exec(pod, container, argv, true))
        .await?;
    let protocol = exec.protocol().to_owned();
    let (Some(stdin), Some(stderr)) = (exec.stdin(), exec.stderr()) else {
        return Err(CopyError::Stream(io::Error::other(
            "the session has no stdin or stderr",
        )));
    };

    let (tx, rx) = mpsc::channel(DEPTH);
    let packing = tokio::task::spawn_blocking(move || {
        let mut out = BufWriter::with_capacity(CHUNK, ChunkWriter::new(tx));
        pack::write(&plan, &mut out)?;
        out.flush().map_err(CopyError::Stream)?;
        Ok::<_, CopyError>(plan)
    });
    let pump = tokio::spawn(bridge::pump_to(
        rx,
        stdin,
        Tally::new(request.progress.clone()),
    ));
    let report = tokio::spawn(remote::read_report(stderr, None));

    let plan = match joined(packing).await.and_then(|outcome| outcome) {
        // A local read failed: end-of-file must not reach the pod, where tar
        // would unpack a truncated archive.
        Err(err @ CopyError::Local { .. }) => {
            pump.abort();
            report.abort();
            abandon(exec).await;
            return Err(err);
        }
        other => other,
    };
    // Packing ended (the sender is gone): the pump finishes the stream.
    let pumped = match joined(pump).await? {
        Ok((tally, mut stdin)) => stdin.shutdown().await.map(|()| tally),
        Err(err) => Err(err),
    };
    let report = joined(report).await?.map_err(CopyError::Stream)?;
    let status = exec.wait().await?;
    if let Some(err) = remote_failure(pod, &report, &status) {
        return Err(err);
    }
    let plan = plan?;
    let (local_sha, archive_bytes) = pumped.map_err(CopyError::Stream)?.finish();
    let sha256 = verify(pod, local_sha, report.sha256.as_ref(), true)?;
    Ok(CopyReport {
        direction: CopyDirection::ToPod,
        destination: pod.to_string(),
        files: plan.files,
        directories: plan.directories,
        symlinks: plan.symlinks,
        content_bytes: plan.content_bytes,
        archive_bytes,
        sha256,
        skipped: plan.skipped,
        protocol,
    })
}
