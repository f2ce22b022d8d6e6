//! The channel protocol's WebSocket messages as the driver needs them: a
//! thin adapter from tungstenite messages to `podlink_proto::channel`.

use bytes::{Bytes, BytesMut};
use podlink_proto::channel::{
    decode_message, encode_close, encode_data, Channel, ChannelMessage, MessageKind, Protocol,
    Transport,
};
use tokio_tungstenite::tungstenite::Message;

use super::{ExitStatus, TerminalSize};
use crate::error::{Error, Result};

/// What a server message carried that the caller cares about.
#[derive(Debug)]
pub(crate) enum Incoming {
    Stdout(Bytes),
    Stderr(Bytes),
    Status(Bytes),
}

/// The WebSocket subprotocols we offer, best first. When stdin must be
/// closable (stdin without a terminal), only v5 can carry end-of-file, so
/// only v5 is offered and a refusal falls back to SPDY rather than leaving
/// the command waiting for input forever.
pub(crate) fn offer(needs_stdin_close: bool) -> Vec<&'static str> {
    let all = Protocol::client_offer(Transport::WebSocket);
    all.iter()
        .filter(|p| !needs_stdin_close || p.has_close())
        .map(|p| p.name())
        .collect()
}

/// Encoder/decoder for the agreed subprotocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsCodec(Protocol);

impl WsCodec {
    pub(crate) fn new(subprotocol: &str) -> Option<Self> {
        Protocol::from_name(subprotocol)
            .filter(|p| p.runs_over(Transport::WebSocket))
            .map(Self)
    }

    /// `data` on `channel` as a message, encoded at the end of `frames` and
    /// split off it (so one allocation can serve many messages).
    fn message(self, frames: &mut BytesMut, channel: Channel, data: &[u8]) -> Message {
        let kind = encode_data(self.0, channel, data, frames);
        to_message(kind, frames.split())
    }

    /// Stdin bytes as a message, encoded into `frames` (see [`Self::message`]).
    pub(crate) fn stdin(self, frames: &mut BytesMut, data: &[u8]) -> Message {
        self.message(frames, Channel::STDIN, data)
    }

    /// The v5 half-close of stdin; `None` where the protocol has none.
    pub(crate) fn close_stdin(self) -> Option<Message> {
        self.0.has_close().then(|| {
            let mut buf = BytesMut::new();
            to_message(encode_close(Channel::STDIN, &mut buf), buf)
        })
    }

    pub(crate) fn resize(self, size: TerminalSize) -> Message {
        let mut json = Vec::new();
        podlink_proto::channel::TerminalSize {
            width: size.width,
            height: size.height,
        }
        .encode(&mut json);
        self.message(&mut BytesMut::new(), Channel::RESIZE, &json)
    }

    pub(crate) fn decode(self, message: Message) -> Result<Option<Incoming>> {
        let (kind, bytes) = match message {
            Message::Binary(bytes) => (MessageKind::Binary, bytes),
            Message::Text(text) => (MessageKind::Text, Bytes::from(text.as_str().to_owned())),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {
                return Ok(None)
            }
        };
        let decoded =
            decode_message(self.0, kind, bytes).map_err(|e| Error::Protocol(Box::new(e)))?;
        Ok(match decoded {
            ChannelMessage::Data { channel, payload } if !payload.is_empty() => match channel {
                Channel::STDOUT => Some(Incoming::Stdout(payload)),
                Channel::STDERR => Some(Incoming::Stderr(payload)),
                Channel::ERROR => Some(Incoming::Status(payload)),
                _ => None,
            },
            _ => None,
        })
    }

    /// The status from everything the error channel carried.
    pub(crate) fn exit_status(self, status: &[u8]) -> Result<ExitStatus> {
        decode_status(self.0, status)
    }
}

/// Decode the error channel; a v4/v5 session without one is
/// [`ExitStatus::Missing`], never success.
pub(crate) fn decode_status(protocol: Protocol, status: &[u8]) -> Result<ExitStatus> {
    ExitStatus::decode(protocol, status).map_err(|e| Error::Protocol(Box::new(e)))
}

fn to_message(kind: MessageKind, buf: BytesMut) -> Message {
    match kind {
        MessageKind::Binary => Message::Binary(buf.freeze()),
        // encode_data writes ASCII (a digit and base64) for text kinds.
        MessageKind::Text => Message::Text(String::from_utf8_lossy(&buf).into_owned().into()),
    }
}
