//! Exec and attach over SPDY/3.1 (PROTOCOLS.md §4): the client opens the
//! error, stdin, stdout, stderr and resize streams one by one; the driver
//! replies to each at once; the process starts once the expected set is
//! there, as in the kubelet.

use std::time::Duration;

use bytes::Bytes;
use podlink_proto::channel::{Protocol, StreamType, Transport};
use podlink_proto::spdy::{StreamId, STREAM_TYPE_HEADER};
use podlink_proto::status::ExitStatus;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::error::StreamError;
use super::options::StreamOptions;
use super::process::Output;
use super::session::{self, failure_status, ClientEvent, ClientSide, ResizeStream, Start};
use super::spdy_driver::{self, OpenedStream, SessionWriter};

/// How long the kubelet waits for the client to open every stream.
const STREAM_WAIT: Duration = Duration::from_secs(30);

/// The streams of one session, as they arrived.
#[derive(Debug, Default)]
struct Streams {
    error: Option<OpenedStream>,
    stdin: Option<OpenedStream>,
    stdout: Option<OpenedStream>,
    stderr: Option<OpenedStream>,
    resize: Option<OpenedStream>,
}

impl Streams {
    fn slot(&mut self, kind: StreamType) -> &mut Option<OpenedStream> {
        match kind {
            StreamType::Error => &mut self.error,
            StreamType::Stdin => &mut self.stdin,
            StreamType::Stdout => &mut self.stdout,
            StreamType::Stderr => &mut self.stderr,
            StreamType::Resize => &mut self.resize,
        }
    }

    /// How many streams arrived: like the kubelet, the session starts once
    /// as many known streams as expected are there, whichever they are.
    fn count(&self) -> usize {
        [
            &self.error,
            &self.stdin,
            &self.stdout,
            &self.stderr,
            &self.resize,
        ]
        .iter()
        .filter(|s| s.is_some())
        .count()
    }
}

/// Runs one exec or attach session on an upgraded SPDY connection; `start`
/// starts the process once the streams are there.
pub(crate) async fn serve<IO>(io: IO, protocol: Protocol, options: &StreamOptions, start: Start)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (writer, mut opened) = spdy_driver::spawn(io, "exec");
    // error, plus one per requested stream, plus resize for a terminal
    // from v3 on.
    let expected = 1
        + usize::from(options.stdin)
        + usize::from(options.stdout)
        + usize::from(options.stderr)
        + usize::from(options.tty && protocol.has_resize(Transport::Spdy));
    let mut streams = Streams::default();
    let gathered = timeout(STREAM_WAIT, async {
        while streams.count() < expected {
            let Some(stream) = opened.recv().await else {
                return false;
            };
            let kind = stream
                .headers
                .get(STREAM_TYPE_HEADER)
                .and_then(StreamType::from_name);
            match kind {
                Some(kind) if streams.slot(kind).is_none() => *streams.slot(kind) = Some(stream),
                // Unknown or repeated stream types are ignored.
                _ => tracing::debug!(id = %stream.id, "ignoring extra stream"),
            }
        }
        true
    })
    .await;
    // Only the client's stdin and resize are read; dropping the receivers of
    // the other streams discards whatever a client writes there, so that it
    // can never fill a channel and stall the session.
    let Some(error_stream) = streams.error.take().map(|s| s.id) else {
        tracing::info!("SPDY exec: client never opened the error stream");
        let _ = writer.finish().await;
        return;
    };
    match gathered {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!("SPDY exec: client left while opening streams");
            return;
        }
        Err(_elapsed) => {
            let error =
                StreamError::BadRequest("timed out waiting for client to create streams".into());
            tracing::info!(%error, "SPDY exec");
            finish(&writer, error_stream, protocol, &failure_status(&error)).await;
            return;
        }
    }
    let mut client = SpdyClient {
        writer: writer.clone(),
        opened,
        stdin: streams.stdin.take().map(|s| s.data),
        resize: streams.resize.take().map(|s| (s.data, ResizeStream::new())),
        stdout: streams.stdout.take().map(|s| s.id),
        stderr: streams.stderr.take().map(|s| s.id),
    };
    let await_size = client.resize.is_some();
    let outcome = session::run(&mut client, await_size, start).await;
    if let Some(status) = session::final_status(outcome, protocol.name()) {
        finish(&writer, error_stream, protocol, &status).await;
    }
}

/// Status on the error stream, then FIN everything, GOAWAY and close.
async fn finish(
    writer: &SessionWriter,
    error_stream: StreamId,
    protocol: Protocol,
    status: &ExitStatus,
) {
    let mut bytes = Vec::new();
    status.encode(protocol, &mut bytes);
    if writer
        .send(error_stream, Bytes::from(bytes), false)
        .await
        .is_ok()
    {
        let _ = writer.finish().await;
    }
}

struct SpdyClient {
    writer: SessionWriter,
    /// Further streams (ignored); its end is the session's end.
    opened: mpsc::UnboundedReceiver<OpenedStream>,
    stdin: Option<mpsc::Receiver<Bytes>>,
    resize: Option<(mpsc::Receiver<Bytes>, ResizeStream)>,
    stdout: Option<StreamId>,
    stderr: Option<StreamId>,
}

async fn recv_opt(rx: Option<&mut mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl ClientSide for SpdyClient {
    async fn next_event(&mut self) -> Result<ClientEvent, StreamError> {
        tokio::select! {
            extra = self.opened.recv() => Ok(match extra {
                Some(stream) => {
                    tracing::debug!(id = %stream.id, "ignoring extra stream");
                    ClientEvent::Nothing
                }
                None => ClientEvent::Gone,
            }),
            chunk = recv_opt(self.stdin.as_mut()) => Ok(match chunk {
                Some(bytes) => ClientEvent::Stdin(bytes),
                None => {
                    // FIN (or RST) on stdin.
                    self.stdin = None;
                    ClientEvent::StdinEof
                }
            }),
            chunk = recv_opt(self.resize.as_mut().map(|(rx, _)| rx)) => Ok(match (chunk, &mut self.resize) {
                (Some(payload), Some((_, stream))) => stream.handle(&payload),
                // The resize stream ended: sizes stay as they are.
                _ => {
                    self.resize = None;
                    ClientEvent::Nothing
                }
            }),
        }
    }

    async fn send_output(&mut self, output: Output) -> Result<(), StreamError> {
        let (id, bytes) = match output {
            Output::Stdout(bytes) => (self.stdout, bytes),
            Output::Stderr(bytes) => (self.stderr, bytes),
        };
        let Some(id) = id else { return Ok(()) };
        self.writer.send(id, bytes, false).await.map_err(|closed| {
            StreamError::Io(std::io::Error::new(std::io::ErrorKind::BrokenPipe, closed))
        })
    }
}
