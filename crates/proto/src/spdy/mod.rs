//! SPDY/3 as moby/spdystream speaks it: frames, header blocks and the
//! session machine (PROTOCOLS.md §4–5).

mod conn;
mod dictionary;
pub mod frame;
pub mod headers;

pub use conn::{Config, Connection, Event, Role, StreamState};
pub use dictionary::{SPDY3_DICTIONARY, SPDY3_DICTIONARY_ADLER32};
pub use frame::{Frame, GoAwayStatus, PingId, RstStatus, StreamId};
pub use headers::{HeaderCompressor, HeaderDecompressor, HeaderLimits, Headers};

/// The `Upgrade` token of a SPDY upgrade request and its 101.
pub const UPGRADE_TOKEN: &str = "SPDY/3.1";
/// The header that lists and echoes stream protocols in a SPDY upgrade.
pub const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
/// The header of a 403 that lists the server's protocols.
pub const ACCEPTED_PROTOCOLS_HEADER: &str = "X-Accepted-Stream-Protocol-Versions";
/// The only header of a remotecommand SYN_STREAM.
pub const STREAM_TYPE_HEADER: &str = "streamtype";
