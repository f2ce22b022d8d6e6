//! The sans-IO SPDY/3 session machine, for either role.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::frame::{
    encode_data_head, Data, Frame, GoAwayStatus, HeaderFrame, PingId, RstStatus, StreamId,
    SynStream, MAX_PAYLOAD_LEN,
};
use super::headers::{HeaderCompressor, HeaderDecompressor, HeaderLimits, Headers};
use crate::error::{Initiator, ProtocolError, ProtocolErrorKind, UsageError};

/// DATA payloads up to this size are copied into the coalescing buffer;
/// larger ones are handed to the socket as they are.
const COALESCE_LIMIT: usize = 4096;
/// Unanswered PINGs remembered for the pong deadline.
const MAX_OUTSTANDING_PINGS: usize = 64;

/// Which end of the session this machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opens odd stream ids and sends odd PING ids.
    Client,
    /// Opens even stream ids, sends even PING ids, and transmits nothing
    /// until the client's first bytes arrive (PROTOCOLS.md §4.1).
    Server,
}

/// Limits and timers of a [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    ping_interval: Option<Duration>,
    pong_timeout: Option<Duration>,
    max_frame_size: usize,
    header_limits: HeaderLimits,
    max_streams: usize,
}

impl Default for Config {
    /// No keepalive, frames up to the 16 MiB wire maximum, 64 KiB header
    /// blocks, 128 headers per block, 1024 concurrent streams.
    fn default() -> Self {
        Self {
            ping_interval: None,
            pong_timeout: None,
            max_frame_size: MAX_PAYLOAD_LEN,
            header_limits: HeaderLimits::default(),
            max_streams: 1024,
        }
    }
}

impl Config {
    /// Sends a PING every `interval` (kubectl: 5 s, 10 s in the WS tunnel).
    #[must_use]
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Reports [`Event::PeerDead`] when a PING stays unanswered this long.
    #[must_use]
    pub fn pong_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Largest frame payload accepted from the peer.
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Limits on the peer's header blocks.
    #[must_use]
    pub fn header_limits(mut self, limits: HeaderLimits) -> Self {
        self.header_limits = limits;
        self
    }

    /// Most streams open at once; further peer streams are refused.
    #[must_use]
    pub fn max_streams(mut self, streams: usize) -> Self {
        self.max_streams = streams;
        self
    }
}

/// Something the peer did, or the keepalive noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer opened a stream (SYN_STREAM). `fin` streams are also
    /// followed by [`Event::Finished`].
    StreamOpened {
        /// The new stream.
        id: StreamId,
        /// Its headers.
        headers: Headers,
        /// The peer will send nothing on it.
        fin: bool,
    },
    /// The peer accepted a stream this side opened (SYN_REPLY).
    Replied {
        /// The stream.
        id: StreamId,
        /// Reply headers (empty in Kubernetes).
        headers: Headers,
    },
    /// Extra headers on a stream (HEADERS).
    Headers {
        /// The stream.
        id: StreamId,
        /// The headers.
        headers: Headers,
    },
    /// Payload bytes on a stream; never empty.
    Data {
        /// The stream.
        id: StreamId,
        /// The bytes.
        bytes: Bytes,
    },
    /// The peer half-closed the stream (FIN): no more data will come.
    Finished {
        /// The stream.
        id: StreamId,
    },
    /// The stream was reset, by the peer's RST_STREAM or by this machine
    /// because the peer broke a stream rule. It is gone.
    Reset {
        /// The stream.
        id: StreamId,
        /// The RST status.
        status: RstStatus,
        /// Who reset it.
        by: Initiator,
    },
    /// The peer echoed one of this side's PINGs.
    Pong {
        /// The PING id.
        id: PingId,
    },
    /// The peer sent GOAWAY: no new streams. This side's streams above
    /// `last_good` were never processed and have been reported reset.
    GoAway {
        /// Highest stream of this side the peer processed.
        last_good: StreamId,
        /// Why.
        status: GoAwayStatus,
    },
    /// A PING stayed unanswered past the pong timeout. Reported once.
    PeerDead,
}

/// Where a live stream stands; closed streams are forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Both directions open.
    Open,
    /// This side sent FIN; the peer may still send.
    HalfClosedLocal,
    /// The peer sent FIN; this side may still send.
    HalfClosedRemote,
}

#[derive(Debug)]
struct Stream {
    send_open: bool,
    recv_open: bool,
    /// Opened by this side: replies come from the peer.
    local: bool,
    /// A SYN_REPLY went (peer stream) or came (own stream).
    replied: bool,
}

/// A SPDY/3 session without IO, for either [`Role`].
///
/// # Call order
///
/// ```text
///  bytes from the socket ──► handle_input(&[u8])      ──┐
///  user commands ──────────► open_stream / reply /      │  state
///                            send_data / close / reset ─┤  machine
///  clock ──────────────────► handle_timeout(now)      ──┘
///                                    │
///          ┌─────────────────────────┼────────────────────────┐
///          ▼                         ▼                        ▼
///   poll_transmit() → socket   poll_event() → streams   poll_timeout() → sleep
/// ```
///
/// After every call into the machine the driver drains `poll_transmit` and
/// `poll_event` until both return `None`, then sleeps until the next socket
/// read, user command or `poll_timeout()`.
///
/// # Stream states
///
/// ```text
///                          open_stream / SYN_STREAM received
///                                      │
///                                      ▼
///                                 ┌─────────┐
///              send FIN           │  Open   │        recv FIN
///           ┌─────────────────────┤         ├─────────────────────┐
///           ▼                     └────┬────┘                     ▼
///   ┌────────────────┐                 │                 ┌─────────────────┐
///   │HalfClosedLocal │                 │ RST either way  │HalfClosedRemote │
///   └───────┬────────┘                 ▼                 └────────┬────────┘
///           │ recv FIN           ┌──────────┐           send FIN  │
///           └───────────────────►│  Closed  │◄────────────────────┘
///                                └──────────┘
/// ```
///
/// A stream this side opened also waits for the peer's SYN_REPLY: DATA that
/// arrives before it is dropped, as spdystream does. Closed streams are
/// forgotten; later frames for them are ignored.
///
/// # Keepalive
///
/// With [`Config::ping_interval`] the machine sends a PING every interval;
/// with [`Config::pong_timeout`] an unanswered PING older than the timeout
/// yields [`Event::PeerDead`] once. Peer PINGs of the other parity are
/// echoed automatically.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    input: BytesMut,
    /// Created on first use: a level-9 deflate state is ~270 KiB, and many
    /// sessions (or fuzz inputs) never send a header block.
    compressor: Option<Box<HeaderCompressor>>,
    decompressor: HeaderDecompressor,
    streams: BTreeMap<StreamId, Stream>,
    /// Next id this side opens; u64 so that exhaustion is visible.
    next_stream_id: u64,
    /// Highest peer stream id seen (ids must increase).
    last_peer_stream: StreamId,
    /// Highest peer stream accepted, for GOAWAY.
    last_accepted: StreamId,
    events: VecDeque<Event>,
    transmit: VecDeque<Bytes>,
    pending: BytesMut,
    scratch: BytesMut,
    /// A server stays silent until the client has spoken.
    may_transmit: bool,
    next_ping_id: u32,
    outstanding_pings: VecDeque<(PingId, Instant)>,
    next_keepalive: Option<Instant>,
    peer_dead: bool,
    sent_goaway: bool,
    received_goaway: bool,
    failed: Option<ProtocolError>,
}

impl Connection {
    /// A new session; `now` anchors the keepalive timer.
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        // An interval too large for the clock means never.
        let next_keepalive = config.ping_interval.and_then(|i| now.checked_add(i));
        Self {
            role,
            decompressor: HeaderDecompressor::new(config.header_limits),
            config,
            input: BytesMut::new(),
            compressor: None,
            streams: BTreeMap::new(),
            next_stream_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            last_peer_stream: StreamId::ZERO,
            last_accepted: StreamId::ZERO,
            events: VecDeque::new(),
            transmit: VecDeque::new(),
            pending: BytesMut::new(),
            scratch: BytesMut::new(),
            may_transmit: role == Role::Client,
            next_ping_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            outstanding_pings: VecDeque::new(),
            next_keepalive,
            peer_dead: false,
            sent_goaway: false,
            received_goaway: false,
            failed: None,
        }
    }

    /// This machine's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Feeds bytes read from the transport, in any chunking.
    ///
    /// An error means the peer broke the session: a GOAWAY(PROTOCOL_ERROR)
    /// is queued for transmission, and every later call returns the same
    /// error.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if !data.is_empty() {
            self.may_transmit = true;
        }
        self.input.extend_from_slice(data);
        loop {
            match Frame::decode(&mut self.input, self.config.max_frame_size) {
                Ok(Some(frame)) => self.handle_frame(frame)?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(ProtocolErrorKind::Malformed(e), None)),
            }
        }
    }

    fn fail(&mut self, kind: ProtocolErrorKind, stream: Option<StreamId>) -> ProtocolError {
        let err = ProtocolError {
            kind,
            stream,
            initiator: Initiator::Remote,
        };
        if !self.sent_goaway {
            self.sent_goaway = true;
            self.may_transmit = true;
            self.queue_control(&Frame::GoAway {
                last_good: self.last_accepted,
                status: GoAwayStatus::ProtocolError,
            });
        }
        self.input = BytesMut::new();
        self.failed = Some(err.clone());
        err
    }

    fn decompress(&mut self, block: &[u8], stream: StreamId) -> Result<Headers, ProtocolError> {
        self.decompressor
            .decompress(block)
            .map_err(|e| self.fail(ProtocolErrorKind::Malformed(e), Some(stream)))
    }

    fn handle_frame(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        match frame {
            Frame::SynStream(syn) => self.handle_syn_stream(syn),
            Frame::SynReply(h) => self.handle_syn_reply(h),
            Frame::Headers(h) => {
                // Always inflate: the zlib stream spans the whole session.
                let headers = self.decompress(&h.header_block, h.stream_id)?;
                if self.streams.get(&h.stream_id).is_some_and(|s| s.recv_open) {
                    self.events.push_back(Event::Headers {
                        id: h.stream_id,
                        headers,
                    });
                    if h.fin {
                        self.finish_recv(h.stream_id);
                    }
                }
                Ok(())
            }
            Frame::RstStream { stream_id, status } => {
                if status == RstStatus::Unknown(0) {
                    return Err(self.fail(ProtocolErrorKind::InvalidRstStatus, Some(stream_id)));
                }
                if self.streams.remove(&stream_id).is_some() {
                    self.events.push_back(Event::Reset {
                        id: stream_id,
                        status,
                        by: Initiator::Remote,
                    });
                }
                Ok(())
            }
            Frame::Ping(id) => {
                if self.is_own_ping(id) {
                    if let Some(pos) = self.outstanding_pings.iter().position(|(p, _)| *p == id) {
                        // Echoes come back in order: older pings are answered too.
                        self.outstanding_pings.drain(..=pos);
                        self.events.push_back(Event::Pong { id });
                    }
                } else {
                    self.queue_control(&Frame::Ping(id));
                }
                Ok(())
            }
            Frame::GoAway { last_good, status } => {
                self.received_goaway = true;
                let unprocessed: Vec<StreamId> = self
                    .streams
                    .iter()
                    .filter(|(id, s)| s.local && **id > last_good)
                    .map(|(id, _)| *id)
                    .collect();
                for id in unprocessed {
                    self.streams.remove(&id);
                    self.events.push_back(Event::Reset {
                        id,
                        status: RstStatus::RefusedStream,
                        by: Initiator::Remote,
                    });
                }
                self.events.push_back(Event::GoAway { last_good, status });
                Ok(())
            }
            Frame::Data(d) => {
                self.handle_data(d);
                Ok(())
            }
            // spdystream ignores SETTINGS and WINDOW_UPDATE and aborts on
            // unknown types; ignoring unknown types too is the SPDY rule and
            // costs nothing.
            Frame::Settings(_) | Frame::WindowUpdate { .. } | Frame::Unknown(_) => Ok(()),
        }
    }

    fn handle_syn_stream(&mut self, syn: SynStream) -> Result<(), ProtocolError> {
        let id = syn.stream_id;
        if id == StreamId::ZERO {
            return Err(self.fail(ProtocolErrorKind::InvalidStreamId, Some(id)));
        }
        let headers = self.decompress(&syn.header_block, id)?;
        let peer_parity = match self.role {
            Role::Client => !id.is_client_initiated(),
            Role::Server => id.is_client_initiated(),
        };
        if !peer_parity || id <= self.last_peer_stream {
            self.queue_control(&Frame::RstStream {
                stream_id: id,
                status: RstStatus::ProtocolError,
            });
            // A reused id kills the stream that holds it on both sides.
            if self.streams.remove(&id).is_some() {
                self.events.push_back(Event::Reset {
                    id,
                    status: RstStatus::ProtocolError,
                    by: Initiator::Local,
                });
            }
            return Ok(());
        }
        self.last_peer_stream = id;
        if self.sent_goaway || self.streams.len() >= self.config.max_streams {
            self.queue_control(&Frame::RstStream {
                stream_id: id,
                status: RstStatus::RefusedStream,
            });
            return Ok(());
        }
        self.last_accepted = id;
        self.streams.insert(
            id,
            Stream {
                send_open: !syn.unidirectional,
                recv_open: !syn.fin,
                local: false,
                replied: false,
            },
        );
        self.events.push_back(Event::StreamOpened {
            id,
            headers,
            fin: syn.fin,
        });
        if syn.fin {
            self.events.push_back(Event::Finished { id });
            self.forget_if_closed(id);
        }
        Ok(())
    }

    fn handle_syn_reply(&mut self, h: HeaderFrame) -> Result<(), ProtocolError> {
        let headers = self.decompress(&h.header_block, h.stream_id)?;
        let Some(stream) = self.streams.get_mut(&h.stream_id) else {
            return Ok(());
        };
        if !stream.local || stream.replied {
            self.streams.remove(&h.stream_id);
            self.queue_control(&Frame::RstStream {
                stream_id: h.stream_id,
                status: RstStatus::StreamInUse,
            });
            self.events.push_back(Event::Reset {
                id: h.stream_id,
                status: RstStatus::StreamInUse,
                by: Initiator::Local,
            });
            return Ok(());
        }
        stream.replied = true;
        self.events.push_back(Event::Replied {
            id: h.stream_id,
            headers,
        });
        if h.fin {
            self.finish_recv(h.stream_id);
        }
        Ok(())
    }

    fn handle_data(&mut self, d: Data) {
        let Some(stream) = self.streams.get(&d.stream_id) else {
            return;
        };
        // spdystream drops data on its own streams until the reply came,
        // and nothing may follow a FIN.
        if (stream.local && !stream.replied) || !stream.recv_open {
            return;
        }
        if !d.payload.is_empty() {
            self.events.push_back(Event::Data {
                id: d.stream_id,
                bytes: d.payload,
            });
        }
        if d.fin {
            self.finish_recv(d.stream_id);
        }
    }

    fn finish_recv(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.recv_open = false;
            self.events.push_back(Event::Finished { id });
            self.forget_if_closed(id);
        }
    }

    fn forget_if_closed(&mut self, id: StreamId) {
        if self
            .streams
            .get(&id)
            .is_some_and(|s| !s.send_open && !s.recv_open)
        {
            self.streams.remove(&id);
        }
    }

    fn is_own_ping(&self, id: PingId) -> bool {
        match self.role {
            Role::Client => id.is_client_initiated(),
            Role::Server => !id.is_client_initiated(),
        }
    }

    fn check_usable(&self) -> Result<(), UsageError> {
        if self.failed.is_some() {
            Err(UsageError::SessionClosed)
        } else {
            Ok(())
        }
    }

    /// Opens a stream with `headers`; `fin` if nothing will be sent on it.
    pub fn open_stream(&mut self, headers: &Headers, fin: bool) -> Result<StreamId, UsageError> {
        self.check_usable()?;
        if self.sent_goaway || self.received_goaway {
            return Err(UsageError::GoingAway);
        }
        let id = u32::try_from(self.next_stream_id)
            .ok()
            .and_then(StreamId::new)
            .ok_or(UsageError::StreamIdsExhausted)?;
        let header_block = self.compress(headers)?;
        self.next_stream_id += 2;
        self.streams.insert(
            id,
            Stream {
                send_open: !fin,
                recv_open: true,
                local: true,
                replied: false,
            },
        );
        self.queue_control(&Frame::SynStream(SynStream {
            stream_id: id,
            associated_id: StreamId::ZERO,
            priority: 0,
            slot: 0,
            fin,
            unidirectional: false,
            header_block,
        }));
        Ok(id)
    }

    /// Accepts a peer's stream with SYN_REPLY (Kubernetes servers reply
    /// at once with no headers).
    pub fn reply(&mut self, id: StreamId, headers: &Headers) -> Result<(), UsageError> {
        self.check_usable()?;
        let stream = self.streams.get(&id).ok_or(UsageError::UnknownStream(id))?;
        if stream.local || stream.replied {
            return Err(UsageError::CannotReply(id));
        }
        let header_block = self.compress(headers)?;
        if let Some(s) = self.streams.get_mut(&id) {
            s.replied = true;
        }
        self.queue_control(&Frame::SynReply(HeaderFrame {
            stream_id: id,
            fin: false,
            header_block,
        }));
        Ok(())
    }

    fn compress(&mut self, headers: &Headers) -> Result<Bytes, UsageError> {
        self.scratch.clear();
        self.compressor
            .get_or_insert_with(Box::default)
            .compress(headers, &mut self.scratch)?;
        Ok(self.scratch.split().freeze())
    }

    /// Sends `data` on a stream, with FIN if `fin`. Payloads above the
    /// 24-bit frame limit are split without copying; payloads above 4 KiB
    /// are not copied at all (borrowed slices need `Bytes::copy_from_slice`).
    /// Empty data without FIN sends nothing.
    pub fn send_data(
        &mut self,
        id: StreamId,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), UsageError> {
        self.check_usable()?;
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(UsageError::UnknownStream(id))?;
        if !stream.send_open {
            return Err(UsageError::SendAfterClose(id));
        }
        let mut data: Bytes = data.into();
        if data.is_empty() && !fin {
            return Ok(());
        }
        if fin {
            stream.send_open = false;
        }
        loop {
            let chunk = data.split_to(data.len().min(MAX_PAYLOAD_LEN));
            let last = data.is_empty();
            encode_data_head(&mut self.pending, id, fin && last, chunk.len());
            if chunk.len() <= COALESCE_LIMIT {
                self.pending.extend_from_slice(&chunk);
            } else {
                self.flush_pending();
                self.transmit.push_back(chunk);
            }
            if last {
                break;
            }
        }
        if fin {
            self.forget_if_closed(id);
        }
        Ok(())
    }

    /// Half-closes a stream: an empty DATA frame with FIN.
    pub fn close(&mut self, id: StreamId) -> Result<(), UsageError> {
        self.send_data(id, Bytes::new(), true)
    }

    /// Resets a stream. Resetting a stream that already closed both ways
    /// does nothing; an id never used is an error.
    pub fn reset(&mut self, id: StreamId, status: RstStatus) -> Result<(), UsageError> {
        self.check_usable()?;
        if self.streams.remove(&id).is_none() {
            return if self.was_used(id) {
                Ok(())
            } else {
                Err(UsageError::UnknownStream(id))
            };
        }
        self.queue_control(&Frame::RstStream {
            stream_id: id,
            status,
        });
        Ok(())
    }

    fn was_used(&self, id: StreamId) -> bool {
        let own = match self.role {
            Role::Client => id.is_client_initiated(),
            Role::Server => !id.is_client_initiated(),
        };
        if own {
            u64::from(id.get()) < self.next_stream_id
        } else {
            id <= self.last_peer_stream
        }
    }

    /// Sends a PING now; its echo becomes [`Event::Pong`]. The pong timeout,
    /// if configured, runs from `now`.
    pub fn ping(&mut self, now: Instant) -> Result<PingId, UsageError> {
        self.check_usable()?;
        let id = PingId(self.next_ping_id);
        // PING ids wrap within the sender's parity.
        self.next_ping_id = self.next_ping_id.wrapping_add(2);
        if self.outstanding_pings.len() < MAX_OUTSTANDING_PINGS {
            self.outstanding_pings.push_back((id, now));
        }
        self.queue_control(&Frame::Ping(id));
        Ok(id)
    }

    /// Sends GOAWAY: the peer may open no more streams. Existing streams
    /// continue. Sending it twice does nothing.
    pub fn go_away(&mut self, status: GoAwayStatus) {
        if self.sent_goaway {
            return;
        }
        self.sent_goaway = true;
        self.queue_control(&Frame::GoAway {
            last_good: self.last_accepted,
            status,
        });
    }

    /// The state of a live stream; `None` once it is closed or reset.
    pub fn stream_state(&self, id: StreamId) -> Option<StreamState> {
        self.streams
            .get(&id)
            .map(|s| match (s.send_open, s.recv_open) {
                (false, _) => StreamState::HalfClosedLocal,
                (true, false) => StreamState::HalfClosedRemote,
                (true, true) => StreamState::Open,
            })
    }

    /// Number of live streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Whether either side sent GOAWAY.
    pub fn is_going_away(&self) -> bool {
        self.sent_goaway || self.received_goaway
    }

    /// Whether the peer broke the session (see [`handle_input`](Self::handle_input)).
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Runs the keepalive: sends a due PING and reports an overdue pong.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failed.is_some() {
            return;
        }
        if let (Some(due), Some(interval)) = (self.next_keepalive, self.config.ping_interval) {
            if due <= now {
                // A failed session was excluded above, so ping cannot fail.
                let _id = self.ping(now);
                self.next_keepalive = now.checked_add(interval);
            }
        }
        if let Some(deadline) = self.pong_deadline() {
            if deadline <= now {
                self.peer_dead = true;
                self.events.push_back(Event::PeerDead);
            }
        }
    }

    fn pong_deadline(&self) -> Option<Instant> {
        if self.peer_dead {
            return None;
        }
        let timeout = self.config.pong_timeout?;
        let (_, sent) = self.outstanding_pings.front()?;
        sent.checked_add(timeout)
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed.is_some() {
            return None;
        }
        match (self.next_keepalive, self.pong_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next bytes to write to the transport, in order. Small frames
    /// come coalesced; a large DATA payload comes as its own buffer.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if !self.may_transmit {
            return None;
        }
        if let Some(b) = self.transmit.pop_front() {
            return Some(b);
        }
        if self.pending.is_empty() {
            None
        } else {
            Some(self.pending.split().freeze())
        }
    }

    fn queue_control(&mut self, frame: &Frame) {
        frame.encode(&mut self.pending);
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            self.transmit.push_back(self.pending.split().freeze());
        }
    }
}
