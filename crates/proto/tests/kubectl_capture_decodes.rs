//! Known answers from kubectl 1.32 captures (../shared/captures 20 and 22):
//! real bytes must decode to what kubectl meant, in both roles.

use std::time::Instant;

use bytes::BytesMut;
use podlink_proto::spdy::{
    frame::HeaderFrame, Config, Connection, Event, Frame, GoAwayStatus, HeaderCompressor,
    HeaderDecompressor, HeaderLimits, Headers, Role, RstStatus, StreamId, SPDY3_DICTIONARY,
    SPDY3_DICTIONARY_ADLER32,
};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// kubectl's first SYN_STREAM (capture 22, also capture 20).
const FIRST_FRAME: &str =
    "80 03 00 01 00 00 00 29 00 00 00 01 00 00 00 00 00 00 78 f9 e3 c6 a7 c2 \
    62 60 60 60 04 a7 b3 92 a2 d4 c4 5c 68 51 c2 9a 0a 0a 68 00 00 00 00 ff ff";

/// Everything kubectl sent in capture 20 (`exec demo -- echo hi` over SPDY).
fn capture20_client_bytes() -> Vec<u8> {
    let mut bytes = hex(FIRST_FRAME);
    bytes.extend(hex("80 03 00 01 00 00 00 19 00 00 00 03 00 00 00 00 00 00 c2 2a c5 56 5c 92 92 5f 5a 02 00 00 00 ff ff"));
    bytes.extend(hex(
        "80 03 00 01 00 00 00 15 00 00 00 05 00 00 00 00 00 00 c2 29 97 5a 54 04 00 00 00 ff ff",
    ));
    for id in ["01", "03", "05"] {
        bytes.extend(hex(&format!(
            "80 03 00 03 00 00 00 08 00 00 00 {id} 00 00 00 05"
        )));
    }
    bytes.extend(hex("80 03 00 07 00 00 00 08 00 00 00 00 00 00 00 00"));
    bytes
}

/// What the capture's (Python) server sent back: replies, data, FINs.
fn capture20_server_bytes() -> Vec<u8> {
    let mut bytes =
        hex("80 03 00 02 00 00 00 14 00 00 00 01 78 bb e3 c6 a7 c2 02 a6 23 06 00 00 00 00 ff ff");
    bytes.extend(hex(
        "80 03 00 02 00 00 00 0c 00 00 00 03 02 01 00 00 00 00 ff ff",
    ));
    bytes.extend(hex(
        "80 03 00 02 00 00 00 0c 00 00 00 05 02 01 00 00 00 00 ff ff",
    ));
    bytes.extend(hex("00 00 00 03 00 00 00 03 68 69 0a"));
    let status = br#"{"metadata": {}, "status": "Success"}"#;
    bytes.extend(hex("00 00 00 01 00 00 00 25"));
    bytes.extend_from_slice(status);
    for id in ["01", "03", "05"] {
        bytes.extend(hex(&format!("00 00 00 {id} 01 00 00 00")));
    }
    bytes
}

fn sid(n: u32) -> StreamId {
    StreamId::new(n).expect("31-bit id")
}

fn drain(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[test]
fn dictionary_is_the_spdy3_one() {
    assert_eq!(SPDY3_DICTIONARY.len(), 1423);
    assert!(SPDY3_DICTIONARY.starts_with(b"\x00\x00\x00\x07options"));
    assert!(SPDY3_DICTIONARY.ends_with(b"enq=0."));
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in SPDY3_DICTIONARY.iter() {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    assert_eq!(b << 16 | a, SPDY3_DICTIONARY_ADLER32);
    assert_eq!(SPDY3_DICTIONARY_ADLER32, 0xE3C6_A7C2);
}

#[test]
fn first_kubectl_frame_is_syn_stream_error() {
    let mut buf = BytesMut::from(&hex(FIRST_FRAME)[..]);
    let frame = Frame::decode(&mut buf, 1 << 20)
        .expect("decodes")
        .expect("complete");
    assert!(buf.is_empty());
    let Frame::SynStream(syn) = frame else {
        panic!("expected SYN_STREAM, got {frame:?}");
    };
    assert_eq!(syn.stream_id, sid(1));
    assert_eq!(syn.associated_id, StreamId::ZERO);
    assert_eq!(
        (syn.priority, syn.fin, syn.unidirectional),
        (0, false, false)
    );
    let headers = HeaderDecompressor::new(HeaderLimits::default())
        .decompress(&syn.header_block)
        .expect("inflates with the SPDY/3 dictionary");
    assert_eq!(headers, Headers::new().with("streamtype", "error"));
}

#[test]
fn first_kubectl_frame_needs_all_its_bytes() {
    let bytes = hex(FIRST_FRAME);
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert_eq!(Frame::decode(&mut buf, 1 << 20), Ok(None), "cut at {cut}");
        assert_eq!(buf.len(), cut, "nothing consumed at {cut}");
    }
}

#[test]
fn our_compressor_seeded_like_go_starts_the_same_and_round_trips() {
    let headers = Headers::new().with("streamtype", "error");
    let mut compressor = HeaderCompressor::new();
    let mut block = BytesMut::new();
    compressor
        .compress(&headers, &mut block)
        .expect("compresses");
    assert_eq!(
        &block[..6],
        &hex("78 f9 e3 c6 a7 c2")[..],
        "zlib header with FDICT"
    );
    assert_eq!(
        &block[block.len() - 4..],
        &hex("00 00 ff ff")[..],
        "sync flush"
    );
    let mut second = BytesMut::new();
    let next = Headers::new().with("streamtype", "stdout");
    compressor.compress(&next, &mut second).expect("compresses");
    let mut inflater = HeaderDecompressor::new(HeaderLimits::default());
    assert_eq!(inflater.decompress(&block), Ok(headers));
    assert_eq!(inflater.decompress(&second), Ok(next));
}

#[test]
fn capture20_client_stream_opens_three_streams_on_a_server() {
    let now = Instant::now();
    let mut server = Connection::new(Role::Server, Config::default(), now);
    assert_eq!(server.poll_transmit(), None);
    server
        .handle_input(&capture20_client_bytes())
        .expect("valid session");
    let events = drain(&mut server);
    let opened: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::StreamOpened { id, headers, fin } => {
                Some((id.get(), headers.get("streamtype").map(str::to_owned), *fin))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        opened,
        vec![
            (1, Some("error".to_owned()), false),
            (3, Some("stdout".to_owned()), false),
            (5, Some("stderr".to_owned()), false)
        ]
    );
    let resets = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Reset {
                    status: RstStatus::Cancel,
                    by: podlink_proto::Initiator::Remote,
                    ..
                }
            )
        })
        .count();
    assert_eq!(resets, 3);
    assert_eq!(
        events.last(),
        Some(&Event::GoAway {
            last_good: StreamId::ZERO,
            status: GoAwayStatus::Ok
        })
    );
}

#[test]
fn capture20_server_bytes_reach_a_client_as_data_and_fins() {
    let now = Instant::now();
    let mut client = Connection::new(Role::Client, Config::default(), now);
    let error = client
        .open_stream(&Headers::new().with("streamtype", "error"), false)
        .expect("opens");
    let stdout = client
        .open_stream(&Headers::new().with("streamtype", "stdout"), false)
        .expect("opens");
    let stderr = client
        .open_stream(&Headers::new().with("streamtype", "stderr"), false)
        .expect("opens");
    assert_eq!((error, stdout, stderr), (sid(1), sid(3), sid(5)));
    client
        .handle_input(&capture20_server_bytes())
        .expect("valid session");
    let events = drain(&mut client);
    assert!(events.contains(&Event::Replied {
        id: sid(1),
        headers: Headers::new()
    }));
    assert!(events.contains(&Event::Data {
        id: sid(3),
        bytes: "hi\n".into()
    }));
    assert!(events.contains(&Event::Data {
        id: sid(1),
        bytes: br#"{"metadata": {}, "status": "Success"}"#.to_vec().into()
    }));
    for id in [1, 3, 5] {
        assert!(
            events.contains(&Event::Finished { id: sid(id) }),
            "FIN on {id}"
        );
    }
}

#[test]
fn server_reply_block_is_decodable_by_a_fresh_inflater() {
    let mut server = Connection::new(Role::Server, Config::default(), Instant::now());
    server.handle_input(&hex(FIRST_FRAME)).expect("valid");
    let Some(Event::StreamOpened { id, .. }) = server.poll_event() else {
        panic!("expected an opened stream");
    };
    server.reply(id, &Headers::new()).expect("replies");
    let sent = server.poll_transmit().expect("reply queued");
    let mut buf = BytesMut::from(&sent[..]);
    let Some(Frame::SynReply(HeaderFrame {
        stream_id,
        header_block,
        fin,
    })) = Frame::decode(&mut buf, 1 << 20).expect("decodes")
    else {
        panic!("expected SYN_REPLY");
    };
    assert_eq!((stream_id, fin), (id, false));
    let headers = HeaderDecompressor::new(HeaderLimits::default())
        .decompress(&header_block)
        .expect("inflates");
    assert!(headers.is_empty());
}
