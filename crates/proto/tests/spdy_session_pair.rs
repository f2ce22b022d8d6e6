//! A client and a server `spdy::Connection` joined by in-memory pipes on a
//! virtual clock (start + offset): stream life cycle, keepalive, GOAWAY and
//! limits, with no sockets and no sleeping.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use podlink_proto::spdy::frame::{Data, SynStream};
use podlink_proto::spdy::{
    Config, Connection, Event, Frame, GoAwayStatus, HeaderCompressor, HeaderLimits, Headers,
    PingId, Role, RstStatus, StreamId, StreamState,
};
use podlink_proto::{DecodeError, Initiator, ProtocolErrorKind, UsageError};

/// Most transmit/deliver rounds a test may take; every loop is bounded.
const MAX_STEPS: usize = 1000;

struct Pair {
    client: Connection,
    server: Connection,
    start: Instant,
    now: Instant,
    /// While set, client → server bytes are dropped (a dead path).
    partitioned: bool,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
}

impl Pair {
    fn new(client: Config, server: Config) -> Self {
        let start = Instant::now();
        Self {
            client: Connection::new(Role::Client, client, start),
            server: Connection::new(Role::Server, server, start),
            start,
            now: start,
            partitioned: false,
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    /// Moves pending bytes both ways once; returns whether anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(bytes) = self.client.poll_transmit() {
            moved = true;
            if !self.partitioned {
                self.server
                    .handle_input(&bytes)
                    .expect("server accepts client bytes");
            }
        }
        while let Some(bytes) = self.server.poll_transmit() {
            moved = true;
            self.client
                .handle_input(&bytes)
                .expect("client accepts server bytes");
        }
        self.client_events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
        self.server_events
            .extend(std::iter::from_fn(|| self.server.poll_event()));
        moved
    }

    fn drive(&mut self) {
        for _ in 0..MAX_STEPS {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not settle in {MAX_STEPS} steps");
    }

    /// Advances the virtual clock to the earliest timer, fires it, drives.
    fn advance_to_next_timer(&mut self) -> Duration {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("a timer is armed");
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.drive();
        self.now - self.start
    }

    fn open(&mut self, kind: &str) -> StreamId {
        let id = self
            .client
            .open_stream(&Headers::new().with("streamtype", kind), false)
            .expect("opens");
        self.drive();
        let opened = self
            .server_events
            .iter()
            .any(|e| matches!(e, Event::StreamOpened { id: got, .. } if *got == id));
        assert!(opened, "server saw stream {id}");
        self.server.reply(id, &Headers::new()).expect("replies");
        self.drive();
        assert!(self.client_events.contains(&Event::Replied {
            id,
            headers: Headers::new()
        }));
        id
    }
}

fn keepalive() -> Config {
    Config::default()
        .ping_interval(Some(Duration::from_secs(5)))
        .pong_timeout(Some(Duration::from_secs(15)))
}

fn sid(n: u32) -> StreamId {
    StreamId::new(n).expect("31-bit id")
}

fn data_of(events: &[Event], id: StreamId) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data { id: got, bytes } if *got == id => Some(bytes.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn open_reply_data_and_half_close_both_ways() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let stdin = pair.open("stdin");
    let stdout = pair.open("stdout");
    assert_eq!((stdin, stdout), (sid(1), sid(3)));

    pair.client
        .send_data(stdin, &b"hello "[..], false)
        .expect("sends");
    pair.client
        .send_data(stdin, Bytes::from_static(b"world"), false)
        .expect("sends");
    pair.client.close(stdin).expect("half-closes");
    assert_eq!(
        pair.client.stream_state(stdin),
        Some(StreamState::HalfClosedLocal)
    );
    pair.drive();
    assert_eq!(data_of(&pair.server_events, stdin), b"hello world");
    assert!(pair.server_events.contains(&Event::Finished { id: stdin }));
    assert_eq!(
        pair.server.stream_state(stdin),
        Some(StreamState::HalfClosedRemote)
    );
    assert_eq!(
        pair.client.send_data(stdin, &b"late"[..], false),
        Err(UsageError::SendAfterClose(stdin))
    );

    // The half-closed stream still carries the other direction.
    pair.server
        .send_data(stdin, &b"echo"[..], true)
        .expect("sends back");
    pair.server
        .send_data(stdout, &b"out"[..], true)
        .expect("sends");
    pair.drive();
    assert_eq!(data_of(&pair.client_events, stdin), b"echo");
    assert_eq!(data_of(&pair.client_events, stdout), b"out");
    assert!(pair.client_events.contains(&Event::Finished { id: stdout }));
    assert_eq!(pair.client.stream_state(stdin), None, "closed both ways");
    assert_eq!(pair.server.stream_state(stdin), None);
    assert_eq!(
        pair.client.stream_count(),
        1,
        "stdout still open for sending"
    );
    // kubectl resets every stream at the end; a closed one is a no-op.
    pair.client
        .reset(stdin, RstStatus::Cancel)
        .expect("no-op on a closed stream");
    pair.client
        .reset(stdout, RstStatus::Cancel)
        .expect("resets");
    pair.drive();
    assert!(pair.server_events.contains(&Event::Reset {
        id: stdout,
        status: RstStatus::Cancel,
        by: Initiator::Remote
    }));
    assert_eq!(
        pair.client.reset(sid(99), RstStatus::Cancel),
        Err(UsageError::UnknownStream(sid(99)))
    );
}

#[test]
fn reset_kills_a_stream_for_both_sides() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let id = pair.open("data");
    pair.server
        .reset(id, RstStatus::InternalError)
        .expect("resets");
    pair.drive();
    assert!(pair.client_events.contains(&Event::Reset {
        id,
        status: RstStatus::InternalError,
        by: Initiator::Remote
    }));
    assert_eq!(
        pair.client.send_data(id, &b"x"[..], false),
        Err(UsageError::UnknownStream(id))
    );
    assert_eq!(
        pair.server.send_data(id, &b"x"[..], false),
        Err(UsageError::UnknownStream(id))
    );
}

#[test]
fn usage_errors_are_typed() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let id = pair.open("error");
    assert_eq!(
        pair.server.reply(id, &Headers::new()),
        Err(UsageError::CannotReply(id))
    );
    assert_eq!(
        pair.client.reply(id, &Headers::new()),
        Err(UsageError::CannotReply(id))
    );
    assert_eq!(
        pair.server.reply(sid(7), &Headers::new()),
        Err(UsageError::UnknownStream(sid(7)))
    );
}

#[test]
fn goaway_stops_new_streams_but_not_old_ones() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let id = pair.open("stdout");
    pair.client.go_away(GoAwayStatus::Ok);
    pair.client.go_away(GoAwayStatus::Ok);
    pair.drive();
    let goaways: Vec<_> = pair
        .server_events
        .iter()
        .filter(|e| matches!(e, Event::GoAway { .. }))
        .collect();
    assert_eq!(
        goaways,
        [&Event::GoAway {
            last_good: StreamId::ZERO,
            status: GoAwayStatus::Ok
        }]
    );
    assert_eq!(
        pair.client.open_stream(&Headers::new(), false),
        Err(UsageError::GoingAway)
    );
    assert_eq!(
        pair.server.open_stream(&Headers::new(), false),
        Err(UsageError::GoingAway)
    );
    pair.server
        .send_data(id, &b"still here"[..], true)
        .expect("old stream works");
    pair.drive();
    assert_eq!(data_of(&pair.client_events, id), b"still here");
}

#[test]
fn goaway_from_the_server_reports_unprocessed_client_streams_reset() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let first = pair.open("error");
    let second = pair
        .client
        .open_stream(&Headers::new(), false)
        .expect("opens");
    // The server has not seen the second stream when it goes away.
    pair.server.go_away(GoAwayStatus::Ok);
    while let Some(bytes) = pair.server.poll_transmit() {
        pair.client.handle_input(&bytes).expect("valid");
    }
    let events: Vec<_> = std::iter::from_fn(|| pair.client.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::Reset {
                id: second,
                status: RstStatus::RefusedStream,
                by: Initiator::Remote
            },
            Event::GoAway {
                last_good: first,
                status: GoAwayStatus::Ok
            },
        ]
    );
}

#[test]
fn keepalive_pings_are_echoed_and_no_peer_is_declared_dead() {
    let mut pair = Pair::new(keepalive(), Config::default());
    pair.open("error");
    let mut elapsed = Duration::ZERO;
    for _ in 0..20 {
        elapsed = pair.advance_to_next_timer();
        if elapsed >= Duration::from_secs(60) {
            break;
        }
    }
    assert!(elapsed >= Duration::from_secs(60));
    let pongs: Vec<_> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Pong { id } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(
        &pongs[..3],
        [PingId(1), PingId(3), PingId(5)],
        "odd client ids, in order"
    );
    assert!(!pair.client_events.contains(&Event::PeerDead));
}

#[test]
fn missing_pongs_make_the_peer_dead_at_the_deadline() {
    let mut pair = Pair::new(keepalive(), Config::default());
    pair.open("error");
    pair.partitioned = true;
    let mut dead_at = None;
    for _ in 0..20 {
        let elapsed = pair.advance_to_next_timer();
        if pair.client_events.contains(&Event::PeerDead) {
            dead_at = Some(elapsed);
            break;
        }
    }
    // First unanswered ping at 5 s, pong timeout 15 s.
    assert_eq!(dead_at, Some(Duration::from_secs(20)));
    // Reported once; the keepalive keeps pinging without repeating it.
    for _ in 0..5 {
        pair.advance_to_next_timer();
    }
    assert_eq!(
        pair.client_events
            .iter()
            .filter(|e| **e == Event::PeerDead)
            .count(),
        1
    );
}

#[test]
fn server_sends_nothing_before_the_clients_first_bytes() {
    let start = Instant::now();
    let mut server = Connection::new(Role::Server, keepalive(), start);
    let pushed = server
        .open_stream(&Headers::new(), false)
        .expect("server may open");
    assert_eq!(pushed, sid(2));
    server.ping(start).expect("pings");
    server.handle_timeout(start + Duration::from_secs(6));
    assert_eq!(server.poll_transmit(), None, "held until the client speaks");
    let mut client = Connection::new(Role::Client, Config::default(), start);
    client.ping(start).expect("pings");
    let hello = client.poll_transmit().expect("client ping");
    server.handle_input(&hello).expect("valid");
    let mut released = BytesMut::new();
    for _ in 0..MAX_STEPS {
        match server.poll_transmit() {
            Some(bytes) => released.extend_from_slice(&bytes),
            None => break,
        }
    }
    let mut frames = Vec::new();
    while let Some(frame) = Frame::decode(&mut released, 1 << 20).expect("valid") {
        frames.push(frame);
    }
    assert!(
        matches!(frames[0], Frame::SynStream(SynStream { stream_id, .. }) if stream_id == sid(2))
    );
    assert!(
        frames.contains(&Frame::Ping(PingId(1))),
        "client ping echoed"
    );
    assert!(
        frames.contains(&Frame::Ping(PingId(2))),
        "server's own pings"
    );
}

fn syn_stream(compressor: &mut HeaderCompressor, id: u32, headers: &Headers) -> BytesMut {
    let mut block = BytesMut::new();
    compressor
        .compress(headers, &mut block)
        .expect("compresses");
    let mut out = BytesMut::new();
    Frame::SynStream(SynStream {
        stream_id: sid(id),
        associated_id: StreamId::ZERO,
        priority: 0,
        slot: 0,
        fin: false,
        unidirectional: false,
        header_block: block.freeze(),
    })
    .encode(&mut out);
    out
}

fn frames_sent(conn: &mut Connection) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    for _ in 0..MAX_STEPS {
        match conn.poll_transmit() {
            Some(bytes) => buf.extend_from_slice(&bytes),
            None => break,
        }
    }
    std::iter::from_fn(|| Frame::decode(&mut buf, 1 << 24).expect("own frames decode")).collect()
}

#[test]
fn too_low_or_wrong_parity_stream_ids_are_reset_with_protocol_error() {
    let mut server = Connection::new(Role::Server, Config::default(), Instant::now());
    let mut z = HeaderCompressor::new();
    let h = Headers::new().with("streamtype", "data");
    server
        .handle_input(&syn_stream(&mut z, 3, &h))
        .expect("valid");
    server
        .handle_input(&syn_stream(&mut z, 1, &h))
        .expect("stream error only");
    server
        .handle_input(&syn_stream(&mut z, 4, &h))
        .expect("stream error only");
    server
        .handle_input(&syn_stream(&mut z, 5, &h))
        .expect("the session goes on");
    let opened: Vec<_> = std::iter::from_fn(|| server.poll_event())
        .filter_map(|e| match e {
            Event::StreamOpened { id, .. } => Some(id.get()),
            _ => None,
        })
        .collect();
    assert_eq!(opened, [3, 5]);
    assert_eq!(
        frames_sent(&mut server),
        [
            Frame::RstStream {
                stream_id: sid(1),
                status: RstStatus::ProtocolError
            },
            Frame::RstStream {
                stream_id: sid(4),
                status: RstStatus::ProtocolError
            },
        ]
    );
}

#[test]
fn data_before_the_reply_is_dropped_on_the_client() {
    let mut client = Connection::new(Role::Client, Config::default(), Instant::now());
    let id = client.open_stream(&Headers::new(), false).expect("opens");
    let mut early = BytesMut::new();
    Frame::Data(Data {
        stream_id: id,
        fin: false,
        payload: Bytes::from_static(b"early"),
    })
    .encode(&mut early);
    client.handle_input(&early).expect("valid");
    assert_eq!(client.poll_event(), None);
}

#[test]
fn zlib_bomb_is_rejected_and_the_session_ends_with_goaway() {
    let limits = HeaderLimits {
        max_block: 64 * 1024,
        max_headers: 16,
    };
    let mut server = Connection::new(
        Role::Server,
        Config::default().header_limits(limits),
        Instant::now(),
    );
    let mut z = HeaderCompressor::new();
    let bomb = Headers::new().with("x", "a".repeat(4 << 20));
    let frame = syn_stream(&mut z, 1, &bomb);
    assert!(
        frame.len() < 64 * 1024,
        "the bomb is small on the wire: {}",
        frame.len()
    );
    let err = server.handle_input(&frame).expect_err("rejected");
    assert_eq!(
        err.kind,
        ProtocolErrorKind::Malformed(DecodeError::HeaderBlockTooLarge { max: 64 * 1024 })
    );
    assert_eq!(err.initiator, Initiator::Remote);
    assert_eq!(err.stream, Some(sid(1)));
    assert!(server.is_failed());
    assert_eq!(server.handle_input(b"more").expect_err("still failed"), err);
    assert_eq!(
        frames_sent(&mut server),
        [Frame::GoAway {
            last_good: StreamId::ZERO,
            status: GoAwayStatus::ProtocolError
        }]
    );
    assert_eq!(
        server.open_stream(&Headers::new(), false),
        Err(UsageError::SessionClosed)
    );
}

#[test]
fn too_many_headers_are_rejected() {
    let limits = HeaderLimits {
        max_block: 64 * 1024,
        max_headers: 2,
    };
    let mut server = Connection::new(
        Role::Server,
        Config::default().header_limits(limits),
        Instant::now(),
    );
    let mut z = HeaderCompressor::new();
    let h = Headers::new().with("a", "1").with("b", "2").with("c", "3");
    let err = server
        .handle_input(&syn_stream(&mut z, 1, &h))
        .expect_err("rejected");
    assert_eq!(
        err.kind,
        ProtocolErrorKind::Malformed(DecodeError::TooManyHeaders { count: 3, max: 2 })
    );
}

#[test]
fn too_large_frame_is_rejected_from_its_header_alone() {
    let mut client = Connection::new(
        Role::Client,
        Config::default().max_frame_size(64 * 1024),
        Instant::now(),
    );
    // A DATA header announcing 1 MiB; the payload never needs to arrive.
    let err = client
        .handle_input(&[0, 0, 0, 1, 0, 0x10, 0, 0])
        .expect_err("rejected");
    assert_eq!(
        err.kind,
        ProtocolErrorKind::Malformed(DecodeError::FrameTooLarge {
            len: 1 << 20,
            max: 64 * 1024
        })
    );
}

#[test]
fn rst_status_zero_kills_the_session() {
    let mut client = Connection::new(Role::Client, Config::default(), Instant::now());
    let mut rst = BytesMut::new();
    Frame::RstStream {
        stream_id: sid(1),
        status: RstStatus::Unknown(0),
    }
    .encode(&mut rst);
    let err = client.handle_input(&rst).expect_err("fatal");
    assert_eq!(err.kind, ProtocolErrorKind::InvalidRstStatus);
}

#[test]
fn large_data_is_not_copied_and_huge_data_is_split() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let id = pair.open("stdin");
    let big = Bytes::from(vec![7u8; 1 << 20]);
    let ptr = big.as_ptr();
    pair.client.send_data(id, big, false).expect("sends");
    let head = pair.client.poll_transmit().expect("frame head");
    assert_eq!(head.len(), 8);
    let payload = pair.client.poll_transmit().expect("payload");
    assert_eq!(
        (payload.as_ptr(), payload.len()),
        (ptr, 1 << 20),
        "the caller's buffer itself"
    );
    pair.server.handle_input(&head).expect("valid");
    pair.server.handle_input(&payload).expect("valid");

    let huge = Bytes::from(vec![1u8; (16 << 20) + 5]);
    pair.client.send_data(id, huge, true).expect("sends");
    pair.drive();
    let received = data_of(&pair.server_events, id);
    assert_eq!(received.len(), (1 << 20) + (16 << 20) + 5);
    let chunks = pair
        .server_events
        .iter()
        .filter(|e| matches!(e, Event::Data { .. }))
        .count();
    assert_eq!(chunks, 3, "16 MiB - 1 per frame at most");
    assert!(pair.server_events.contains(&Event::Finished { id }));
}

#[test]
fn unknown_control_frames_and_settings_are_ignored() {
    let mut client = Connection::new(Role::Client, Config::default(), Instant::now());
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0x80, 0x03, 0x00, 0x05, 0, 0, 0, 0]); // NOOP
    buf.extend_from_slice(&[0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 2, 1, 2]); // CREDENTIAL
    buf.extend_from_slice(&[
        0x80, 0x03, 0x00, 0x04, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 9,
    ]);
    buf.extend_from_slice(&[0x80, 0x03, 0x00, 0x09, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 9]);
    client.handle_input(&buf).expect("ignored");
    assert_eq!(client.poll_event(), None);
}

#[test]
fn a_reused_stream_id_resets_the_stream_holding_it() {
    let mut server = Connection::new(Role::Server, Config::default(), Instant::now());
    let mut z = HeaderCompressor::new();
    let h = Headers::new().with("streamtype", "data");
    server
        .handle_input(&syn_stream(&mut z, 1, &h))
        .expect("valid");
    server
        .handle_input(&syn_stream(&mut z, 1, &h))
        .expect("stream error only");
    let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
    assert_eq!(
        events[1],
        Event::Reset {
            id: sid(1),
            status: RstStatus::ProtocolError,
            by: Initiator::Local
        }
    );
    assert_eq!(server.stream_state(sid(1)), None);
    assert_eq!(
        frames_sent(&mut server),
        [Frame::RstStream {
            stream_id: sid(1),
            status: RstStatus::ProtocolError
        }]
    );
}

#[test]
fn timers_too_far_away_are_never_due() {
    let start = Instant::now();
    let config = Config::default()
        .ping_interval(Some(Duration::MAX))
        .pong_timeout(Some(Duration::MAX));
    let mut client = Connection::new(Role::Client, config, start);
    assert_eq!(client.poll_timeout(), None);
    client.ping(start).expect("pings");
    assert_eq!(client.poll_timeout(), None);
    client.handle_timeout(start + Duration::from_secs(1 << 40));
    assert_eq!(client.poll_event(), None);
}
