//! WebSocket messages of the channel protocols (PROTOCOLS.md §3.2, §3.4).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};

use super::{Channel, Protocol};
use crate::error::DecodeError;

/// The v5 marker byte that turns a message into a half-close.
pub const CLOSE_MARKER: u8 = 0xFF;

/// The WebSocket opcode a message travels with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Opcode 2.
    Binary,
    /// Opcode 1 (base64 protocols).
    Text,
}

/// One decoded WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    /// Payload for a channel; may be empty (the server's greeting is an
    /// empty stdout message), and the channel may be unknown: both are to
    /// be ignored, not treated as errors.
    Data {
        /// The channel.
        channel: Channel,
        /// The payload, sharing the message's buffer on binary protocols.
        payload: Bytes,
    },
    /// v5 `FF ch`: the sender will write nothing more on `channel`.
    Close {
        /// The half-closed channel.
        channel: Channel,
    },
    /// A message without even a channel byte; ignored by every peer.
    Empty,
}

/// Decodes one message received on `protocol`.
///
/// Text messages are accepted on the binary protocols (the Python client
/// sends stdin as text); binary messages on a base64 protocol are an error.
pub fn decode_message(
    protocol: Protocol,
    kind: MessageKind,
    mut message: Bytes,
) -> Result<ChannelMessage, DecodeError> {
    let Some(&first) = message.first() else {
        return Ok(ChannelMessage::Empty);
    };
    if protocol.is_base64() {
        if kind == MessageKind::Binary {
            return Err(DecodeError::UnexpectedBinary(protocol.name()));
        }
        let payload = STANDARD
            .decode(&message[1..])
            .map_err(|e| DecodeError::Base64(e.to_string()))?;
        return Ok(ChannelMessage::Data {
            // Go's wsstream subtracts '0' without checking, so channels above 9
            // travel as the bytes after '9'.
            channel: Channel(first.wrapping_sub(b'0')),
            payload: Bytes::from(payload),
        });
    }
    if first == CLOSE_MARKER && protocol.has_close() {
        return match *message {
            [_, channel] => Ok(ChannelMessage::Close {
                channel: Channel(channel),
            }),
            _ => Err(DecodeError::InvalidClose { len: message.len() }),
        };
    }
    let payload = message.split_off(1);
    Ok(ChannelMessage::Data {
        channel: Channel(first),
        payload,
    })
}

/// Appends a data message for `channel` to `dst` and says which opcode to
/// send it with.
///
/// Binary forms cost one copy of `payload`; a caller that owns its read
/// buffer can avoid even that by reserving byte 0 for the channel and
/// reading into the rest. Base64 forms encode into `dst` directly. On v5,
/// channel 255 is the close marker: use [`encode_close`] for that.
pub fn encode_data(
    protocol: Protocol,
    channel: Channel,
    payload: &[u8],
    dst: &mut BytesMut,
) -> MessageKind {
    if protocol.is_base64() {
        dst.reserve(1 + payload.len().div_ceil(3) * 4);
        dst.put_u8(b'0'.wrapping_add(channel.0));
        let start = dst.len();
        dst.resize(
            start + base64::encoded_len(payload.len(), true).unwrap_or(0),
            0,
        );
        // The buffer was sized by encoded_len, so encoding cannot fail.
        let written = STANDARD
            .encode_slice(payload, &mut dst[start..])
            .unwrap_or(0);
        dst.truncate(start + written);
        MessageKind::Text
    } else {
        dst.reserve(1 + payload.len());
        dst.put_u8(channel.0);
        dst.put_slice(payload);
        MessageKind::Binary
    }
}

/// Appends the v5 half-close message `FF ch` to `dst` (binary).
pub fn encode_close(channel: Channel, dst: &mut BytesMut) -> MessageKind {
    dst.put_u8(CLOSE_MARKER);
    dst.put_u8(channel.0);
    MessageKind::Binary
}
