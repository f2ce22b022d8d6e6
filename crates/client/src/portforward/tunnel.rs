//! The WebSocket tunnel (`SPDY/3.1+portforward.k8s.io`, PROTOCOLS.md §6.2)
//! as a plain byte stream, so that the same SPDY driver runs over it and over
//! a raw SPDY upgrade.
//!
//! Reading yields the concatenated payloads of binary messages (boundaries
//! mean nothing); a close with code 1000 (or none) is end-of-stream, any
//! other close code or a text message is an error. Each write becomes one
//! binary message.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::upgrade::WebSocket;

/// A tunnel WebSocket read and written as bytes.
pub(crate) struct TunnelIo {
    ws: WebSocket,
    /// The unread rest of the last binary message.
    pending: Bytes,
    /// End of stream seen (close frame or end of the socket).
    eof: bool,
    /// Our close frame has been queued.
    closing: bool,
}

impl TunnelIo {
    pub(crate) fn new(ws: WebSocket) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
            eof: false,
            closing: false,
        }
    }
}

fn ws_error(err: tungstenite::Error) -> io::Error {
    match err {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the tunnel is closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl AsyncRead for TunnelIo {
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
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                // tungstenite answers pings itself; pongs only prove liveness,
                // which the SPDY keepalive measures on its own.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text message in the port-forward tunnel",
                    )))
                }
                Some(Ok(Message::Close(frame))) => match frame {
                    None => self.eof = true,
                    Some(f) if f.code == CloseCode::Normal => self.eof = true,
                    Some(f) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            format!(
                                "tunnel closed by the server: {} {}",
                                u16::from(f.code),
                                f.reason
                            ),
                        )))
                    }
                },
                Some(Err(e)) => return Poll::Ready(Err(ws_error(e))),
                None => self.eof = true,
            }
        }
    }
}

impl AsyncWrite for TunnelIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_error)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(ws_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.closing {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_error)?;
            // An explicit 1000: servers read any other close as an error.
            let close = Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }));
            Pin::new(&mut self.ws).start_send(close).map_err(ws_error)?;
            self.closing = true;
        }
        Pin::new(&mut self.ws).poll_close(cx).map_err(ws_error)
    }
}
