//! The process side of exec and attach: stdio as bounded channels.
//!
//! Every session, whatever its transport, talks to a [`ProcessIo`]: a bounded
//! sender for stdin, one bounded receiver carrying stdout and stderr chunks,
//! the terminal (for resize) and the exit code. Pump tasks sit between the
//! channels and the pipes or pty, so that the process outlives the client
//! connection exactly as on a node: when the session goes away its stdin
//! closes, its output keeps being read (and dropped) and it runs on until it
//! ends by itself or the sandbox stops it.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::pty::{Pty, PtyMaster, WindowSize};

/// Size of each read from a process pipe or terminal.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// Chunks in flight between a pump and its session: with [`READ_CHUNK`] this
/// bounds buffered output per session, the rest waits in the pipe.
const CHANNEL_DEPTH: usize = 8;

/// One chunk of process output.
#[derive(Debug)]
pub(crate) enum Output {
    /// Bytes from stdout (or the terminal).
    Stdout(Bytes),
    /// Bytes from stderr.
    Stderr(Bytes),
}

/// What a session holds of a running process.
#[derive(Debug)]
pub(crate) struct ProcessIo {
    /// Bytes for the process's stdin; dropping it closes stdin (pipes) or
    /// stops the copy (terminal), as containerd does.
    pub(crate) stdin: Option<mpsc::Sender<Bytes>>,
    /// stdout and stderr in arrival order; ends when every output reached EOF.
    pub(crate) output: mpsc::Receiver<Output>,
    /// The terminal, when the process has one.
    pub(crate) terminal: Option<PtyMaster>,
    /// The exit code (0–255; 128+N for signal N), sent when the process ends.
    pub(crate) exit: oneshot::Receiver<i32>,
}

/// Which stdio an exec'd process gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stdio {
    /// Whether stdin is connected.
    pub(crate) stdin: bool,
    /// Whether stdout is connected.
    pub(crate) stdout: bool,
    /// Whether stderr is connected (ignored with a terminal).
    pub(crate) stderr: bool,
    /// Whether the process gets a pseudo-terminal.
    pub(crate) tty: bool,
}

/// A process started by [`spawn`].
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its pid (also its process group, or session with a terminal).
    pub(crate) pid: u32,
    /// Its stdio.
    pub(crate) io: ProcessIo,
}

/// Starts an exec'd process (a command prepared with the pod's folder and
/// environment) as a process-group leader, plus the tasks that pump its stdio
/// and reap it. `register` gets the pid; what it returns (the entry in the
/// process table) is dropped once the process has been reaped.
pub(crate) fn spawn<G: Send + 'static>(
    mut command: tokio::process::Command,
    stdio: Stdio,
    size: Option<WindowSize>,
    register: impl FnOnce(u32) -> G,
) -> std::io::Result<Spawned> {
    let pty = if stdio.tty {
        let pty = Pty::open()?;
        // A terminal that starts at 0x0 confuses full-screen programs.
        pty.resize(size.unwrap_or(WindowSize { cols: 80, rows: 24 }))?;
        pty.configure(&mut command)?;
        Some(pty)
    } else {
        // Its own group, so that stopping the sandbox can signal the
        // whole pipeline an exec started.
        command
            .process_group(0)
            .stdin(piped_if(stdio.stdin))
            .stdout(piped_if(stdio.stdout))
            .stderr(piped_if(stdio.stderr));
        None
    };
    let mut child = command.spawn()?;
    // The command holds the terminal's secondary side until dropped.
    drop(command);
    let pid = child.id().unwrap_or_default();
    let guard = register(pid);

    let (output_tx, output) = mpsc::channel(CHANNEL_DEPTH);
    let mut stdin = None;
    let terminal = match pty {
        Some(pty) => {
            let master = pty.into_master()?;
            spawn_output_pump(master.clone(), Output::Stdout, output_tx);
            if stdio.stdin {
                stdin = Some(spawn_input_pump(master.clone()));
            }
            Some(master)
        }
        None => {
            if let Some(pipe) = child.stdout.take() {
                spawn_output_pump(pipe, Output::Stdout, output_tx.clone());
            }
            if let Some(pipe) = child.stderr.take() {
                spawn_output_pump(pipe, Output::Stderr, output_tx);
            }
            stdin = child.stdin.take().map(spawn_input_pump);
            None
        }
    };

    let (exit_tx, exit) = oneshot::channel();
    tokio::spawn(async move {
        let code = match child.wait().await {
            Ok(status) => exit_code(status),
            Err(error) => {
                tracing::warn!(pid, %error, "cannot wait for exec'd process");
                // The runtime's "unknown" exit, as for a lost shim.
                255
            }
        };
        tracing::debug!(pid, code, "exec'd process ended");
        drop(guard);
        let _ = exit_tx.send(code);
    });

    Ok(Spawned {
        pid,
        io: ProcessIo {
            stdin,
            output,
            terminal,
            exit,
        },
    })
}

/// The code containerd reports: the exit status, or 128 + signal.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 255,
    }
}

fn piped_if(wanted: bool) -> std::process::Stdio {
    if wanted {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    }
}

/// Copies a process output into the session's channel; once the session is
/// gone it keeps reading and dropping, so the process never blocks on a full
/// pipe it could not block on with a real runtime either.
pub(crate) fn spawn_output_pump<R>(
    mut reader: R,
    wrap: fn(Bytes) -> Output,
    tx: mpsc::Sender<Output>,
) where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            buf.reserve(READ_CHUNK);
            match reader.read_buf(&mut buf).await {
                Ok(0) => break,
                Ok(_) => {
                    let chunk = buf.split().freeze();
                    if let Some(sender) = &tx {
                        if sender.send(wrap(chunk)).await.is_err() {
                            tx = None;
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "process output read failed");
                    break;
                }
            }
        }
    });
}

/// Copies the session's stdin chunks into the process; when every sender is
/// dropped (client EOF or client gone) it closes the pipe.
pub(crate) fn spawn_input_pump<W>(mut writer: W) -> mpsc::Sender<Bytes>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if let Err(error) = writer.write_all(&chunk).await {
                // The process closed its stdin; later input is dropped.
                tracing::debug!(%error, "process stdin closed");
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PIPES: Stdio = Stdio {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };

    fn sh(script: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", script]);
        command
    }

    async fn collect(io: &mut ProcessIo) -> (Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), io.output.recv())
            .await
            .unwrap()
        {
            match chunk {
                Output::Stdout(b) => out.extend_from_slice(&b),
                Output::Stderr(b) => err.extend_from_slice(&b),
            }
        }
        (out, err)
    }

    #[tokio::test]
    async fn pipes_stdin_through_and_separates_stderr() {
        let mut spawned = spawn(sh("cat; echo oops >&2; exit 7"), PIPES, None, |_| ()).unwrap();
        let stdin = spawned.io.stdin.take().unwrap();
        stdin.send(Bytes::from_static(b"hello")).await.unwrap();
        drop(stdin);
        let (out, err) = collect(&mut spawned.io).await;
        assert_eq!(out, b"hello");
        assert_eq!(err, b"oops\n");
        assert_eq!(spawned.io.exit.await.unwrap(), 7);
    }

    #[tokio::test]
    async fn signal_exit_is_128_plus_signal() {
        let mut spawned = spawn(sh("kill -TERM $$"), PIPES, None, |_| ()).unwrap();
        collect(&mut spawned.io).await;
        assert_eq!(spawned.io.exit.await.unwrap(), 128 + libc::SIGTERM);
    }

    #[tokio::test]
    async fn terminal_merges_output_and_guard_drops_at_exit() {
        let (guard_tx, guard_rx) = oneshot::channel::<()>();
        let tty = Stdio { tty: true, ..PIPES };
        let script = sh("test -t 1 && echo tty; echo err >&2");
        let mut spawned = spawn(script, tty, None, move |_| guard_tx).unwrap();
        let (out, err) = collect(&mut spawned.io).await;
        assert_eq!(String::from_utf8_lossy(&out), "tty\r\nerr\r\n");
        assert!(err.is_empty());
        assert_eq!(spawned.io.exit.await.unwrap(), 0);
        // The registration guard is dropped when the process is reaped.
        assert!(guard_rx.await.is_err());
    }
}
