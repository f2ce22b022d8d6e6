//! Attach: a session on the container's main process. Unlike exec, the
//! process belongs to the pod: a session only taps its output and, when the
//! container has `stdin: true`, shares its stdin; leaving never closes it.

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

use super::process::{Output, ProcessIo, Stdio};
use crate::pods::{Attach, OutputStream, StdinWriter};

/// Chunks in flight between the main process and one attached session.
const CHANNEL_DEPTH: usize = 8;

/// Builds the session's view of the main process.
pub(crate) fn process_io(attach: Attach, stdio: Stdio) -> ProcessIo {
    let (output_tx, output) = mpsc::channel(CHANNEL_DEPTH);
    let (exit_tx, exit) = oneshot::channel();
    let mut source = attach.output;
    tokio::spawn(async move {
        loop {
            let chunk = match source.recv().await {
                Ok(chunk) => chunk,
                Err(RecvError::Lagged(missed)) => {
                    // Like a runtime's attach, a slow reader loses output
                    // rather than stalling the container.
                    tracing::debug!(missed, "attach session fell behind; output dropped");
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            let item = match chunk.stream {
                OutputStream::Stdout if stdio.stdout => Output::Stdout(chunk.data),
                OutputStream::Stderr if stdio.stderr => Output::Stderr(chunk.data),
                // With a terminal everything is one stream.
                OutputStream::Stderr if stdio.tty && stdio.stdout => Output::Stdout(chunk.data),
                _ => continue,
            };
            if output_tx.send(item).await.is_err() {
                return;
            }
        }
        // The container's output ended: it exited. Attach reports success,
        // as the kubelet does; the exit code belongs to the pod status.
        drop(output_tx);
        let _ = exit_tx.send(0);
    });
    let stdin = match (stdio.stdin, attach.stdin) {
        (true, Some(shared)) => Some(spawn_shared_stdin(shared)),
        _ => None,
    };
    ProcessIo {
        stdin,
        output,
        terminal: None,
        exit,
    }
}

/// Writes a session's stdin into the shared pipe; the pipe stays open when
/// the session ends (no `stdinOnce`), so the next attach can type too.
fn spawn_shared_stdin(shared: StdinWriter) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            let mut guard = shared.lock().await;
            let Some(pipe) = guard.as_mut() else { break };
            if let Err(error) = pipe.write_all(&chunk).await {
                tracing::debug!(%error, "main process closed its stdin");
                *guard = None;
                break;
            }
        }
    });
    tx
}
