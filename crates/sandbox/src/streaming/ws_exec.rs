//! Exec and attach over WebSocket: `v5.channel.k8s.io`, `v4.channel.k8s.io`,
//! `v4.base64.channel.k8s.io`, `channel.k8s.io` and `base64.channel.k8s.io`
//! (PROTOCOLS.md §3), with podlink-proto doing every byte of framing.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use podlink_proto::channel::{
    decode_message, encode_data, Channel, ChannelMessage, MessageKind, Protocol,
};
use podlink_proto::status::ExitStatus;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::error::StreamError;
use super::process::Output;
use super::session::{self, ClientEvent, ClientSide, ResizeStream, Start};

/// After the close frame, how long the server waits for the client's close
/// before dropping the connection.
const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// Largest message or frame accepted from a client (kubectl sends ≤32 KiB;
/// other clients send one message per write).
const MAX_MESSAGE: usize = 16 << 20;

/// WebSocket limits for every server-side streaming connection.
pub(crate) fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .max_write_buffer_size(4 * MAX_MESSAGE)
}

/// Which channels the session carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channels {
    /// stdout was requested.
    pub(crate) stdout: bool,
    /// stderr was requested.
    pub(crate) stderr: bool,
    /// The process runs under a terminal.
    pub(crate) tty: bool,
}

/// Runs one exec or attach session on an accepted WebSocket; `start`
/// starts the process (its failure is sent as the status).
pub(crate) async fn serve<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    channels: Channels,
    start: Start,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut client = WsClient {
        ws,
        protocol,
        resize: ResizeStream::new(),
        stdin_open: true,
        scratch: BytesMut::new(),
    };
    // Real servers greet with one channel byte: the first writable channel.
    let greeting = if channels.stdout {
        Channel::STDOUT
    } else if channels.stderr {
        Channel::STDERR
    } else {
        Channel::ERROR
    };
    if let Err(error) = client.send(greeting, &[]).await {
        tracing::debug!(%error, "client left before the greeting");
        return;
    }
    let outcome = session::run(&mut client, channels.tty, start).await;
    if let Some(status) = session::final_status(outcome, protocol.name()) {
        client.finish(&status).await;
    }
}

struct WsClient<S> {
    ws: WebSocketStream<S>,
    protocol: Protocol,
    resize: ResizeStream,
    stdin_open: bool,
    scratch: BytesMut,
}

impl<S> WsClient<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn send(&mut self, channel: Channel, payload: &[u8]) -> Result<(), StreamError> {
        let kind = encode_data(self.protocol, channel, payload, &mut self.scratch);
        let bytes = self.scratch.split().freeze();
        let message = match kind {
            MessageKind::Binary => Message::Binary(bytes),
            MessageKind::Text => Message::Text(
                Utf8Bytes::try_from(bytes)
                    .map_err(|_| StreamError::BadRequest("base64 text is not UTF-8".into()))?,
            ),
        };
        self.ws.send(message).await?;
        Ok(())
    }

    /// Status, close 1000, then wait (bounded) for the client's close so
    /// that everything sent is read before TCP closes (PROTOCOLS.md §3.7).
    async fn finish(mut self, status: &ExitStatus) {
        let mut bytes = Vec::new();
        status.encode(self.protocol, &mut bytes);
        if !bytes.is_empty() {
            if let Err(error) = self.send(Channel::ERROR, &bytes).await {
                tracing::debug!(%error, "cannot send status");
                return;
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        if self.ws.send(Message::Close(Some(close))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

impl<S> ClientSide for WsClient<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn next_event(&mut self) -> Result<ClientEvent, StreamError> {
        let message = match self.ws.next().await {
            None => return Ok(ClientEvent::Gone),
            Some(message) => message?,
        };
        let (kind, payload) = match message {
            Message::Binary(bytes) => (MessageKind::Binary, bytes),
            Message::Text(text) => (MessageKind::Text, Bytes::from(text)),
            Message::Close(_) => return Ok(ClientEvent::Gone),
            // tungstenite answers pings by itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                return Ok(ClientEvent::Nothing)
            }
        };
        Ok(match decode_message(self.protocol, kind, payload)? {
            ChannelMessage::Data { channel, payload } if channel == Channel::STDIN => {
                if self.stdin_open {
                    ClientEvent::Stdin(payload)
                } else {
                    // Writes after the half-close are dropped.
                    ClientEvent::Nothing
                }
            }
            ChannelMessage::Data { channel, payload } if channel == Channel::RESIZE => {
                self.resize.handle(&payload)
            }
            ChannelMessage::Close { channel } if channel == Channel::STDIN => {
                self.stdin_open = false;
                ClientEvent::StdinEof
            }
            // Empty messages, server channels and unknown channels.
            _ => ClientEvent::Nothing,
        })
    }

    async fn send_output(&mut self, output: Output) -> Result<(), StreamError> {
        match output {
            Output::Stdout(bytes) => self.send(Channel::STDOUT, &bytes).await,
            Output::Stderr(bytes) => self.send(Channel::STDERR, &bytes).await,
        }
    }
}
