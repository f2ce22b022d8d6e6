//! Property: decoders give the same result however their input is split.

use std::time::Instant;

use bytes::BytesMut;
use podlink_proto::channel::{ResizeDecoder, TerminalSize};
use podlink_proto::spdy::{
    Config, Connection, Event, Frame, GoAwayStatus, Headers, Role, RstStatus,
};
use podlink_proto::watch::WatchDecoder;
use proptest::prelude::*;

/// Splits `data` at the given cut points (taken modulo its length).
fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    if data.is_empty() {
        return vec![data];
    }
    let mut points: Vec<usize> = cuts.iter().map(|c| c % data.len()).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points.into_iter().chain([data.len()]) {
        out.push(&data[prev..p]);
        prev = p;
    }
    out
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..40)
}

/// A varied client session: streams, data, FINs, pings, a reset, GOAWAY.
fn client_session(payloads: &[Vec<u8>]) -> Vec<u8> {
    let now = Instant::now();
    let mut client = Connection::new(Role::Client, Config::default(), now);
    let mut ids = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let id = client
            .open_stream(
                &Headers::new()
                    .with("streamtype", "data")
                    .with("requestid", i.to_string()),
                false,
            )
            .expect("opens");
        client.send_data(id, p.clone(), i % 2 == 0).expect("sends");
        ids.push(id);
    }
    client.ping(now).expect("pings");
    if let Some(&last) = ids.last() {
        client.reset(last, RstStatus::Cancel).expect("resets");
    }
    client.go_away(GoAwayStatus::Ok);
    let mut bytes = Vec::new();
    while let Some(b) = client.poll_transmit() {
        bytes.extend_from_slice(&b);
    }
    bytes
}

/// A server fed `chunks` in order: its events and what it sent back.
fn server_events(chunks: &[&[u8]]) -> (Vec<Event>, Vec<u8>) {
    let mut server = Connection::new(Role::Server, Config::default(), Instant::now());
    let mut events = Vec::new();
    for c in chunks {
        server.handle_input(c).expect("valid session");
        events.extend(std::iter::from_fn(|| server.poll_event()));
    }
    let mut sent = Vec::new();
    while let Some(b) = server.poll_transmit() {
        sent.extend_from_slice(&b);
    }
    (events, sent)
}

fn watch_body(rvs: &[u32], sep: &str) -> String {
    rvs.iter()
        .map(|rv| {
            format!(r#"{{"type":"MODIFIED","object":{{"kind":"Pod","metadata":{{"name":"p\"{{}}\\","resourceVersion":"{rv}"}}}}}}"#)
        })
        .collect::<Vec<_>>()
        .join(sep)
}

proptest! {
    #[test]
    fn spdy_frames_decode_the_same_in_any_chunking(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..6),
        cuts in cuts(),
    ) {
        let bytes = client_session(&payloads);
        let mut whole = BytesMut::from(&bytes[..]);
        let expected: Vec<Frame> = std::iter::from_fn(|| Frame::decode(&mut whole, 1 << 20).expect("valid")).collect();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in split(&bytes, &cuts) {
            buf.extend_from_slice(chunk);
            while let Some(f) = Frame::decode(&mut buf, 1 << 20).expect("valid") {
                got.push(f);
            }
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn spdy_connection_events_are_the_same_in_any_chunking(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..6),
        cuts in cuts(),
    ) {
        let bytes = client_session(&payloads);
        let expected = server_events(&[&bytes]);
        prop_assert_eq!(server_events(&split(&bytes, &cuts)), expected);
    }

    #[test]
    fn watch_events_are_the_same_in_any_chunking(
        rvs in proptest::collection::vec(any::<u32>(), 1..8),
        sep in "[ \n\r\t]{0,3}",
        cuts in cuts(),
    ) {
        let body = watch_body(&rvs, &sep);
        let mut decoder = WatchDecoder::default();
        let mut got = Vec::new();
        for chunk in split(body.as_bytes(), &cuts) {
            decoder.handle_input(chunk);
            got.extend(std::iter::from_fn(|| decoder.poll_event()).map(|e| e.expect("valid").resource_version()));
        }
        prop_assert_eq!(decoder.finish(), Ok(()));
        let expected: Vec<_> = rvs.iter().map(|rv| Some(rv.to_string())).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn resize_sizes_are_the_same_in_any_chunking(
        sizes in proptest::collection::vec((any::<u16>(), any::<u16>()), 1..8),
        cuts in cuts(),
    ) {
        let mut body = Vec::new();
        for &(width, height) in &sizes {
            TerminalSize { width, height }.encode(&mut body);
        }
        let mut decoder = ResizeDecoder::new();
        let mut got = Vec::new();
        for chunk in split(&body, &cuts) {
            decoder.handle_input(chunk);
            got.extend(std::iter::from_fn(|| decoder.poll_size()).map(|s| s.expect("valid")));
        }
        let expected: Vec<_> = sizes.iter().map(|&(width, height)| TerminalSize { width, height }).collect();
        prop_assert_eq!(got, expected);
    }
}
