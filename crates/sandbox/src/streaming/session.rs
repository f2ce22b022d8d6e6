//! The transport-independent middle of an exec or attach session: moves
//! stdin, resize and output between a client transport (WebSocket or SPDY)
//! and a [`ProcessIo`], then decides how the session ends.
//!
//! ```text
//!   running ──process exit──▶ draining ──outputs at EOF──▶ finished (status sent)
//!      │                         │ (or idle past DRAIN_IDLE)
//!      └──client gone / error────┴──▶ detached (stdin closed, process runs on)
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use podlink_proto::channel::ResizeDecoder;
use podlink_proto::status::ExitStatus;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::error::StreamError;
use super::process::{Output, ProcessIo};
use crate::pty::WindowSize;

/// After the process exits, how long outputs may stay silent before the
/// session stops waiting for their EOF (a background child may hold a pipe
/// open for ever).
const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// Longest wait for a TTY client's first resize before the process starts.
const FIRST_SIZE_WAIT: Duration = Duration::from_secs(1);
/// Stdin messages kept while waiting for the first resize (no more than the
/// stdin channel holds, so replaying them never waits on the process).
const MAX_EARLY_STDIN: usize = 8;

/// Something the client sent.
#[derive(Debug)]
pub(crate) enum ClientEvent {
    /// Bytes for the process's stdin.
    Stdin(Bytes),
    /// The client half-closed stdin (v5 `FF 00`, SPDY FIN).
    StdinEof,
    /// A new terminal size.
    Resize(WindowSize),
    /// Nothing for the session (a ping, an ignored channel).
    Nothing,
    /// The client closed the connection or went away.
    Gone,
}

/// How a transport talks to the client.
pub(crate) trait ClientSide {
    /// The next thing the client sent; must be cancel-safe.
    fn next_event(&mut self) -> impl Future<Output = Result<ClientEvent, StreamError>> + Send;
    /// Sends one output chunk.
    fn send_output(
        &mut self,
        output: Output,
    ) -> impl Future<Output = Result<(), StreamError>> + Send;
}

/// How the middle of a session ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The process exited with this code and its output is flushed: the
    /// transport sends the status and closes.
    Exited(i32),
    /// The client left; the process runs on with stdin closed.
    Detached,
}

/// Starts the process for a session, given the terminal's first size.
pub(crate) type Start =
    Box<dyn FnOnce(Option<WindowSize>) -> Result<ProcessIo, StreamError> + Send>;

/// Runs the session: starts the process, then moves bytes until it ends
/// or the client goes away.
///
/// With a terminal (`await_size`), the client's first resize is awaited a
/// moment before the process starts, so that it starts at the client's
/// size as on a node (where starting a container process takes longer than
/// the client's first resize takes to arrive). Input that comes first is
/// kept and delivered after the start.
pub(crate) async fn run<C: ClientSide + Send>(
    client: &mut C,
    await_size: bool,
    start: Start,
) -> Result<Ending, StreamError> {
    let mut early_stdin = Vec::new();
    let mut stdin_eof = false;
    let mut size = None;
    if await_size {
        let deadline = Instant::now() + FIRST_SIZE_WAIT;
        while size.is_none() && early_stdin.len() < MAX_EARLY_STDIN {
            let event = tokio::select! {
                event = client.next_event() => event?,
                () = sleep_until(deadline) => break,
            };
            match event {
                ClientEvent::Resize(first) => size = Some(first),
                ClientEvent::Stdin(bytes) => early_stdin.push(bytes),
                ClientEvent::StdinEof => stdin_eof = true,
                ClientEvent::Nothing => {}
                ClientEvent::Gone => return Ok(Ending::Detached),
            }
        }
    }
    let mut io = start(size)?;
    if let Some(stdin) = &io.stdin {
        for bytes in early_stdin {
            // The channel holds MAX_EARLY_STDIN chunks; a closed one means
            // the process already closed its stdin.
            if stdin.send(bytes).await.is_err() {
                break;
            }
        }
    }
    if stdin_eof {
        io.stdin = None;
    }
    let mut pending_stdin: Option<Bytes> = None;
    let mut output_open = true;
    let mut exit: Option<i32> = None;
    let mut drain_deadline = Instant::now();
    loop {
        if let (Some(code), false) = (exit, output_open) {
            return Ok(Ending::Exited(code));
        }
        let step = tokio::select! {
            event = client.next_event(), if pending_stdin.is_none() => Step::Client(event?),
            permit = reserve(io.stdin.clone()), if pending_stdin.is_some() => Step::StdinRoom(permit),
            chunk = io.output.recv(), if output_open => Step::Output(chunk),
            code = &mut io.exit, if exit.is_none() => Step::Exit(code.ok()),
            () = sleep_until(drain_deadline), if exit.is_some() && output_open => Step::DrainTimeout,
        };
        match step {
            Step::Client(ClientEvent::Stdin(bytes)) => {
                if io.stdin.is_some() && !bytes.is_empty() {
                    pending_stdin = Some(bytes);
                }
            }
            Step::Client(ClientEvent::StdinEof) => io.stdin = None,
            Step::Client(ClientEvent::Resize(size)) => {
                if let Some(terminal) = &io.terminal {
                    if let Err(error) = terminal.resize(size) {
                        tracing::debug!(%error, "terminal resize failed");
                    }
                }
            }
            Step::Client(ClientEvent::Nothing) => {}
            Step::Client(ClientEvent::Gone) => return Ok(Ending::Detached),
            Step::StdinRoom(permit) => match (permit, pending_stdin.take()) {
                (Some(permit), Some(bytes)) => {
                    permit.send(bytes);
                }
                // The process closed its stdin: later input is dropped.
                _ => io.stdin = None,
            },
            Step::Output(Some(output)) => {
                client.send_output(output).await?;
                drain_deadline = Instant::now() + DRAIN_IDLE;
            }
            Step::Output(None) => output_open = false,
            Step::Exit(code) => {
                // A reaper that vanished means the runtime lost the process.
                exit = Some(code.unwrap_or(255));
                drain_deadline = Instant::now() + DRAIN_IDLE;
            }
            Step::DrainTimeout => {
                tracing::debug!("output still open after exit; ending without it");
                output_open = false;
            }
        }
    }
}

/// What woke the session loop.
enum Step {
    Client(ClientEvent),
    StdinRoom(Option<mpsc::OwnedPermit<Bytes>>),
    Output(Option<Output>),
    Exit(Option<i32>),
    DrainTimeout,
}

/// Waits for room in the stdin channel; `None` once the process closed it.
async fn reserve(stdin: Option<mpsc::Sender<Bytes>>) -> Option<mpsc::OwnedPermit<Bytes>> {
    stdin?.reserve_owned().await.ok()
}

/// The status to send when the middle of a session is over, or `None` when
/// there is nobody to send it to (the client left or the connection broke:
/// the process runs on, as on a node).
pub(crate) fn final_status(
    outcome: Result<Ending, StreamError>,
    transport: &'static str,
) -> Option<ExitStatus> {
    match outcome {
        Ok(Ending::Exited(0)) => Some(ExitStatus::Success),
        Ok(Ending::Exited(code)) => Some(ExitStatus::Exited {
            code: u32::try_from(code).unwrap_or(255),
        }),
        Ok(Ending::Detached) => {
            tracing::debug!(transport, "client left; process detached");
            None
        }
        Err(error @ (StreamError::Io(_) | StreamError::WebSocket(_))) => {
            tracing::info!(transport, %error, "exec connection lost; process detached");
            None
        }
        Err(error) => {
            tracing::warn!(transport, %error, "exec session failed");
            Some(failure_status(&error))
        }
    }
}

/// The status a kubelet sends when the session itself failed.
pub(crate) fn failure_status(error: &StreamError) -> ExitStatus {
    let (reason, code) = match error {
        StreamError::Channel(_) | StreamError::BadRequest(_) => ("BadRequest", 400),
        _ => ("InternalError", 500),
    };
    ExitStatus::Failed {
        message: error.to_string(),
        reason: Some(reason.to_owned()),
        code: Some(code),
    }
}

/// The resize channel or stream of one session: a JSON stream that, like
/// the kubelet's, stops being read (without ending the session) once it
/// turns out malformed.
#[derive(Debug, Default)]
pub(crate) struct ResizeStream {
    /// `None` once the stream broke.
    decoder: Option<ResizeDecoder>,
}

impl ResizeStream {
    /// A stream at its start.
    pub(crate) fn new() -> Self {
        Self {
            decoder: Some(ResizeDecoder::new()),
        }
    }

    /// Feeds one payload; the event carries the latest complete size in it.
    pub(crate) fn handle(&mut self, payload: &[u8]) -> ClientEvent {
        let Some(decoder) = &mut self.decoder else {
            return ClientEvent::Nothing;
        };
        decoder.handle_input(payload);
        let mut latest = None;
        while let Some(size) = decoder.poll_size() {
            match size {
                Ok(size) => latest = Some(size),
                Err(error) => {
                    tracing::warn!(%error, "bad resize message; ignoring further resizes");
                    self.decoder = None;
                    break;
                }
            }
        }
        latest.map_or(ClientEvent::Nothing, |size| {
            ClientEvent::Resize(WindowSize {
                cols: size.width,
                rows: size.height,
            })
        })
    }
}
