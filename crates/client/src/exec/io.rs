//! The caller's ends of a session's streams: stdin as `AsyncWrite`, stdout
//! and stderr as `AsyncRead`, and a sender of terminal sizes.
//!
//! Each is one end of an in-memory pipe whose other end the session's driver
//! task owns, so backpressure reaches the network: a caller that stops
//! reading stdout eventually stops the driver reading the socket.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::mpsc;

/// Most bytes buffered in each direction between a caller and the driver.
/// The pipe grows only as far as it is filled (idle sessions cost nothing),
/// and a bulk transfer hands over up to this much per wake-up of the other
/// side: at 64 KiB, thread hand-offs dominated the CLI's profile.
pub(crate) const PIPE_CAPACITY: usize = 1024 * 1024;

/// The remote process's stdin. Shutting it down (`AsyncWriteExt::shutdown`)
/// or dropping it sends end-of-file to the process: a v5 close or a SPDY
/// FIN (podlink never chooses a protocol that cannot).
#[derive(Debug)]
pub struct Stdin(pub(crate) DuplexStream);

/// The remote process's stdout (with a terminal: all its output). Reaches
/// end-of-file once the process has ended and every byte was delivered.
/// Dropping it discards the rest of the output without disturbing the
/// session.
#[derive(Debug)]
pub struct Stdout(pub(crate) DuplexStream);

/// The remote process's stderr; as [`Stdout`].
#[derive(Debug)]
pub struct Stderr(pub(crate) DuplexStream);

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// Sends terminal sizes to the remote terminal (sessions with a tty only).
/// Dropping it is harmless.
#[derive(Debug, Clone)]
pub struct Resizer(pub(crate) mpsc::Sender<TerminalSize>);

impl Resizer {
    /// Tell the remote terminal its new size. Sizes sent faster than the
    /// connection takes them are dropped except the latest few; returns false
    /// once the session is over.
    pub fn resize(&self, size: TerminalSize) -> bool {
        match self.0.try_send(size) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl AsyncWrite for Stdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncRead for Stdout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncRead for Stderr {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

/// The driver's ends of the pipes, and its command channel.
#[derive(Debug)]
pub(crate) struct DriverIo {
    /// Where the caller's stdin bytes come from.
    pub(crate) stdin: Option<DuplexStream>,
    /// Where the process's stdout goes.
    pub(crate) stdout: Option<DuplexStream>,
    /// Where the process's stderr goes.
    pub(crate) stderr: Option<DuplexStream>,
    /// Terminal sizes to send.
    pub(crate) resize: Option<mpsc::Receiver<TerminalSize>>,
    /// Commands from the handle.
    pub(crate) control: mpsc::Receiver<Control>,
}

/// What the handle asks of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Ctrl-C over a terminal, else close stdin.
    Interrupt,
    /// Close the connection cleanly and stop, leaving the process as it is.
    Abort,
}

/// The caller's ends, before they are handed out.
pub(crate) struct CallerIo {
    pub(crate) stdin: Option<Stdin>,
    pub(crate) stdout: Option<Stdout>,
    pub(crate) stderr: Option<Stderr>,
    pub(crate) resizer: Option<Resizer>,
    pub(crate) control: mpsc::Sender<Control>,
}

/// Make both ends for a session with the given streams.
pub(crate) fn pipes(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> (CallerIo, DriverIo) {
    let pipe = |on: bool| on.then(|| tokio::io::duplex(PIPE_CAPACITY));
    let (stdin_caller, stdin_driver) = pipe(stdin).unzip();
    let (stdout_caller, stdout_driver) = pipe(stdout).unzip();
    let (stderr_caller, stderr_driver) = pipe(stderr).unzip();
    let (resize_tx, resize_rx) = tty.then(|| mpsc::channel(4)).unzip();
    let (control_tx, control_rx) = mpsc::channel(4);
    (
        CallerIo {
            stdin: stdin_caller.map(Stdin),
            stdout: stdout_caller.map(Stdout),
            stderr: stderr_caller.map(Stderr),
            resizer: resize_tx.map(Resizer),
            control: control_tx,
        },
        DriverIo {
            stdin: stdin_driver,
            stdout: stdout_driver,
            stderr: stderr_driver,
            resize: resize_rx,
            control: control_rx,
        },
    )
}
