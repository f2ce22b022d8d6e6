//! Property: whatever is encoded decodes to the same value, for every
//! SPDY frame type, header block and channel message.

use bytes::{Bytes, BytesMut};
use podlink_proto::channel::{
    decode_message, encode_close, encode_data, Channel, ChannelMessage, MessageKind, Protocol,
    TerminalSize,
};
use podlink_proto::spdy::frame::{Data, HeaderFrame, Setting, Settings, SynStream, UnknownFrame};
use podlink_proto::spdy::{
    Frame, GoAwayStatus, HeaderCompressor, HeaderDecompressor, HeaderLimits, Headers, PingId,
    RstStatus, StreamId,
};
use proptest::prelude::*;

fn stream_id() -> impl Strategy<Value = StreamId> {
    (0u32..=0x7FFF_FFFF).prop_map(|n| StreamId::new(n).expect("31 bits"))
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            stream_id(),
            stream_id(),
            0u8..8,
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            bytes(64)
        )
            .prop_map(
                |(stream_id, associated_id, priority, slot, fin, unidirectional, header_block)| {
                    Frame::SynStream(SynStream {
                        stream_id,
                        associated_id,
                        priority,
                        slot,
                        fin,
                        unidirectional,
                        header_block,
                    })
                }
            ),
        (stream_id(), any::<bool>(), bytes(64)).prop_map(|(stream_id, fin, header_block)| {
            Frame::SynReply(HeaderFrame {
                stream_id,
                fin,
                header_block,
            })
        }),
        (stream_id(), any::<bool>(), bytes(64)).prop_map(|(stream_id, fin, header_block)| {
            Frame::Headers(HeaderFrame {
                stream_id,
                fin,
                header_block,
            })
        }),
        (stream_id(), any::<u32>()).prop_map(|(stream_id, s)| Frame::RstStream {
            stream_id,
            status: RstStatus::from(s)
        }),
        (
            any::<bool>(),
            proptest::collection::vec((any::<u8>(), 0u32..0x0100_0000, any::<u32>()), 0..8)
        )
            .prop_map(|(clear, entries)| Frame::Settings(Settings {
                clear,
                entries: entries
                    .into_iter()
                    .map(|(flags, id, value)| Setting { flags, id, value })
                    .collect(),
            })),
        any::<u32>().prop_map(|id| Frame::Ping(PingId(id))),
        (stream_id(), any::<u32>()).prop_map(|(last_good, s)| Frame::GoAway {
            last_good,
            status: GoAwayStatus::from(s)
        }),
        (stream_id(), 0u32..0x8000_0000)
            .prop_map(|(stream_id, delta)| Frame::WindowUpdate { stream_id, delta }),
        (stream_id(), any::<bool>(), bytes(256)).prop_map(|(stream_id, fin, payload)| Frame::Data(
            Data {
                stream_id,
                fin,
                payload
            }
        )),
        (
            any::<u16>().prop_filter("unknown types only", |k| ![1, 2, 3, 4, 6, 7, 8, 9]
                .contains(k)),
            any::<u8>(),
            bytes(64)
        )
            .prop_map(|(kind, flags, payload)| Frame::Unknown(UnknownFrame {
                kind,
                flags,
                payload
            })),
    ]
}

fn headers() -> impl Strategy<Value = Headers> {
    proptest::collection::vec(("[a-z][a-z0-9-]{0,12}", "[ -~]{0,40}"), 0..8).prop_map(|pairs| {
        pairs
            .into_iter()
            .fold(Headers::new(), |h, (n, v)| h.with(n, v))
    })
}

proptest! {
    #[test]
    fn frames_round_trip(frames in proptest::collection::vec(frame(), 1..8)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            f.encode(&mut buf);
        }
        let mut decoded = Vec::new();
        while let Some(f) = Frame::decode(&mut buf, 1 << 20).expect("own encoding decodes") {
            decoded.push(f);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn header_blocks_round_trip_on_one_zlib_stream(blocks in proptest::collection::vec(headers(), 1..6)) {
        let mut z = HeaderCompressor::new();
        let mut inflater = HeaderDecompressor::new(HeaderLimits::default());
        for h in blocks {
            let mut block = BytesMut::new();
            z.compress(&h, &mut block).expect("compresses");
            prop_assert_eq!(inflater.decompress(&block).expect("inflates"), h);
        }
    }

    #[test]
    fn channel_messages_round_trip(ch in any::<u8>(), payload in bytes(300), p in 0usize..7) {
        let protocol = Protocol::ALL[p];
        // On v5, channel byte 255 is the close marker, not a channel.
        prop_assume!(!(protocol.has_close() && ch == 0xFF));
        let channel = Channel(ch);
        let mut out = BytesMut::new();
        let kind = encode_data(protocol, channel, &payload, &mut out);
        prop_assert_eq!(kind == MessageKind::Text, protocol.is_base64());
        let decoded = decode_message(protocol, kind, out.freeze()).expect("own encoding decodes");
        prop_assert_eq!(decoded, ChannelMessage::Data { channel, payload });
    }

    #[test]
    fn v5_close_round_trips(ch in any::<u8>()) {
        let mut out = BytesMut::new();
        let kind = encode_close(Channel(ch), &mut out);
        prop_assert_eq!(
            decode_message(Protocol::V5, kind, out.freeze()),
            Ok(ChannelMessage::Close { channel: Channel(ch) })
        );
    }

    #[test]
    fn terminal_sizes_round_trip(width in any::<u16>(), height in any::<u16>()) {
        let size = TerminalSize { width, height };
        let mut out = Vec::new();
        size.encode(&mut out);
        prop_assert_eq!(TerminalSize::from_json(&out), Ok(size));
    }
}
