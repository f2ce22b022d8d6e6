//! The remotecommand subprotocol names and their negotiation (PROTOCOLS.md
//! §3.1 and §4.1).

use std::fmt;

/// The carrier of a remotecommand session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// WebSocket: `Sec-WebSocket-Protocol`.
    WebSocket,
    /// SPDY/3.1: `X-Stream-Protocol-Version`.
    Spdy,
}

/// A remotecommand stream protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `channel.k8s.io` (also what a WebSocket without subprotocol speaks).
    V1,
    /// `base64.channel.k8s.io`: v1 with text/base64 messages (WebSocket only).
    V1Base64,
    /// `v2.channel.k8s.io` (SPDY only).
    V2,
    /// `v3.channel.k8s.io`: adds the resize stream (SPDY only).
    V3,
    /// `v4.channel.k8s.io`: Status JSON on the error channel.
    V4,
    /// `v4.base64.channel.k8s.io`: v4 with text/base64 messages (WebSocket only).
    V4Base64,
    /// `v5.channel.k8s.io`: adds the close message (half-close).
    V5,
}

impl Protocol {
    /// Every protocol, newest first.
    pub const ALL: [Self; 7] = [
        Self::V5,
        Self::V4,
        Self::V4Base64,
        Self::V3,
        Self::V2,
        Self::V1,
        Self::V1Base64,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::V1 => "channel.k8s.io",
            Self::V1Base64 => "base64.channel.k8s.io",
            Self::V2 => "v2.channel.k8s.io",
            Self::V3 => "v3.channel.k8s.io",
            Self::V4 => "v4.channel.k8s.io",
            Self::V4Base64 => "v4.base64.channel.k8s.io",
            Self::V5 => "v5.channel.k8s.io",
        }
    }

    /// The protocol with this wire name (exact, as servers compare).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether messages are text with base64 payloads.
    pub const fn is_base64(self) -> bool {
        matches!(self, Self::V1Base64 | Self::V4Base64)
    }

    /// Whether the error channel carries Status JSON (v4 and later) rather
    /// than failure text.
    pub const fn has_json_status(self) -> bool {
        matches!(self, Self::V4 | Self::V4Base64 | Self::V5)
    }

    /// Whether half-close (`FF ch` over WebSocket) exists.
    pub const fn has_close(self) -> bool {
        matches!(self, Self::V5)
    }

    /// Whether terminal resize exists over `transport`: a SPDY resize stream
    /// needs v3 or later; WebSocket servers always read channel 4.
    pub const fn has_resize(self, transport: Transport) -> bool {
        match transport {
            Transport::WebSocket => true,
            Transport::Spdy => matches!(self, Self::V3 | Self::V4 | Self::V5),
        }
    }

    /// Whether `transport` can carry this protocol.
    pub const fn runs_over(self, transport: Transport) -> bool {
        match transport {
            Transport::WebSocket => !matches!(self, Self::V2 | Self::V3),
            Transport::Spdy => !self.is_base64(),
        }
    }

    /// What a client offers, in preference order: over SPDY kubectl's
    /// v5…v1 list; over WebSocket v5, then v4 and v1 so that servers
    /// without the v5 translator can still answer.
    pub const fn client_offer(transport: Transport) -> &'static [Self] {
        match transport {
            Transport::WebSocket => &[Self::V5, Self::V4, Self::V1],
            Transport::Spdy => &[Self::V5, Self::V4, Self::V3, Self::V2, Self::V1],
        }
    }

    /// The server's choice: the first offered name it `supports` and that
    /// runs over `transport`. Each header value may hold several
    /// comma-separated names.
    pub fn server_pick<'a>(
        transport: Transport,
        offered: impl IntoIterator<Item = &'a str>,
        supports: &[Self],
    ) -> Option<Self> {
        offered
            .into_iter()
            .flat_map(|value| value.split(','))
            .filter_map(|name| Self::from_name(name.trim()))
            .find(|p| p.runs_over(transport) && supports.contains(p))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
