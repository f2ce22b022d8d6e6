//! Port-forward framing (PROTOCOLS.md §6): SPDY stream headers, the
//! WebSocket tunnel's subprotocol, and the legacy WebSocket channels.

use bytes::Bytes;

use crate::channel::Channel;
use crate::error::DecodeError;
use crate::spdy::Headers;

/// The SPDY stream protocol of port-forward (`X-Stream-Protocol-Version`).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// Prefix that turns a SPDY protocol into a WebSocket tunnel subprotocol.
pub const TUNNEL_PREFIX: &str = "SPDY/3.1+";
/// The WebSocket subprotocol of the tunnel: SPDY bytes inside binary
/// messages, whose boundaries mean nothing, so the payloads are simply fed
/// to a [`crate::spdy::Connection`] in order (text messages are an error).
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// Header naming the stream's role.
pub const HEADER_STREAM_TYPE: &str = "streamtype";
/// Header holding the remote port in decimal.
pub const HEADER_PORT: &str = "port";
/// Header pairing a connection's data and error streams.
pub const HEADER_REQUEST_ID: &str = "requestid";

/// The SPDY protocol inside a tunnel subprotocol, e.g. `portforward.k8s.io`
/// from `SPDY/3.1+portforward.k8s.io`.
pub fn tunnel_inner_protocol(subprotocol: &str) -> Option<&str> {
    subprotocol.strip_prefix(TUNNEL_PREFIX)
}

/// The role of a port-forward stream (or legacy channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// `error`: server → client text when forwarding fails.
    Error,
    /// `data`: the forwarded bytes, both ways.
    Data,
}

impl StreamKind {
    /// The `streamtype` value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Data => "data",
        }
    }
}

/// The headers of one port-forward SYN_STREAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeaders {
    /// Error or data.
    pub kind: StreamKind,
    /// Remote port, 1–65535.
    pub port: u16,
    /// Pairs the two streams of one connection; kubectl counts from 0 per session.
    pub request_id: Option<String>,
}

impl StreamHeaders {
    /// The SPDY headers, lower-case names as kubectl sends them.
    pub fn to_headers(&self) -> Headers {
        let headers = Headers::new()
            .with(HEADER_STREAM_TYPE, self.kind.name())
            .with(HEADER_PORT, self.port.to_string());
        match &self.request_id {
            Some(id) => headers.with(HEADER_REQUEST_ID, id.clone()),
            None => headers,
        }
    }

    /// Validates a peer's headers as the kubelet does: `streamtype` must be
    /// error or data and `port` an integer in 1–65535.
    pub fn from_headers(headers: &Headers) -> Result<Self, DecodeError> {
        let invalid = |name: &'static str, value: Option<&str>| DecodeError::InvalidHeader {
            name,
            value: value.map(str::to_owned),
        };
        let kind = match headers.get(HEADER_STREAM_TYPE) {
            Some(v) if v.eq_ignore_ascii_case("error") => StreamKind::Error,
            Some(v) if v.eq_ignore_ascii_case("data") => StreamKind::Data,
            other => return Err(invalid(HEADER_STREAM_TYPE, other)),
        };
        let port = headers.get(HEADER_PORT);
        let port = port
            // Go's ParseUint takes digits only; Rust's parse also takes "+80".
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|&p| p != 0)
            .ok_or_else(|| invalid(HEADER_PORT, port))?;
        Ok(Self {
            kind,
            port,
            request_id: headers.get(HEADER_REQUEST_ID).map(str::to_owned),
        })
    }
}

/// The legacy WebSocket port-forward (`?ports=…`, PROTOCOLS.md §6.3):
/// port index i uses channel 2i for data and 2i+1 for error text.
pub mod legacy {
    use super::{Bytes, Channel, DecodeError, StreamKind};

    /// Most ports one legacy session can carry (channels are one byte).
    pub const MAX_PORTS: usize = 128;

    /// The channel of port index `index` and `kind`, or `None` past
    /// [`MAX_PORTS`].
    pub fn channel(index: usize, kind: StreamKind) -> Option<Channel> {
        let base = u8::try_from(index.checked_mul(2)?).ok()?;
        match kind {
            StreamKind::Data => Some(Channel(base)),
            StreamKind::Error => base.checked_add(1).map(Channel),
        }
    }

    /// The payload of the first server message on every channel: the
    /// port, little-endian.
    pub const fn port_prefix(port: u16) -> [u8; 2] {
        port.to_le_bytes()
    }

    /// What one received message carried, prefix stripped.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Received {
        /// Port index.
        pub index: usize,
        /// Data or error channel.
        pub kind: StreamKind,
        /// The port, when this message completed the channel's prefix.
        pub port: Option<u16>,
        /// Payload after the prefix; may be empty.
        pub payload: Bytes,
    }

    /// Client side: strips each channel's 2-byte port prefix, even if a
    /// server splits it across messages.
    #[derive(Debug, Clone)]
    pub struct PrefixStripper {
        /// Per channel: prefix bytes seen so far (0, 1, or 2 = done).
        seen: Vec<(u8, u8)>,
    }

    impl PrefixStripper {
        /// A stripper for `ports` forwarded ports (at most [`MAX_PORTS`]).
        pub fn new(ports: usize) -> Self {
            Self {
                seen: vec![(0, 0); ports.min(MAX_PORTS) * 2],
            }
        }

        /// Handles one message's channel and payload.
        pub fn handle_message(
            &mut self,
            channel: Channel,
            mut payload: Bytes,
        ) -> Result<Received, DecodeError> {
            let ports = self.seen.len() / 2;
            let slot = self.seen.get_mut(usize::from(channel.0)).ok_or(
                DecodeError::UnknownPortChannel {
                    channel: channel.0,
                    ports,
                },
            )?;
            let mut port = None;
            while slot.0 < 2 && !payload.is_empty() {
                let byte = payload.split_to(1)[0];
                if slot.0 == 0 {
                    slot.1 = byte;
                } else {
                    port = Some(u16::from_le_bytes([slot.1, byte]));
                }
                slot.0 += 1;
            }
            Ok(Received {
                index: usize::from(channel.0 / 2),
                kind: if channel.0 % 2 == 0 {
                    StreamKind::Data
                } else {
                    StreamKind::Error
                },
                port,
                payload,
            })
        }
    }
}
