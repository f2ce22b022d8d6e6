//! One entry point per decoder, shared by the cargo-fuzz targets in
//! `fuzz/` and the corpus replay test, so both exercise the same code.
//! Each must return without panicking, hanging or allocating without
//! bound for any input.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::channel::{decode_message, MessageKind, Protocol, ResizeDecoder};
use crate::portforward::legacy::PrefixStripper;
use crate::spdy::{
    Config, Connection, Event, Frame, GoAwayStatus, HeaderDecompressor, HeaderLimits, Headers,
    Role, RstStatus, StreamId,
};
use crate::status::ExitStatus;
use crate::watch::WatchDecoder;

#[cfg(feature = "fuzz-harness")]
mod harness;

#[cfg(feature = "fuzz-harness")]
pub use harness::{with_harness, Harness, Slot};

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target's name and function, for the replay test.
pub const TARGETS: &[(&str, Target)] = &[
    ("spdy_frame", spdy_frame),
    ("spdy_connection", spdy_connection),
    ("spdy_pair", spdy_pair),
    ("header_block", header_block),
    ("channel_message", channel_message),
    ("exit_status", exit_status),
    ("watch_decoder", watch_decoder),
    ("resize_decoder", resize_decoder),
    ("legacy_portforward", legacy_portforward),
];

/// Runs every file of every target's committed corpus (`fuzz/corpus/NAME`
/// in this repository) through that target, so the replay tests of every
/// crate with fuzz targets run the fuzzers' findings the same way; returns
/// how many files it ran. Panics (it is for tests) when a corpus folder is
/// missing, unreadable or empty.
pub fn replay_corpus(targets: &[(&str, Target)]) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in targets {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()));
        let mut files = 0;
        for entry in entries {
            let path = entry.expect("readable directory").path();
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("corpus file {}: {e}", path.display()));
            target(&data);
            files += 1;
        }
        assert!(files > 0, "corpus {name} is empty");
        replayed += files;
    }
    replayed
}

/// Splits input into chunks whose sizes come from the input itself.
fn chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (sizes, body) = data.split_at(data.len().min(8));
    let mut rest = body;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(0)) + 1;
        i += 1;
        let (head, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(head)
    })
}

/// Decodes frames until the input runs out or fails; re-encodes each.
pub fn spdy_frame(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut out = BytesMut::new();
    while let Ok(Some(frame)) = Frame::decode(&mut buf, 1 << 20) {
        out.clear();
        frame.encode(&mut out);
    }
}

/// Feeds the input in chunks to a client and a server machine, with
/// keepalive running on a virtual clock.
pub fn spdy_connection(data: &[u8]) {
    let start = Instant::now();
    for role in [Role::Client, Role::Server] {
        let config = Config::default()
            .ping_interval(Some(Duration::from_secs(5)))
            .pong_timeout(Some(Duration::from_secs(15)))
            .max_frame_size(1 << 16)
            .header_limits(HeaderLimits {
                max_block: 1 << 14,
                max_headers: 32,
            });
        let mut conn = Connection::new(role, config, start);
        for (i, chunk) in chunks(data).enumerate() {
            let failed = conn.handle_input(chunk).is_err();
            conn.handle_timeout(start + Duration::from_secs(i as u64));
            while conn.poll_event().is_some() {}
            while conn.poll_transmit().is_some() {}
            if failed {
                break;
            }
        }
    }
}

/// Runs the input as a script of verbs on a client/server pair joined in
/// memory, and panics if either side rejects what the other produced: our
/// own output must always be valid input for our own peer.
pub fn spdy_pair(data: &[u8]) {
    let start = Instant::now();
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(5)))
        .pong_timeout(Some(Duration::from_secs(15)));
    let mut sides = [
        Connection::new(Role::Client, config.clone(), start),
        Connection::new(Role::Server, config, start),
    ];
    let mut streams: Vec<StreamId> = Vec::new();
    let mut now = start;
    let mut script = data.iter().copied();
    while let Some(op) = script.next() {
        let arg = script.next().unwrap_or(0);
        let side = usize::from(op & 1);
        let pick = |streams: &[StreamId]| {
            streams
                .get(usize::from(arg) % streams.len().max(1))
                .copied()
        };
        let conn = &mut sides[side];
        // Usage errors are expected here: the script does not track state.
        match (op >> 1) % 8 {
            0 => {
                let headers = Headers::new()
                    .with("streamtype", "x")
                    .with("n", arg.to_string());
                if let Ok(id) = conn.open_stream(&headers, arg & 1 == 1) {
                    streams.push(id);
                }
            }
            1 => {
                if let Some(id) = pick(&streams) {
                    let _ = conn.reply(id, &Headers::new().with("r", "1"));
                }
            }
            2 => {
                if let Some(id) = pick(&streams) {
                    let len = usize::from(arg) * 37;
                    let _ = conn.send_data(id, vec![arg; len], arg & 1 == 1);
                }
            }
            3 => {
                if let Some(id) = pick(&streams) {
                    let _ = conn.close(id);
                }
            }
            4 => {
                if let Some(id) = pick(&streams) {
                    let _ = conn.reset(id, RstStatus::from(u32::from(arg % 12).max(1)));
                }
            }
            5 => {
                let _ = conn.ping(now);
            }
            6 => {
                now += Duration::from_millis(u64::from(arg) * 100);
                for c in &mut sides {
                    c.handle_timeout(now);
                }
            }
            _ => conn.go_away(GoAwayStatus::from(u32::from(arg % 3))),
        }
        // Deliver everything both ways until quiet (bounded by the script).
        for _ in 0..8 {
            let mut moved = false;
            for from in 0..2 {
                while let Some(bytes) = sides[from].poll_transmit() {
                    moved = true;
                    let to = &mut sides[1 - from];
                    if let Err(e) = to.handle_input(&bytes) {
                        panic!("our own output was rejected: {e}");
                    }
                }
            }
            for c in &mut sides {
                while let Some(event) = c.poll_event() {
                    if let Event::StreamOpened { id, .. } = event {
                        streams.push(id);
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }
}

/// Inflates the input as a sequence of header blocks on one zlib stream;
/// the first byte of each block gives its length.
pub fn header_block(data: &[u8]) {
    let mut z = HeaderDecompressor::new(HeaderLimits {
        max_block: 1 << 14,
        max_headers: 32,
    });
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (block, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if z.decompress(block).is_err() {
            break;
        }
    }
}

/// Decodes the input as one message of every protocol, both kinds.
pub fn channel_message(data: &[u8]) {
    let message = Bytes::copy_from_slice(data);
    for protocol in Protocol::ALL {
        for kind in [MessageKind::Binary, MessageKind::Text] {
            let _ = decode_message(protocol, kind, message.clone());
        }
    }
}

/// Decodes the input as error-channel bytes of every protocol.
pub fn exit_status(data: &[u8]) {
    for protocol in Protocol::ALL {
        let _ = ExitStatus::decode(protocol, data);
    }
}

/// Feeds the input in chunks to a watch decoder, querying every event.
pub fn watch_decoder(data: &[u8]) {
    let mut decoder = WatchDecoder::new(1 << 16);
    for chunk in chunks(data) {
        decoder.handle_input(chunk);
        while let Some(event) = decoder.poll_event() {
            if let Ok(event) = event {
                let _ = event.resource_version();
                let _ = event.is_initial_events_end();
                let _ = event.is_expired();
            }
        }
    }
    let _ = decoder.finish();
}

/// Feeds the input in chunks to a resize decoder.
pub fn resize_decoder(data: &[u8]) {
    let mut decoder = ResizeDecoder::new();
    for chunk in chunks(data) {
        decoder.handle_input(chunk);
        while decoder.poll_size().is_some() {}
    }
}

/// Treats the input as legacy port-forward messages: one length byte, then
/// a message whose first byte is the channel.
pub fn legacy_portforward(data: &[u8]) {
    let mut stripper = PrefixStripper::new(2);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (message, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if let Ok(crate::channel::ChannelMessage::Data { channel, payload }) = decode_message(
            Protocol::V4,
            MessageKind::Binary,
            Bytes::copy_from_slice(message),
        ) {
            let _ = stripper.handle_message(channel, payload);
        }
    }
}
