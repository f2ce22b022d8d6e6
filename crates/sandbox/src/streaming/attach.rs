//! Attach: a session on the container's main process. Unlike exec, the
//! process belongs to the pod: a session only taps its output and, when the
//! container has `stdin: true`, shares its stdin; leaving never closes it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

use super::process::{Output, ProcessIo, Stdio};
use crate::pods::{Attach, Output as PodOutput, OutputStream, StdinWriter};
use crate::processes::{ProcessKind, ProcessRegistry};

/// Chunks in flight between the main process and one attached session.
const CHANNEL_DEPTH: usize = 8;
/// How often a session checks whether the process it attached to still
/// runs (the container's output channel outlives restarts, so it never
/// closes by itself).
const RUN_CHECK: Duration = Duration::from_millis(100);

/// The container an attach session is for.
pub(crate) struct MainProcess {
    /// The process table, where a main process stays listed until it has
    /// been reaped and its output pumped.
    pub(crate) registry: Arc<ProcessRegistry>,
    /// The pod's namespace.
    pub(crate) namespace: String,
    /// The pod.
    pub(crate) pod: String,
    /// The container.
    pub(crate) container: String,
}

impl MainProcess {
    /// The pid of the container's running main process, if it runs.
    fn running_pid(&self) -> Option<u32> {
        self.registry
            .list()
            .into_iter()
            .find(|p| {
                p.kind == ProcessKind::Main
                    && p.namespace == self.namespace
                    && p.pod == self.pod
                    && p.container == self.container
            })
            .map(|p| p.pid)
    }
}

/// Builds the session's view of the container's main process; the session
/// ends when that process (not a later restart) has ended.
pub(crate) fn process_io(attach: Attach, main: MainProcess, stdio: Stdio) -> ProcessIo {
    let (output_tx, output) = mpsc::channel(CHANNEL_DEPTH);
    let (exit_tx, exit) = oneshot::channel();
    let mut source = attach.output;
    let attached_to = main.running_pid();
    let wanted = move |chunk: PodOutput| match chunk.stream {
        OutputStream::Stdout if stdio.stdout => Some(Output::Stdout(chunk.data)),
        OutputStream::Stderr if stdio.stderr => Some(Output::Stderr(chunk.data)),
        // With a terminal everything is one stream.
        OutputStream::Stderr if stdio.tty && stdio.stdout => Some(Output::Stdout(chunk.data)),
        _ => None,
    };
    tokio::spawn(async move {
        let mut check = tokio::time::interval(RUN_CHECK);
        loop {
            let chunk = tokio::select! {
                biased;
                chunk = source.recv() => chunk,
                _ = check.tick() => {
                    if attached_to.is_some() && main.running_pid() == attached_to {
                        continue;
                    }
                    // The process ended: its pumps finished before the state
                    // changed, so what is queued is the rest of its output.
                    while let Ok(chunk) = source.try_recv() {
                        if let Some(item) = wanted(chunk) {
                            if output_tx.send(item).await.is_err() {
                                return;
                            }
                        }
                    }
                    break;
                }
            };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(RecvError::Lagged(missed)) => {
                    // Like a runtime's attach, a slow reader loses output
                    // rather than stalling the container.
                    tracing::debug!(missed, "attach session fell behind; output dropped");
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            if let Some(item) = wanted(chunk) {
                if output_tx.send(item).await.is_err() {
                    return;
                }
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
