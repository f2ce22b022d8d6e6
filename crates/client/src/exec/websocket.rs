//! The WebSocket session driver (channel protocols v1–v5): one task that
//! owns the socket and moves bytes between it and the caller's pipes.
//!
//! ```text
//!  caller stdin ──► [0 | bytes] ──►            ◄── [1 | bytes] ◄── stdout
//!  EOF          ──► [FF 00] (v5)      socket   ◄── [2 | bytes] ◄── stderr
//!  resize       ──► [4 | json]                 ◄── [3 | Status] then close 1000
//! ```
//!
//! The session ends on the server's close frame. Liveness: any frame from
//! the server (data, pong) counts; a ping goes out every interval, and a
//! server silent past the timeout is declared dead.

use std::time::Duration;

use bytes::BytesMut;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::io::{Control, DriverIo};
use super::wire::{Incoming, WsCodec};
use super::ExitStatus;
use crate::error::{Error, Result};
use crate::keepalive::KeepAlive;
use crate::upgrade::WebSocket;

/// Largest stdin chunk per message. kubectl sends ≤32 KiB reads; each
/// message costs a queue hand-off to the writer task and a frame, so bulk
/// input goes in larger ones (far below the 32 MiB a kubelet's
/// golang.org/x/net/websocket accepts, and our sandbox's 16 MiB).
const STDIN_CHUNK: usize = 256 * 1024;

/// Stdin messages are encoded into blocks of this size, each serving many
/// messages and reused in place once they were written: an allocation per
/// 256 KiB message was a fresh mapping from the allocator each time, and
/// its page faults and clearing cost a third of the client's CPU.
const STDIN_FRAMES: usize = 8 * STDIN_CHUNK;

/// Room left in the block below which a new one is taken: one message,
/// base64-encoded (v1-v3) at worst.
const STDIN_ROOM: usize = STDIN_CHUNK / 3 * 4 + 8;

/// How long to wait for the close handshake to finish once the session is over.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Outgoing messages queued towards the writer task.
const OUTGOING: usize = 16;

/// Drive a session to its end. `tty` decides what an interrupt sends.
///
/// Reading and writing are separate tasks: a server that reads our stdin
/// only after its own output drained can never deadlock the session.
pub(crate) async fn drive(
    ws: WebSocket,
    codec: WsCodec,
    mut io: DriverIo,
    keepalive: KeepAlive,
    tty: bool,
) -> Result<ExitStatus> {
    let (sink, mut incoming) = ws.split();
    let (out_tx, out_rx) = mpsc::channel::<Message>(OUTGOING);
    let writer = tokio::spawn(write_all(sink, out_rx));
    let mut stop_stdin = io
        .stdin
        .take()
        .map(|pipe| pump_stdin(pipe, codec, out_tx.clone()));
    let mut status = Vec::new();
    let mut got_status = false;
    let mut control_open = true;
    let mut ping =
        tokio::time::interval_at(Instant::now() + keepalive.interval, keepalive.interval);
    let mut heard = Instant::now();
    let end = loop {
        let deadline = heard + keepalive.timeout;
        tokio::select! {
            message = incoming.next() => {
                match message {
                    Some(Ok(Message::Close(frame))) => break closed(frame.as_ref()),
                    Some(Ok(message)) => match codec.decode(message)? {
                        Some(Incoming::Stdout(bytes)) => deliver(&mut io.stdout, &bytes).await,
                        Some(Incoming::Stderr(bytes)) => deliver(&mut io.stderr, &bytes).await,
                        Some(Incoming::Status(bytes)) => {
                            got_status = true;
                            append_bounded(&mut status, &bytes)?;
                        }
                        None => {}
                    },
                    Some(Err(err)) => break Err(Error::from(err)),
                    None => break Err(Error::ConnectionLost("the server closed the connection without a close frame".into())),
                }
                // Writing to a slow caller may have taken a while: that
                // time was not the peer's silence.
                heard = Instant::now();
            }
            size = next_size(&mut io.resize) => match size {
                // Sizes are droppable: a newer one follows.
                Some(size) => { let _ = out_tx.try_send(codec.resize(size)); }
                None => io.resize = None,
            },
            control = io.control.recv(), if control_open => match control {
                Some(Control::Interrupt) if tty => { let _ = out_tx.try_send(codec.stdin(&mut BytesMut::new(), &[0x03])); }
                // Closing stdin is the pump's job (it sends the v5 close).
                Some(Control::Interrupt) => stop_stdin = None,
                Some(Control::Abort) => break Err(Error::ConnectionLost("session aborted".into())),
                None => control_open = false,
            },
            // A busy writer is traffic enough: a skipped ping is harmless.
            _ = ping.tick() => { let _ = out_tx.try_send(Message::Ping(Default::default())); }
            () = tokio::time::sleep_until(deadline) => break Err(Error::PeerDead(keepalive.timeout)),
        }
    };
    // Hand the caller end-of-file on its readers before the status.
    drop(io);
    drop(stop_stdin);
    drop(out_tx);
    // The writer finishes the close handshake once every sender is gone.
    let _ = tokio::time::timeout(CLOSE_LINGER, writer).await;
    match end {
        Ok(()) => codec.exit_status(&status),
        // A status that arrived before an unclean end is still the truth.
        Err(_) if got_status => codec.exit_status(&status),
        Err(err) => Err(err),
    }
}

/// The writer task: send queued messages in order; when the queue closes,
/// send the close frame (1000) and flush.
async fn write_all(mut sink: SplitSink<WebSocket, Message>, mut queue: mpsc::Receiver<Message>) {
    while let Some(message) = queue.recv().await {
        if let Err(err) = sink.send(message).await {
            tracing::debug!(%err, "websocket write failed");
            return;
        }
    }
    let _ = sink.close().await;
}

/// Copy the caller's stdin to the session until end-of-file (or until the
/// returned sender is dropped), then send the v5 close where there is one.
fn pump_stdin(
    mut pipe: DuplexStream,
    codec: WsCodec,
    out: mpsc::Sender<Message>,
) -> oneshot::Sender<()> {
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut buf = vec![0_u8; STDIN_CHUNK];
        let mut frames = BytesMut::new();
        loop {
            tokio::select! {
                read = pipe.read(&mut buf) => match read {
                    Ok(n) if n > 0 => {
                        if frames.capacity() < STDIN_ROOM {
                            frames.reserve(STDIN_FRAMES);
                        }
                        if out.send(codec.stdin(&mut frames, &buf[..n])).await.is_err() {
                            return;
                        }
                    }
                    _ => break,
                },
                _ = &mut stop_rx => break,
            }
        }
        if let Some(close) = codec.close_stdin() {
            let _ = out.send(close).await;
        }
    });
    stop_tx
}

/// The close frame ends the session; only code 1000 (or none) is clean.
fn closed(frame: Option<&CloseFrame>) -> Result<()> {
    match frame {
        None => Ok(()),
        Some(frame) if frame.code == CloseCode::Normal => Ok(()),
        Some(frame) => Err(Error::ConnectionLost(format!(
            "the server closed the session with code {} {}",
            u16::from(frame.code),
            frame.reason
        ))),
    }
}

/// The largest status we keep (a Status JSON is well under 1 KiB).
const MAX_STATUS: usize = 64 * 1024;

pub(crate) fn append_bounded(status: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    if status.len() + bytes.len() > MAX_STATUS {
        return Err(Error::Protocol(
            format!("status larger than {MAX_STATUS} bytes").into(),
        ));
    }
    status.extend_from_slice(bytes);
    Ok(())
}

/// Write to a caller's pipe; a caller who dropped its reader gets nothing
/// more, and the session goes on.
pub(crate) async fn deliver(sink: &mut Option<DuplexStream>, bytes: &[u8]) {
    if let Some(pipe) = sink {
        if pipe.write_all(bytes).await.is_err() {
            *sink = None;
        }
    }
}

/// The next size to send, or wait forever when there is no terminal.
pub(crate) async fn next_size(
    resize: &mut Option<tokio::sync::mpsc::Receiver<super::TerminalSize>>,
) -> Option<super::TerminalSize> {
    match resize {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
