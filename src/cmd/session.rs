//! The interactive part shared by `exec` and `attach`: local stdin, stdout,
//! stderr and terminal wired to a session, stop signals turned into the
//! cancel policy, and the outcome turned into an exit status.

use anyhow::Context as _;
use podlink_client::exec::{
    CancelPolicy, Cancelled, Exec, ExecRequest, ExitStatus, ProtocolChoice, TerminalSize,
};
use podlink_client::KeepAlive;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::pod;
use crate::args::{GlobalArgs, OnCancel, SessionArgs, StreamProtocol};
use crate::cluster::Cluster;
use crate::exit::Exit;
use crate::signals::{Signal, StopSignals};
use crate::terminal::{self, RawMode};

/// Bytes moved per read from a session output: large enough that a bulk
/// transfer costs few system calls.
const PUMP_BUFFER: usize = 256 * 1024;

/// Which command the session serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new process (`podlink exec`).
    Exec,
    /// The container's main process (`podlink attach`).
    Attach,
}

/// Connect, start the session that `request` (given the pod's name)
/// describes, completed with what `exec` and `attach` share, run it until
/// it ends or we are stopped, and close the connection.
pub async fn run(
    global: &GlobalArgs,
    args: SessionArgs,
    on_cancel: OnCancel,
    mode: Mode,
    request: impl FnOnce(&str) -> ExecRequest,
) -> anyhow::Result<Exit> {
    let cluster = Cluster::connect(global).await?;
    let outcome = start(&cluster, args, cancel_policy(on_cancel), mode, request).await;
    cluster.close().await;
    outcome
}

async fn start(
    cluster: &Cluster,
    args: SessionArgs,
    on_cancel: CancelPolicy,
    mode: Mode,
    request: impl FnOnce(&str) -> ExecRequest,
) -> anyhow::Result<Exit> {
    // Before anything starts remotely: a stop signal must never kill us
    // with the remote process left behind.
    let signals = StopSignals::install().context("installing signal handlers")?;
    let client = &cluster.client;
    let name = pod::name(&args.pod)?;
    let container = pod::container(client, name, args.container.as_deref()).await?;
    let tty = args.tty && usable_tty();
    let request = request(name)
        .with_container(container)
        .with_stdin(args.stdin)
        .with_tty(tty)
        .with_protocol(protocol(args.protocol))
        .with_keepalive(KeepAlive::new(
            args.keepalive.ping_interval,
            args.keepalive.pong_timeout,
        ))
        .with_on_cancel(on_cancel);
    let session = client.exec(request).await.context(match mode {
        Mode::Exec => "starting the command",
        Mode::Attach => "attaching",
    })?;
    tracing::info!(protocol = session.protocol(), "session started");
    if tty && mode == Mode::Attach {
        eprintln!("If you don't see a command prompt, try pressing enter.");
    }
    interact(
        session,
        signals,
        Interactive {
            stdin: args.stdin,
            tty,
            nudge_size: mode == Mode::Attach,
            on_cancel,
        },
    )
    .await
}

/// `-t` needs a local terminal on stdin; without one, warn as kubectl does
/// and go on without.
fn usable_tty() -> bool {
    if terminal::stdin_is_terminal() {
        true
    } else {
        eprintln!("podlink: unable to use a TTY: input is not a terminal");
        false
    }
}

/// The library's protocol choice for `--protocol`.
fn protocol(choice: StreamProtocol) -> ProtocolChoice {
    match choice {
        StreamProtocol::Auto => ProtocolChoice::Auto,
        StreamProtocol::Websocket => ProtocolChoice::WebSocket,
        StreamProtocol::Spdy => ProtocolChoice::Spdy,
    }
}

/// The library's cancel policy for `--on-cancel`.
fn cancel_policy(choice: OnCancel) -> CancelPolicy {
    match choice {
        OnCancel::Interrupt => CancelPolicy::Interrupt,
        OnCancel::Terminate => CancelPolicy::Terminate,
        OnCancel::Kill => CancelPolicy::Kill,
        OnCancel::Detach => CancelPolicy::Detach,
    }
}

/// How to run the local side of a session.
struct Interactive {
    /// Copy local stdin to the session.
    stdin: bool,
    /// Raw mode and resize (the caller checked stdin is a terminal).
    tty: bool,
    /// Send (W+1, H+1) before the real size, to make an attached program
    /// redraw (as kubectl attach does).
    nudge_size: bool,
    /// What a stop signal does to the remote process.
    on_cancel: CancelPolicy,
}

/// How the session ended, decided inside the select and acted on after it.
enum Ending {
    Finished(podlink_client::Result<ExitStatus>),
    Signalled(Signal),
    LocalOutputClosed,
}

/// Run the session to its end and pick the exit status. `signals` were
/// installed before the session started, so a signal that arrives while it
/// starts is not lost.
async fn interact(
    mut exec: Exec,
    mut signals: StopSignals,
    opts: Interactive,
) -> anyhow::Result<Exit> {
    let raw = if opts.tty {
        Some(RawMode::enable_stdin().context("switching the terminal to raw mode")?)
    } else {
        None
    };
    if let Some(resizer) = exec.resizer() {
        tokio::spawn(forward_resizes(resizer, opts.nudge_size));
    }
    if opts.stdin {
        if let Some(stdin) = exec.stdin() {
            pump_stdin(stdin);
        }
    }
    let stdout = exec
        .stdout()
        .map(|out| pump(out, unbuffered(std::io::stdout())));
    let stderr = exec
        .stderr()
        .map(|err| pump(err, unbuffered(std::io::stderr())));
    let ending = tokio::select! {
        status = finish(&mut exec, stdout, stderr) => match status {
            Ok(status) => Ending::Finished(status),
            Err(_) => Ending::LocalOutputClosed,
        },
        signal = signals.recv() => Ending::Signalled(signal),
    };
    // Leave raw mode before printing anything of our own.
    drop(raw);
    match ending {
        Ending::Finished(status) => exit_for(status?),
        Ending::Signalled(signal) => {
            report_cancel(exec.cancel(opts.on_cancel).await?);
            Ok(Exit::Signalled(signal))
        }
        Ending::LocalOutputClosed => {
            // Our reader went away (`| head`): stop the remote side too.
            report_cancel(exec.cancel(opts.on_cancel).await?);
            Ok(Exit::SUCCESS)
        }
    }
}

/// Wait for the status and for the output pumps to hand over every byte.
/// An error means our own stdout or stderr is closed.
async fn finish(
    exec: &mut Exec,
    stdout: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    stderr: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
) -> std::io::Result<podlink_client::Result<ExitStatus>> {
    let pumps = async {
        for pump in [stdout, stderr].into_iter().flatten() {
            match pump.await {
                Ok(result) => result?,
                Err(join) => return Err(std::io::Error::other(join)),
            }
        }
        Ok(())
    };
    // The pumps end when the session's readers reach end-of-file, which
    // happens just before the status is ready.
    pumps.await?;
    Ok(exec.wait().await)
}

/// The exit status for a remote outcome; outcomes without a code are
/// podlink failures with the server's words.
fn exit_for(status: ExitStatus) -> anyhow::Result<Exit> {
    match status {
        ExitStatus::Success => Ok(Exit::SUCCESS),
        ExitStatus::Exited { code } => Ok(Exit::Code(u8::try_from(code).unwrap_or(u8::MAX))),
        ExitStatus::ExitedWithoutCode { message } => {
            anyhow::bail!("{message} (the server gave no exit code)")
        }
        ExitStatus::Failed { message, .. } => anyhow::bail!("{message}"),
        ExitStatus::Missing => anyhow::bail!("the server ended the session without an exit status"),
        other => anyhow::bail!("the session ended without an exit status: {other:?}"),
    }
}

fn report_cancel(outcome: Cancelled) {
    match outcome {
        Cancelled::Ended(_) => {}
        Cancelled::Detached => eprintln!("podlink: left the remote process running"),
        Cancelled::MayStillRun(why) => {
            eprintln!("podlink: warning: the remote process may still be running: {why}");
        }
        other => tracing::debug!(?other, "cancel outcome"),
    }
}

/// A local output written straight to its file descriptor. `std::io::Stdout`
/// is line-buffered: every 256 KiB chunk through it is first searched for
/// its last newline (6% of the CLI's CPU time in a bulk `exec`), then
/// flushed anyway; the pump writes whole chunks and needs neither.
fn unbuffered<W>(output: W) -> Box<dyn std::io::Write + Send>
where
    W: std::io::Write + std::os::fd::AsFd + Send + 'static,
{
    match output.as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        // Out of descriptors: the buffered handle still works.
        Err(_) => Box::new(output),
    }
}

/// Copies a session output to a local one on a thread of its own: tokio's
/// stdout hands every write and every flush to the blocking pool, and those
/// hand-offs cost more than the transfer itself at hundreds of MB/s.
fn pump<R, W>(mut from: R, mut to: W) -> tokio::task::JoinHandle<std::io::Result<()>>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: std::io::Write + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0_u8; PUMP_BUFFER];
        loop {
            let n = runtime.block_on(from.read(&mut buf))?;
            if n == 0 {
                return Ok(());
            }
            to.write_all(&buf[..n])?;
            // Interactive output must show at once (a no-op for the
            // unbuffered outputs `interact` passes).
            to.flush()?;
        }
    })
}

/// Copies local stdin to the session on a thread of its own (as [`pump`]
/// does for output); its end-of-file closes the remote stdin.
fn pump_stdin(mut to: podlink_client::exec::Stdin) {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut from = std::io::stdin().lock();
        let mut buf = vec![0_u8; PUMP_BUFFER];
        loop {
            match std::io::Read::read(&mut from, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if runtime.block_on(to.write_all(&buf[..n])).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = runtime.block_on(to.shutdown());
    });
}

/// Send the size now and on every SIGWINCH.
async fn forward_resizes(resizer: podlink_client::exec::Resizer, nudge: bool) {
    let size = || {
        terminal::size().map(|s| TerminalSize {
            width: s.width,
            height: s.height,
        })
    };
    if let Some(now) = size() {
        if nudge {
            resizer.resize(TerminalSize {
                width: now.width.saturating_add(1),
                height: now.height.saturating_add(1),
            });
        }
        resizer.resize(now);
    }
    let Ok(mut winch) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    else {
        return;
    };
    while winch.recv().await.is_some() {
        if let Some(now) = size() {
            if !resizer.resize(now) {
                return;
            }
        }
    }
}
