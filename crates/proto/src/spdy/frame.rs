//! SPDY/3 frames as moby/spdystream speaks them (PROTOCOLS.md §5.1–5.2).
//!
//! The codec is stateless: [`Frame::decode`] takes bytes from the front of a
//! buffer only when a whole frame is there, and [`Frame::encode`] appends to
//! a caller's buffer. Header blocks stay compressed here; the connection's
//! [`HeaderCompressor`](super::HeaderCompressor) and
//! [`HeaderDecompressor`](super::HeaderDecompressor) own the zlib streams,
//! which live as long as the session.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::DecodeError;

/// The only SPDY version spdystream speaks (the `SPDY/3.1` token notwithstanding).
pub const VERSION: u16 = 3;
/// Size of every frame header.
pub const HEADER_LEN: usize = 8;
/// Largest payload the 24-bit length field can describe.
pub const MAX_PAYLOAD_LEN: usize = 0x00FF_FFFF;
/// FIN flag on DATA, SYN_STREAM, SYN_REPLY and HEADERS.
pub const FLAG_FIN: u8 = 0x01;
/// UNIDIRECTIONAL flag on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// CLEAR_SETTINGS flag on SETTINGS.
pub const FLAG_SETTINGS_CLEAR: u8 = 0x01;

const STREAM_ID_MASK: u32 = 0x7FFF_FFFF;

/// A 31-bit SPDY stream id. Clients use odd ids, servers even ones; 0 appears
/// only as GOAWAY's "no stream accepted".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(u32);

impl StreamId {
    /// Id 0: never a stream; used by GOAWAY when no peer stream was accepted.
    pub const ZERO: Self = Self(0);
    /// The largest id.
    pub const MAX: Self = Self(STREAM_ID_MASK);

    /// An id from a number, or `None` if it needs more than 31 bits.
    pub const fn new(id: u32) -> Option<Self> {
        if id > STREAM_ID_MASK {
            None
        } else {
            Some(Self(id))
        }
    }

    /// Reads a wire id, ignoring the reserved top bit.
    const fn from_wire(word: u32) -> Self {
        Self(word & STREAM_ID_MASK)
    }

    /// The numeric value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether a client opened (or would open) this stream: odd ids.
    pub const fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// RST_STREAM status codes (SPDY/3 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RstStatus {
    /// 1: the peer broke the protocol.
    ProtocolError,
    /// 2: a frame for a stream that is not active.
    InvalidStream,
    /// 3: the stream was refused before any processing.
    RefusedStream,
    /// 4: unsupported SPDY version.
    UnsupportedVersion,
    /// 5: the stream is no longer needed (Kubernetes' normal reset).
    Cancel,
    /// 6: the sender failed internally.
    InternalError,
    /// 7: flow control violated.
    FlowControlError,
    /// 8: the stream id is already in use.
    StreamInUse,
    /// 9: data or headers after the stream was half-closed.
    StreamAlreadyClosed,
    /// 10: credentials rejected.
    InvalidCredentials,
    /// 11: a frame too large to handle.
    FrameTooLarge,
    /// Any other value, kept as sent (0 included, which spdystream treats as fatal).
    Unknown(u32),
}

impl From<u32> for RstStatus {
    fn from(v: u32) -> Self {
        match v {
            1 => Self::ProtocolError,
            2 => Self::InvalidStream,
            3 => Self::RefusedStream,
            4 => Self::UnsupportedVersion,
            5 => Self::Cancel,
            6 => Self::InternalError,
            7 => Self::FlowControlError,
            8 => Self::StreamInUse,
            9 => Self::StreamAlreadyClosed,
            10 => Self::InvalidCredentials,
            11 => Self::FrameTooLarge,
            other => Self::Unknown(other),
        }
    }
}

impl From<RstStatus> for u32 {
    fn from(s: RstStatus) -> Self {
        match s {
            RstStatus::ProtocolError => 1,
            RstStatus::InvalidStream => 2,
            RstStatus::RefusedStream => 3,
            RstStatus::UnsupportedVersion => 4,
            RstStatus::Cancel => 5,
            RstStatus::InternalError => 6,
            RstStatus::FlowControlError => 7,
            RstStatus::StreamInUse => 8,
            RstStatus::StreamAlreadyClosed => 9,
            RstStatus::InvalidCredentials => 10,
            RstStatus::FrameTooLarge => 11,
            RstStatus::Unknown(v) => v,
        }
    }
}

/// GOAWAY status codes (SPDY/3 §2.6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GoAwayStatus {
    /// 0: a normal shutdown.
    Ok,
    /// 1: the peer broke the protocol.
    ProtocolError,
    /// 2: the sender failed internally.
    InternalError,
    /// Any other value, kept as sent.
    Unknown(u32),
}

impl From<u32> for GoAwayStatus {
    fn from(v: u32) -> Self {
        match v {
            0 => Self::Ok,
            1 => Self::ProtocolError,
            2 => Self::InternalError,
            other => Self::Unknown(other),
        }
    }
}

impl From<GoAwayStatus> for u32 {
    fn from(s: GoAwayStatus) -> Self {
        match s {
            GoAwayStatus::Ok => 0,
            GoAwayStatus::ProtocolError => 1,
            GoAwayStatus::InternalError => 2,
            GoAwayStatus::Unknown(v) => v,
        }
    }
}

/// A PING id. Clients send odd ids, servers even ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PingId(pub u32);

impl PingId {
    /// Whether a client sent this ping: odd ids.
    pub const fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }
}

/// SYN_STREAM: opens a stream (type 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynStream {
    /// The new stream.
    pub stream_id: StreamId,
    /// The stream this one is associated with (0 in Kubernetes).
    pub associated_id: StreamId,
    /// Priority, 0 (highest) to 7.
    pub priority: u8,
    /// Credential slot (0 in Kubernetes).
    pub slot: u8,
    /// The sender sends nothing more on this stream.
    pub fin: bool,
    /// The receiver may not send on this stream.
    pub unidirectional: bool,
    /// Compressed header block.
    pub header_block: Bytes,
}

/// A stream id plus a compressed header block: SYN_REPLY (type 2) and HEADERS (type 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFrame {
    /// The stream.
    pub stream_id: StreamId,
    /// The sender sends nothing more on this stream.
    pub fin: bool,
    /// Compressed header block.
    pub header_block: Bytes,
}

/// One SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Per-entry flags.
    pub flags: u8,
    /// 24-bit setting id.
    pub id: u32,
    /// Value.
    pub value: u32,
}

/// SETTINGS (type 4); spdystream parses and ignores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// FLAG_SETTINGS_CLEAR_SETTINGS.
    pub clear: bool,
    /// The entries, in wire order.
    pub entries: Vec<Setting>,
}

/// A DATA frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The stream.
    pub stream_id: StreamId,
    /// The sender sends nothing more on this stream.
    pub fin: bool,
    /// The payload (possibly empty).
    pub payload: Bytes,
}

/// A control frame of a type spdystream does not know (5 NOOP, 10
/// CREDENTIAL, anything else), kept so that callers can decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFrame {
    /// The type code.
    pub kind: u16,
    /// The flags byte.
    pub flags: u8,
    /// The raw payload.
    pub payload: Bytes,
}

/// Any SPDY/3 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// Type 1.
    SynStream(SynStream),
    /// Type 2.
    SynReply(HeaderFrame),
    /// Type 3.
    RstStream {
        /// The stream.
        stream_id: StreamId,
        /// Why.
        status: RstStatus,
    },
    /// Type 4.
    Settings(Settings),
    /// Type 6.
    Ping(PingId),
    /// Type 7.
    GoAway {
        /// The highest peer-initiated stream the sender processed.
        last_good: StreamId,
        /// Why.
        status: GoAwayStatus,
    },
    /// Type 8.
    Headers(HeaderFrame),
    /// Type 9; spdystream ignores it.
    WindowUpdate {
        /// The stream.
        stream_id: StreamId,
        /// Window increment (31 bits).
        delta: u32,
    },
    /// A data frame.
    Data(Data),
    /// Any other control type.
    Unknown(UnknownFrame),
}

mod kind {
    pub const SYN_STREAM: u16 = 1;
    pub const SYN_REPLY: u16 = 2;
    pub const RST_STREAM: u16 = 3;
    pub const SETTINGS: u16 = 4;
    pub const PING: u16 = 6;
    pub const GOAWAY: u16 = 7;
    pub const HEADERS: u16 = 8;
    pub const WINDOW_UPDATE: u16 = 9;
}

/// The 8-byte header of any frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHead {
    /// A control frame.
    Control {
        /// Protocol version (3).
        version: u16,
        /// Type code.
        kind: u16,
        /// Flags.
        flags: u8,
        /// Payload length.
        len: usize,
    },
    /// A data frame.
    Data {
        /// The stream.
        stream_id: StreamId,
        /// Flags.
        flags: u8,
        /// Payload length.
        len: usize,
    },
}

impl FrameHead {
    /// Parses the first 8 bytes, or `None` if fewer are available.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let head: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        let word1 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let flags = head[4];
        let len = usize::from(head[5]) << 16 | usize::from(head[6]) << 8 | usize::from(head[7]);
        Some(if word1 & 0x8000_0000 != 0 {
            Self::Control {
                version: ((word1 >> 16) & 0x7FFF) as u16,
                kind: (word1 & 0xFFFF) as u16,
                flags,
                len,
            }
        } else {
            Self::Data {
                stream_id: StreamId::from_wire(word1),
                flags,
                len,
            }
        })
    }

    /// Payload length announced by the header.
    pub fn payload_len(&self) -> usize {
        match *self {
            Self::Control { len, .. } | Self::Data { len, .. } => len,
        }
    }
}

impl Frame {
    /// Decodes one frame from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds less than a whole frame (nothing is
    /// consumed); on success the frame's bytes are split off `buf` without
    /// copying DATA payloads. A frame announcing more than `max_payload` bytes
    /// is rejected as soon as its header is seen, so a peer cannot make the
    /// caller buffer it.
    pub fn decode(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Self>, DecodeError> {
        let Some(head) = FrameHead::parse(buf) else {
            return Ok(None);
        };
        let len = head.payload_len();
        if len > max_payload {
            return Err(DecodeError::FrameTooLarge {
                len,
                max: max_payload,
            });
        }
        if let FrameHead::Control { version, .. } = head {
            if version != VERSION {
                return Err(DecodeError::UnsupportedVersion(version));
            }
        }
        if buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        // Validate before consuming so that an error leaves `buf` intact.
        if let FrameHead::Control { kind, flags, .. } = head {
            check_control_len(kind, flags, &buf[HEADER_LEN..HEADER_LEN + len])?;
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(len).freeze();
        Ok(Some(match head {
            FrameHead::Data {
                stream_id, flags, ..
            } => Self::Data(Data {
                stream_id,
                fin: flags & FLAG_FIN != 0,
                payload,
            }),
            FrameHead::Control { kind, flags, .. } => decode_control(kind, flags, payload),
        }))
    }

    /// Appends the encoded frame to `dst`.
    ///
    /// The 24-bit length field cannot describe payloads above
    /// [`MAX_PAYLOAD_LEN`]; callers split large data first, as
    /// [`Connection::send_data`](super::Connection::send_data) does.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Self::SynStream(s) => {
                let flags = fin_flag(s.fin)
                    | if s.unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    };
                put_control_head(dst, kind::SYN_STREAM, flags, 10 + s.header_block.len());
                dst.put_u32(s.stream_id.get());
                dst.put_u32(s.associated_id.get());
                dst.put_u8((s.priority & 0x07) << 5);
                dst.put_u8(s.slot);
                dst.put_slice(&s.header_block);
            }
            Self::SynReply(h) => encode_header_frame(dst, kind::SYN_REPLY, h),
            Self::Headers(h) => encode_header_frame(dst, kind::HEADERS, h),
            Self::RstStream { stream_id, status } => {
                put_control_head(dst, kind::RST_STREAM, 0, 8);
                dst.put_u32(stream_id.get());
                dst.put_u32((*status).into());
            }
            Self::Settings(s) => {
                let flags = if s.clear { FLAG_SETTINGS_CLEAR } else { 0 };
                put_control_head(dst, kind::SETTINGS, flags, 4 + 8 * s.entries.len());
                dst.put_u32(s.entries.len() as u32);
                for e in &s.entries {
                    dst.put_u32(u32::from(e.flags) << 24 | (e.id & 0x00FF_FFFF));
                    dst.put_u32(e.value);
                }
            }
            Self::Ping(id) => {
                put_control_head(dst, kind::PING, 0, 4);
                dst.put_u32(id.0);
            }
            Self::GoAway { last_good, status } => {
                put_control_head(dst, kind::GOAWAY, 0, 8);
                dst.put_u32(last_good.get());
                dst.put_u32((*status).into());
            }
            Self::WindowUpdate { stream_id, delta } => {
                put_control_head(dst, kind::WINDOW_UPDATE, 0, 8);
                dst.put_u32(stream_id.get());
                dst.put_u32(delta & STREAM_ID_MASK);
            }
            Self::Data(d) => {
                encode_data_head(dst, d.stream_id, d.fin, d.payload.len());
                dst.put_slice(&d.payload);
            }
            Self::Unknown(u) => {
                put_control_head(dst, u.kind, u.flags, u.payload.len());
                dst.put_slice(&u.payload);
            }
        }
    }
}

/// Appends only the 8-byte header of a DATA frame, so that a large payload
/// can be written after it without being copied.
pub fn encode_data_head(dst: &mut BytesMut, stream_id: StreamId, fin: bool, len: usize) {
    dst.put_u32(stream_id.get());
    put_flags_len(dst, fin_flag(fin), len);
}

fn fin_flag(fin: bool) -> u8 {
    if fin {
        FLAG_FIN
    } else {
        0
    }
}

fn put_control_head(dst: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    dst.put_u16(0x8000 | VERSION);
    dst.put_u16(kind);
    put_flags_len(dst, flags, len);
}

fn put_flags_len(dst: &mut BytesMut, flags: u8, len: usize) {
    debug_assert!(len <= MAX_PAYLOAD_LEN, "payload too large for one frame");
    dst.put_u32(u32::from(flags) << 24 | (len as u32 & 0x00FF_FFFF));
}

fn encode_header_frame(dst: &mut BytesMut, kind: u16, h: &HeaderFrame) {
    put_control_head(dst, kind, fin_flag(h.fin), 4 + h.header_block.len());
    dst.put_u32(h.stream_id.get());
    dst.put_slice(&h.header_block);
}

/// Checks that a known control frame's length fits its fixed fields.
fn check_control_len(kind: u16, _flags: u8, payload: &[u8]) -> Result<(), DecodeError> {
    let len = payload.len();
    let (name, ok) = match kind {
        kind::SYN_STREAM => ("SYN_STREAM", len >= 10),
        kind::SYN_REPLY => ("SYN_REPLY", len >= 4),
        kind::HEADERS => ("HEADERS", len >= 4),
        kind::RST_STREAM => ("RST_STREAM", len == 8),
        kind::PING => ("PING", len == 4),
        kind::GOAWAY => ("GOAWAY", len == 8),
        kind::WINDOW_UPDATE => ("WINDOW_UPDATE", len == 8),
        kind::SETTINGS => {
            let count = payload
                .get(..4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize);
            let ok =
                count.is_some_and(|n| n.checked_mul(8).and_then(|b| b.checked_add(4)) == Some(len));
            ("SETTINGS", ok)
        }
        _ => return Ok(()),
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::BadFrameLength { frame: name, len })
    }
}

/// Builds a control frame whose length was already checked.
fn decode_control(kind: u16, flags: u8, mut p: Bytes) -> Frame {
    let fin = flags & FLAG_FIN != 0;
    match kind {
        kind::SYN_STREAM => {
            let stream_id = StreamId::from_wire(p.get_u32());
            let associated_id = StreamId::from_wire(p.get_u32());
            let priority = p.get_u8() >> 5;
            let slot = p.get_u8();
            Frame::SynStream(SynStream {
                stream_id,
                associated_id,
                priority,
                slot,
                fin,
                unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                header_block: p,
            })
        }
        kind::SYN_REPLY | kind::HEADERS => {
            let h = HeaderFrame {
                stream_id: StreamId::from_wire(p.get_u32()),
                fin,
                header_block: p,
            };
            if kind == kind::SYN_REPLY {
                Frame::SynReply(h)
            } else {
                Frame::Headers(h)
            }
        }
        kind::RST_STREAM => Frame::RstStream {
            stream_id: StreamId::from_wire(p.get_u32()),
            status: RstStatus::from(p.get_u32()),
        },
        kind::SETTINGS => {
            let count = p.get_u32() as usize;
            let entries = (0..count)
                .map(|_| {
                    let word = p.get_u32();
                    Setting {
                        flags: (word >> 24) as u8,
                        id: word & 0x00FF_FFFF,
                        value: p.get_u32(),
                    }
                })
                .collect();
            Frame::Settings(Settings {
                clear: flags & FLAG_SETTINGS_CLEAR != 0,
                entries,
            })
        }
        kind::PING => Frame::Ping(PingId(p.get_u32())),
        kind::GOAWAY => Frame::GoAway {
            last_good: StreamId::from_wire(p.get_u32()),
            status: GoAwayStatus::from(p.get_u32()),
        },
        kind::WINDOW_UPDATE => Frame::WindowUpdate {
            stream_id: StreamId::from_wire(p.get_u32()),
            delta: p.get_u32() & STREAM_ID_MASK,
        },
        other => Frame::Unknown(UnknownFrame {
            kind: other,
            flags,
            payload: p,
        }),
    }
}
