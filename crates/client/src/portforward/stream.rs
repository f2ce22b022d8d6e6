//! [`PodStream`]: one forwarded connection as `AsyncRead + AsyncWrite`.
//!
//! The stream talks to the transport's driver task over two bounded
//! channels, so a side that stops reading holds back the other side instead
//! of growing a buffer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::error::ForwardError;
use super::stats::Counters;

/// Largest chunk one write hands to the driver; bigger writes are split.
pub(crate) const MAX_CHUNK: usize = 256 * 1024;
/// Chunks in flight per direction per connection: bounds memory to about
/// `DEPTH * MAX_CHUNK` (1 MiB) per direction, enough to keep a fast link busy.
const DEPTH: usize = 4;
/// Buffer of each direction of the local copy loop.
const COPY_BUFFER: usize = 256 * 1024;

/// What a stream sends to its driver.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Bytes for the pod.
    Data(Bytes),
    /// Local end-of-stream (half-close where the protocol has one).
    Fin,
}

/// The driver's side of one [`PodStream`].
pub(crate) struct StreamEnds {
    /// Data from the pod; an `Err` ends the stream with that error, and
    /// dropping the sender is end-of-stream.
    pub(crate) inbound: mpsc::Sender<Result<Bytes, ForwardError>>,
    /// Data for the pod; the channel closing without [`Outbound::Fin`] means
    /// the stream was dropped: reset it.
    pub(crate) outbound: mpsc::Receiver<Outbound>,
}

/// A byte stream to one port of the pod, over the forwarder's session.
///
/// Reads return the pod's bytes and end (`Ok(0)`) at the pod's end of
/// stream; an error the server reports for this connection (port refused,
/// reset) comes out of `read` as an [`io::Error`] wrapping a
/// [`ForwardError::Remote`]. `shutdown` sends end-of-stream to the pod;
/// dropping the stream without it resets the connection.
pub struct PodStream {
    port: u16,
    inbound: mpsc::Receiver<Result<Bytes, ForwardError>>,
    pending: Bytes,
    eof: bool,
    outbound: PollSender<Outbound>,
    fin_sent: bool,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for PodStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodStream")
            .field("port", &self.port)
            .field("eof", &self.eof)
            .field("fin_sent", &self.fin_sent)
            .finish_non_exhaustive()
    }
}

impl PodStream {
    /// A stream to `port` and the driver's ends of it.
    pub(crate) fn new(port: u16, counters: Arc<Counters>) -> (Self, StreamEnds) {
        let (in_tx, in_rx) = mpsc::channel(DEPTH);
        let (out_tx, out_rx) = mpsc::channel(DEPTH);
        counters.connection_opened();
        let stream = Self {
            port,
            inbound: in_rx,
            pending: Bytes::new(),
            eof: false,
            outbound: PollSender::new(out_tx),
            fin_sent: false,
            counters,
        };
        let ends = StreamEnds {
            inbound: in_tx,
            outbound: out_rx,
        };
        (stream, ends)
    }

    /// The pod port this stream is connected to.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Copies between `local` and the pod both ways until both directions
    /// have ended, with large buffers; returns the bytes moved
    /// (to the pod, from the pod).
    pub(crate) async fn copy_with<L>(&mut self, local: &mut L) -> io::Result<(u64, u64)>
    where
        L: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        tokio::io::copy_bidirectional_with_sizes(local, self, COPY_BUFFER, COPY_BUFFER).await
    }
}

/// The typed error inside an IO error from a [`PodStream`], or the IO error
/// itself.
pub(crate) fn explain(err: io::Error) -> ForwardError {
    if err.get_ref().is_some_and(|e| e.is::<ForwardError>()) {
        match err.into_inner().map(|e| e.downcast::<ForwardError>()) {
            Some(Ok(typed)) => *typed,
            Some(Err(other)) => ForwardError::Io(io::Error::other(other)),
            None => ForwardError::Stopped,
        }
    } else {
        ForwardError::Io(err)
    }
}

fn closed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        ForwardError::SessionLost {
            reason: "the connection to the pod was closed".into(),
        },
    )
}

impl AsyncRead for PodStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.inbound.poll_recv(cx)) {
                Some(Ok(data)) => {
                    self.counters.add_from_pod(data.len());
                    self.pending = data;
                }
                Some(Err(e)) => {
                    self.eof = true;
                    let kind = match e {
                        ForwardError::Remote { .. } => io::ErrorKind::ConnectionRefused,
                        _ => io::ErrorKind::ConnectionReset,
                    };
                    return Poll::Ready(Err(io::Error::new(kind, e)));
                }
                None => self.eof = true,
            }
        }
    }
}

impl AsyncWrite for PodStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.fin_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.outbound.poll_reserve(cx)).map_err(|_| closed_error())?;
        let n = buf.len().min(MAX_CHUNK);
        self.outbound
            .send_item(Outbound::Data(Bytes::copy_from_slice(&buf[..n])))
            .map_err(|_| closed_error())?;
        self.counters.add_to_pod(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every accepted chunk is already with the driver, which writes it
        // out as soon as the connection allows.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.fin_sent {
            return Poll::Ready(Ok(()));
        }
        // A driver that is already gone has closed the connection (the
        // legacy protocol ends it when the pod's side closes): nothing is
        // left to end.
        if ready!(self.outbound.poll_reserve(cx)).is_ok() {
            let _ = self.outbound.send_item(Outbound::Fin);
        }
        self.fin_sent = true;
        Poll::Ready(Ok(()))
    }
}

impl Drop for PodStream {
    fn drop(&mut self) {
        self.counters.connection_closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_both_ways_fin_and_errors() {
        let counters = Arc::new(Counters::default());
        let (mut stream, mut ends) = PodStream::new(80, Arc::clone(&counters));
        stream.write_all(b"hello").await.expect("write");
        stream.shutdown().await.expect("fin");
        assert!(
            matches!(ends.outbound.recv().await, Some(Outbound::Data(d)) if &d[..] == b"hello")
        );
        assert!(matches!(ends.outbound.recv().await, Some(Outbound::Fin)));
        ends.inbound
            .send(Ok(Bytes::from_static(b"world")))
            .await
            .expect("send");
        ends.inbound
            .send(Err(ForwardError::Remote {
                port: 80,
                message: "refused".into(),
            }))
            .await
            .expect("send");
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"world");
        let err = stream.read(&mut buf).await.expect_err("the server's error");
        assert!(matches!(
            explain(err),
            ForwardError::Remote { port: 80, .. }
        ));
        let stats = counters.snapshot();
        assert_eq!(
            (stats.bytes_to_pod, stats.bytes_from_pod, stats.active),
            (5, 5, 1)
        );
        drop(stream);
        assert_eq!(counters.snapshot().active, 0);
    }

    #[tokio::test]
    async fn a_vanished_driver_is_an_error_not_a_hang() {
        let (mut stream, ends) = PodStream::new(80, Arc::new(Counters::default()));
        drop(ends);
        let mut buf = [0u8; 4];
        assert_eq!(stream.read(&mut buf).await.expect("eof"), 0);
        let err = stream.write_all(b"x").await.expect_err("closed");
        assert!(matches!(explain(err), ForwardError::SessionLost { .. }));
        stream.shutdown().await.expect("nothing left to end");
    }
}
