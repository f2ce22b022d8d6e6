//! Exec and attach over SPDY/3.1: streams `error`, `stdin`, `stdout`,
//! `stderr` and `resize`, opened one at a time as kubectl does, on the
//! generic [`SpdySession`](crate::spdy::SpdySession) driver.
//!
//! The session ends when stdout, stderr and the error stream have all
//! ended; then every stream is reset (CANCEL), GOAWAY is sent and the
//! connection closed, as kubectl does.

use bytes::Bytes;
use podlink_proto::channel::{Protocol, StreamType, Transport};
use podlink_proto::spdy::{Headers, STREAM_TYPE_HEADER};
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::sync::oneshot;

use super::io::{Control, DriverIo};
use super::websocket::{append_bounded, deliver, next_size};
use super::{wire, ExitStatus};
use crate::error::{Error, Result};
use crate::keepalive::KeepAlive;
use crate::spdy::{SpdySession, StreamEnd, StreamReceiver, StreamSender};
use crate::upgrade::UpgradedIo;

/// `X-Stream-Protocol-Version` values we offer, best first (kubectl's list).
pub(crate) fn offer() -> Vec<&'static str> {
    Protocol::client_offer(Transport::Spdy)
        .iter()
        .map(|p| p.name())
        .collect()
}

/// The protocol the 101 named; none means v1 semantics (PROTOCOLS.md §4.1).
pub(crate) fn agreed(chosen: Option<&str>) -> Protocol {
    chosen.and_then(Protocol::from_name).unwrap_or(Protocol::V1)
}

/// Largest stdin chunk per DATA frame.
const STDIN_CHUNK: usize = 32 * 1024;

/// A receiving stream and where its bytes go.
struct Output {
    stream: Option<StreamReceiver>,
    sink: Option<DuplexStream>,
}

impl Output {
    async fn recv(&mut self) -> Option<Bytes> {
        match &mut self.stream {
            Some(stream) => stream.recv().await,
            None => std::future::pending().await,
        }
    }
}

pub(crate) async fn drive(
    io: UpgradedIo,
    protocol: Protocol,
    driver: DriverIo,
    keepalive: KeepAlive,
    tty: bool,
    set_up: oneshot::Sender<()>,
) -> Result<ExitStatus> {
    let session = SpdySession::start(io, keepalive);
    let outcome = run(&session, protocol, driver, tty, set_up).await;
    session.close().await;
    outcome
}

async fn open(session: &SpdySession, kind: StreamType) -> Result<(StreamSender, StreamReceiver)> {
    let stream = session
        .open(Headers::new().with(STREAM_TYPE_HEADER, kind.name()))
        .await?;
    Ok(stream.into_split())
}

async fn run(
    session: &SpdySession,
    protocol: Protocol,
    mut io: DriverIo,
    tty: bool,
    set_up: oneshot::Sender<()>,
) -> Result<ExitStatus> {
    // The order is the protocol's: error first, then the requested streams.
    let (_, error) = open(session, StreamType::Error).await?;
    let stdin = match io.stdin.is_some() {
        true => Some(open(session, StreamType::Stdin).await?.0),
        false => None,
    };
    let mut stdout = Output {
        stream: match io.stdout.is_some() {
            true => Some(open(session, StreamType::Stdout).await?.1),
            false => None,
        },
        sink: io.stdout.take(),
    };
    let mut stderr = Output {
        stream: match io.stderr.is_some() {
            true => Some(open(session, StreamType::Stderr).await?.1),
            false => None,
        },
        sink: io.stderr.take(),
    };
    let resize = match tty && protocol.has_resize(Transport::Spdy) {
        true => Some(open(session, StreamType::Resize).await?.0),
        false => None,
    };
    if resize.is_none() {
        io.resize = None;
    }
    // The server starts the process once every stream is open: only now is
    // there a process for a cancel to find.
    let _ = set_up.send(());
    let mut error = Some(error);
    let mut status = Vec::new();
    let mut got_status = false;
    let mut lost = false;
    // Stdin runs in its own task, so that a server that stops reading can
    // never keep us from draining its output.
    let mut stop_stdin = match (io.stdin.take(), &stdin) {
        (Some(pipe), Some(tx)) => Some(pump_stdin(pipe, tx.clone())),
        _ => None,
    };
    let mut control_open = true;

    while stdout.stream.is_some() || stderr.stream.is_some() || error.is_some() {
        tokio::select! {
            bytes = stdout.recv() => match bytes {
                Some(bytes) => deliver(&mut stdout.sink, &bytes).await,
                None => lost |= ended(&mut stdout.stream),
            },
            bytes = stderr.recv() => match bytes {
                Some(bytes) => deliver(&mut stderr.sink, &bytes).await,
                None => lost |= ended(&mut stderr.stream),
            },
            bytes = recv(&mut error) => match bytes {
                Some(bytes) => {
                    got_status = true;
                    append_bounded(&mut status, &bytes)?;
                }
                None => {
                    lost |= ended(&mut error);
                }
            },
            size = next_size(&mut io.resize) => match (size, &resize) {
                (Some(size), Some(tx)) => {
                    let json = format!("{{\"Width\":{},\"Height\":{}}}\n", size.width, size.height);
                    tx.send(Bytes::from(json)).await?;
                }
                _ => io.resize = None,
            },
            control = io.control.recv(), if control_open => match control {
                Some(Control::Interrupt) => match (&stdin, tty) {
                    (Some(tx), true) => {
                        let tx = tx.clone();
                        tokio::spawn(async move { tx.send(Bytes::from_static(&[0x03])).await });
                    }
                    // Closing stdin is the pump's job: it sends the FIN.
                    _ => stop_stdin = None,
                },
                Some(Control::Abort) => return Err(Error::ConnectionLost("session aborted".into())),
                None => control_open = false,
            },
        }
    }
    drop(stop_stdin);
    // Everything was delivered: the readers get end-of-file before the status.
    drop(stdout);
    drop(stderr);
    if lost && !got_status {
        // The streams ended because the connection did: say why.
        session.closed().await?;
        return Err(Error::ConnectionLost(
            "the connection ended before the command reported its end".into(),
        ));
    }
    wire::decode_status(protocol, &status)
}

async fn recv(stream: &mut Option<StreamReceiver>) -> Option<Bytes> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

/// A stream ended; true if it was because the whole session ended (not a
/// FIN or reset from the server).
fn ended(stream: &mut Option<StreamReceiver>) -> bool {
    let end = stream.take().and_then(|s| s.end());
    matches!(end, Some(StreamEnd::SessionEnded) | None)
}

/// Copy the caller's stdin to the stdin stream until end-of-file (or until
/// the returned sender is dropped), then half-close it with FIN.
fn pump_stdin(mut pipe: DuplexStream, tx: StreamSender) -> oneshot::Sender<()> {
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut buf = vec![0_u8; STDIN_CHUNK];
        loop {
            tokio::select! {
                read = pipe.read(&mut buf) => match read {
                    Ok(n) if n > 0 => {
                        if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            return;
                        }
                    }
                    _ => break,
                },
                _ = &mut stop_rx => break,
            }
        }
        let _ = tx.finish().await;
    });
    stop_tx
}
