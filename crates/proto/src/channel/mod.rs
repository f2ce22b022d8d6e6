//! The remotecommand channel protocols (exec and attach) and their
//! WebSocket messages (PROTOCOLS.md §3).
//!
//! Over WebSocket every message is one channel byte plus payload (binary
//! forms) or one ASCII digit plus base64 (text forms). Over SPDY the same
//! channels are streams named by the `streamtype` header; only
//! [`StreamType`] and the resize payload apply there.

mod message;
mod protocol;
mod resize;

use std::fmt;

pub use message::{decode_message, encode_close, encode_data, ChannelMessage, MessageKind};
pub use protocol::{Protocol, Transport};
pub use resize::{ResizeDecoder, TerminalSize};

/// A channel number of the WebSocket forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(pub u8);

impl Channel {
    /// 0, client → server.
    pub const STDIN: Self = Self(0);
    /// 1, server → client.
    pub const STDOUT: Self = Self(1);
    /// 2, server → client.
    pub const STDERR: Self = Self(2);
    /// 3, server → client: the status (see [`crate::status`]).
    pub const ERROR: Self = Self(3);
    /// 4, client → server: JSON terminal sizes.
    pub const RESIZE: Self = Self(4);

    /// Whether this is one of the five defined channels; servers and
    /// clients ignore the others.
    pub const fn is_known(self) -> bool {
        self.0 <= 4
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The `streamtype` of a SPDY remotecommand stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// `error`: the status; always opened first.
    Error,
    /// `stdin`.
    Stdin,
    /// `stdout`.
    Stdout,
    /// `stderr`.
    Stderr,
    /// `resize` (v3 and later, tty only).
    Resize,
}

impl StreamType {
    /// The header value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Stdin => "stdin",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Resize => "resize",
        }
    }

    /// The stream type for a header value; servers ignore unknown ones.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Error,
            Self::Stdin,
            Self::Stdout,
            Self::Stderr,
            Self::Resize,
        ]
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The WebSocket channel with the same role.
    pub const fn channel(self) -> Channel {
        match self {
            Self::Stdin => Channel::STDIN,
            Self::Stdout => Channel::STDOUT,
            Self::Stderr => Channel::STDERR,
            Self::Error => Channel::ERROR,
            Self::Resize => Channel::RESIZE,
        }
    }
}
