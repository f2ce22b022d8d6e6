//! The three error kinds of the protocol layer.
//!
//! - [`DecodeError`]: bytes that are malformed or exceed a limit.
//! - [`ProtocolError`]: well-formed input that breaks the state machine.
//! - [`UsageError`]: the caller asked for something the machine cannot do.

use std::fmt;

use crate::spdy::StreamId;

/// Malformed input bytes: what was wrong, where, and which limit was hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame announced a payload longer than the configured maximum.
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Announced payload length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// A SPDY control frame carried a version other than 3.
    #[error("unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    /// A control frame's length does not match its fixed fields.
    #[error("{frame} frame with a payload of {len} bytes")]
    BadFrameLength {
        /// Frame type name.
        frame: &'static str,
        /// Announced payload length.
        len: usize,
    },
    /// A header block decompressed to more bytes than allowed (zlib bomb).
    #[error("header block exceeds {max} bytes once decompressed")]
    HeaderBlockTooLarge {
        /// Configured maximum.
        max: usize,
    },
    /// A header block announced more pairs than allowed.
    #[error("header block has {count} pairs, more than the limit of {max}")]
    TooManyHeaders {
        /// Announced pair count.
        count: u32,
        /// Configured maximum.
        max: usize,
    },
    /// A header block's layout is inconsistent (lengths past the end, trailing bytes).
    #[error("malformed header block: {0}")]
    MalformedHeaderBlock(&'static str),
    /// The zlib stream of a header block is corrupt.
    #[error("header block decompression failed: {0}")]
    Compression(String),
    /// Bytes that must be UTF-8 text were not.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A base64 channel message had a bad channel digit or payload.
    #[error("invalid base64 channel message: {0}")]
    Base64(String),
    /// A binary message arrived on a base64 protocol.
    #[error("binary message on the text-only protocol {0}")]
    UnexpectedBinary(&'static str),
    /// A v5 close message was not exactly `FF ch`.
    #[error("v5 close message must be 2 bytes, got {len}")]
    InvalidClose {
        /// Length of the message.
        len: usize,
    },
    /// A JSON stream held a byte that cannot start a value at this point.
    #[error("unexpected byte 0x{byte:02x} at offset {offset} in {what}")]
    UnexpectedByte {
        /// Which stream.
        what: &'static str,
        /// The byte.
        byte: u8,
        /// Offset from the start of the stream.
        offset: u64,
    },
    /// One JSON value was larger than the configured maximum.
    #[error("{what} larger than the limit of {max} bytes")]
    ValueTooLarge {
        /// Which stream.
        what: &'static str,
        /// Configured maximum.
        max: usize,
    },
    /// The stream ended in the middle of a JSON value.
    #[error("{what} truncated: stream ended inside a value ({len} bytes buffered)")]
    Truncated {
        /// Which stream.
        what: &'static str,
        /// Bytes of the incomplete value.
        len: usize,
    },
    /// A stream header is missing or holds a value the protocol forbids.
    #[error("stream header {name}: {}", value.as_deref().map_or("missing".to_owned(), |v| format!("invalid value {v:?}")))]
    InvalidHeader {
        /// Header name.
        name: &'static str,
        /// The value, or `None` if missing.
        value: Option<String>,
    },
    /// A legacy port-forward message used a channel beyond the requested ports.
    #[error("channel {channel} is beyond the {ports} requested ports")]
    UnknownPortChannel {
        /// The channel.
        channel: u8,
        /// Number of ports requested.
        ports: usize,
    },
    /// A complete JSON value did not have the expected shape.
    #[error("invalid {what}: {message}")]
    Json {
        /// What was being decoded.
        what: &'static str,
        /// serde_json's explanation.
        message: String,
    },
}

impl DecodeError {
    pub(crate) fn json(what: &'static str, err: &serde_json::Error) -> Self {
        Self::Json {
            what,
            message: err.to_string(),
        }
    }
}

/// Which side of a connection caused an error or a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// This endpoint (the caller of the machine).
    Local,
    /// The peer.
    Remote,
}

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Remote => "remote",
        })
    }
}

/// The peer broke the SPDY session's rules; the session is over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SPDY protocol error caused by {initiator}{}: {kind}", stream_suffix(*stream))]
pub struct ProtocolError {
    /// What rule was broken.
    pub kind: ProtocolErrorKind,
    /// The stream concerned, if the rule is about one stream.
    pub stream: Option<StreamId>,
    /// Who broke it.
    pub initiator: Initiator,
}

fn stream_suffix(stream: Option<StreamId>) -> String {
    stream
        .map(|s| format!(" on stream {s}"))
        .unwrap_or_default()
}

/// The rule behind a [`ProtocolError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// The peer sent bytes that do not decode.
    #[error("malformed input: {0}")]
    Malformed(#[from] DecodeError),
    /// A frame referred to stream 0 or another id that can never be valid.
    #[error("invalid stream id")]
    InvalidStreamId,
    /// RST_STREAM with status 0, which spdystream treats as fatal.
    #[error("RST_STREAM with status 0")]
    InvalidRstStatus,
}

/// The caller asked a machine for something it cannot do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The stream id is not open on this connection.
    #[error("stream {0} is not open")]
    UnknownStream(StreamId),
    /// Data or FIN after this side already sent FIN or reset the stream.
    #[error("stream {0} is already closed for sending")]
    SendAfterClose(StreamId),
    /// `reply` on a stream this side opened, or a second reply.
    #[error("stream {0} cannot be replied to")]
    CannotReply(StreamId),
    /// No more stream ids of this side's parity are left.
    #[error("stream ids exhausted")]
    StreamIdsExhausted,
    /// Opening a stream after either side sent GOAWAY.
    #[error("the session is going away")]
    GoingAway,
    /// The session already failed or was closed.
    #[error("the session is closed")]
    SessionClosed,
    /// zlib refused to compress a header block.
    #[error("header compression failed: {0}")]
    HeaderCompression(String),
    /// Headers that cannot be encoded (too large once laid out).
    #[error("headers too large to encode: {len} bytes, limit {max}")]
    HeadersTooLarge {
        /// Laid-out size.
        len: usize,
        /// Limit.
        max: usize,
    },
}
