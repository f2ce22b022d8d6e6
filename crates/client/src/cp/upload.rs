//! Local → pod: walk and pack the local tree (on a blocking thread),
//! stream it into `tar xmf -` in the container while hashing it, and compare
//! with the checksum the container computed of what it received.
//!
//! The container unpacks into a temporary directory and moves the copy into
//! place only after it has the client's checksum and it matches its own
//! (`remote::UPLOAD`): so the archive is announced by size (zero blocks pad
//! it to exactly that size, which tar ignores) and followed by the checksum
//! line.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::bridge::{self, ChunkWriter, Tally, CHUNK, DEPTH};
use super::error::CopyError;
use super::spec::PodPath;
use super::{
    abandon, pack, remote, remote_failure, verify, CopyDirection, CopyReport, CopyRequest, Task,
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
    let plan = Task::blocking(move || pack::plan(&source)).join().await??;
    for skipped in &plan.skipped {
        tracing::debug!("{skipped}");
    }
    let announced = plan.archive_bytes;
    if let Some(progress) = &request.progress {
        progress.set_total(announced);
    }
    let argv = remote::upload(&pod.path, &plan.name, announced);
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
    let mut packing = Task::blocking(move || {
        let mut out = BufWriter::with_capacity(CHUNK, Counted::new(ChunkWriter::new(tx)));
        pack::write(&plan, &mut out)?;
        out.flush().map_err(CopyError::Stream)?;
        let padding = announced
            .checked_sub(out.get_ref().written)
            .ok_or_else(|| CopyError::Archive("the archive outgrew its announced size".into()))?;
        io::copy(&mut io::repeat(0).take(padding), &mut out).map_err(CopyError::Stream)?;
        out.flush().map_err(CopyError::Stream)?;
        Ok::<_, CopyError>(plan)
    });
    let mut pump = Task::spawn(bridge::pump_to(
        rx,
        stdin,
        Tally::new(request.progress.clone()),
    ));
    let mut report = Task::spawn(remote::read_report(stderr, None));

    // Everything to the pod, unless a local read fails or the copy is
    // cancelled; then the remote side is stopped at once (end-of-file must
    // not reach it: tar would unpack a truncated archive).
    let outcome = {
        let transfer = async {
            let plan = match packing.join().await.and_then(|outcome| outcome) {
                Err(err @ CopyError::Local { .. }) => return Err(err),
                other => other,
            };
            // Packing ended (the sender is gone): the pump finishes the stream.
            // Then the checksum line that lets the container commit.
            let pumped = match pump.join().await? {
                Ok((tally, mut stdin)) => {
                    let (sha, bytes) = tally.finish();
                    let line = format!("{sha}\n");
                    match stdin.write_all(line.as_bytes()).await {
                        Ok(()) => stdin.shutdown().await.map(|()| (sha, bytes)),
                        Err(err) => Err(err),
                    }
                }
                Err(err) => Err(err),
            };
            Ok((plan, pumped, report.join().await?))
        };
        tokio::select! {
            outcome = transfer => outcome,
            () = request.cancelled() => Err(CopyError::Cancelled),
        }
    };
    let (plan, pumped, report) = match outcome {
        Ok(done) => done,
        Err(err) => {
            drop((pump, report));
            abandon(exec).await;
            // Its output is gone, so it ends now.
            packing.end().await;
            return Err(err);
        }
    };
    let report = report.map_err(CopyError::Stream)?;
    let status = exec.wait().await?;
    if let Some(err) = remote_failure(pod, &report, &status) {
        return Err(err);
    }
    let plan = plan?;
    let (local_sha, archive_bytes) = pumped.map_err(CopyError::Stream)?;
    let sha256 = verify(pod, local_sha, report.sha256.as_ref(), true)?;
    if !report.committed {
        return Err(CopyError::Remote {
            pod: pod.pod.clone(),
            message: format!(
                "{}: the copy was not moved into place; the destination is unchanged",
                pod.path
            ),
        });
    }
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

/// Counts the bytes written through it, to pad the archive to its
/// announced size.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Self { inner, written: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
