//! WebSocket channel messages, negotiation and resize (PROTOCOLS.md §3).

use bytes::{Bytes, BytesMut};
use podlink_proto::channel::{
    decode_message, encode_close, encode_data, Channel, ChannelMessage, MessageKind, Protocol,
    ResizeDecoder, TerminalSize, Transport,
};
use podlink_proto::DecodeError;

#[test]
fn v5_close_is_ff_channel() {
    let mut out = BytesMut::new();
    assert_eq!(encode_close(Channel::STDIN, &mut out), MessageKind::Binary);
    assert_eq!(&out[..], &[0xff, 0x00]);
    assert_eq!(
        decode_message(Protocol::V5, MessageKind::Binary, out.freeze()),
        Ok(ChannelMessage::Close {
            channel: Channel::STDIN
        })
    );
}

#[test]
fn v5_marker_with_wrong_length_is_an_error_but_older_protocols_see_channel_255() {
    for bad in [&[0xff][..], &[0xff, 0, 0][..]] {
        assert_eq!(
            decode_message(
                Protocol::V5,
                MessageKind::Binary,
                Bytes::copy_from_slice(bad)
            ),
            Err(DecodeError::InvalidClose { len: bad.len() })
        );
    }
    assert_eq!(
        decode_message(
            Protocol::V4,
            MessageKind::Binary,
            Bytes::from_static(&[0xff, 0])
        ),
        Ok(ChannelMessage::Data {
            channel: Channel(255),
            payload: Bytes::from_static(&[0])
        })
    );
}

#[test]
fn captured_stdin_message_decodes() {
    // capture 12: `00 68 65 6c 6c 6f 0a` then `ff 00`.
    let msg = Bytes::from_static(b"\x00hello\n");
    assert_eq!(
        decode_message(Protocol::V5, MessageKind::Binary, msg),
        Ok(ChannelMessage::Data {
            channel: Channel::STDIN,
            payload: Bytes::from_static(b"hello\n")
        })
    );
}

#[test]
fn greeting_and_empty_messages_are_harmless() {
    assert_eq!(
        decode_message(Protocol::V4, MessageKind::Binary, Bytes::from_static(&[1])),
        Ok(ChannelMessage::Data {
            channel: Channel::STDOUT,
            payload: Bytes::new()
        })
    );
    for p in Protocol::ALL {
        assert_eq!(
            decode_message(p, MessageKind::Text, Bytes::new()),
            Ok(ChannelMessage::Empty)
        );
    }
}

#[test]
fn text_messages_are_accepted_on_binary_protocols() {
    assert_eq!(
        decode_message(
            Protocol::V4,
            MessageKind::Text,
            Bytes::from_static(b"\x00ls\n")
        ),
        Ok(ChannelMessage::Data {
            channel: Channel::STDIN,
            payload: Bytes::from_static(b"ls\n")
        })
    );
}

#[test]
fn base64_forms_use_a_digit_and_padded_base64() {
    let mut out = BytesMut::new();
    let kind = encode_data(Protocol::V4Base64, Channel::STDOUT, b"hi\n", &mut out);
    assert_eq!(kind, MessageKind::Text);
    assert_eq!(&out[..], b"1aGkK");
    out.clear();
    encode_data(Protocol::V1Base64, Channel::STDERR, b"ab", &mut out);
    assert_eq!(&out[..], b"2YWI=");
    assert_eq!(
        decode_message(Protocol::V1Base64, MessageKind::Text, out.freeze()),
        Ok(ChannelMessage::Data {
            channel: Channel::STDERR,
            payload: Bytes::from_static(b"ab")
        })
    );
    assert_eq!(
        decode_message(
            Protocol::V4Base64,
            MessageKind::Binary,
            Bytes::from_static(b"1aGkK")
        ),
        Err(DecodeError::UnexpectedBinary("v4.base64.channel.k8s.io"))
    );
    assert!(matches!(
        decode_message(
            Protocol::V4Base64,
            MessageKind::Text,
            Bytes::from_static(b"1a*")
        ),
        Err(DecodeError::Base64(_))
    ));
}

#[test]
fn binary_encoding_prefixes_the_channel() {
    let mut out = BytesMut::new();
    assert_eq!(
        encode_data(Protocol::V5, Channel::STDIN, b"x", &mut out),
        MessageKind::Binary
    );
    assert_eq!(&out[..], b"\x00x");
}

#[test]
fn client_offers_match_kubectl_over_spdy() {
    let names: Vec<_> = Protocol::client_offer(Transport::Spdy)
        .iter()
        .map(|p| p.name())
        .collect();
    assert_eq!(
        names,
        [
            "v5.channel.k8s.io",
            "v4.channel.k8s.io",
            "v3.channel.k8s.io",
            "v2.channel.k8s.io",
            "channel.k8s.io"
        ]
    );
    assert_eq!(
        Protocol::client_offer(Transport::WebSocket)[0],
        Protocol::V5
    );
}

#[test]
fn server_picks_the_first_offered_it_supports_splitting_commas() {
    let kubelet = [Protocol::V4, Protocol::V3, Protocol::V2, Protocol::V1];
    let offered = [
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
    ];
    assert_eq!(
        Protocol::server_pick(Transport::Spdy, offered, &kubelet),
        Some(Protocol::V4)
    );
    let folded = ["v5.channel.k8s.io, v4.channel.k8s.io,channel.k8s.io"];
    assert_eq!(
        Protocol::server_pick(Transport::Spdy, folded, &kubelet),
        Some(Protocol::V4)
    );
    let all = Protocol::ALL;
    assert_eq!(
        Protocol::server_pick(
            Transport::WebSocket,
            ["v3.channel.k8s.io", "base64.channel.k8s.io"],
            &all
        ),
        Some(Protocol::V1Base64),
        "v3 is SPDY-only"
    );
    assert_eq!(
        Protocol::server_pick(Transport::Spdy, ["v4.base64.channel.k8s.io"], &all),
        None
    );
    assert_eq!(
        Protocol::server_pick(Transport::WebSocket, ["nope"], &all),
        None
    );
}

#[test]
fn resize_encodes_like_kubectl_and_decodes_case_insensitively() {
    let mut out = Vec::new();
    TerminalSize {
        width: 100,
        height: 30,
    }
    .encode(&mut out);
    assert_eq!(out, b"{\"Width\":100,\"Height\":30}\n");
    let mut decoder = ResizeDecoder::new();
    decoder.handle_input(b"{\"width\":1,\"HEIGHT\":2}{\"Wi");
    assert_eq!(
        decoder.poll_size(),
        Some(Ok(TerminalSize {
            width: 1,
            height: 2
        }))
    );
    assert_eq!(decoder.poll_size(), None);
    decoder.handle_input(b"dth\":3,\"Height\":4}\n\n");
    assert_eq!(
        decoder.poll_size(),
        Some(Ok(TerminalSize {
            width: 3,
            height: 4
        }))
    );
    assert_eq!(decoder.poll_size(), None);
}

#[test]
fn resize_errors_are_typed() {
    let mut decoder = ResizeDecoder::new();
    decoder.handle_input(b"{\"Width\":70000,\"Height\":1}{\"Width\":5,\"Height\":6}");
    assert!(matches!(
        decoder.poll_size(),
        Some(Err(DecodeError::Json { .. }))
    ));
    assert_eq!(
        decoder.poll_size(),
        Some(Ok(TerminalSize {
            width: 5,
            height: 6
        }))
    );
    decoder.handle_input(b"x{}");
    assert!(matches!(
        decoder.poll_size(),
        Some(Err(DecodeError::UnexpectedByte { byte: b'x', .. }))
    ));
    assert_eq!(decoder.poll_size(), None);
    decoder.handle_input(b"{\"Width\":1,\"Height\":1}");
    assert_eq!(
        decoder.poll_size(),
        None,
        "the stream ended at the framing error"
    );
}

#[test]
fn resize_object_size_is_bounded() {
    let mut decoder = ResizeDecoder::new();
    decoder.handle_input(b"{\"Width\":\"");
    decoder.handle_input(&vec![b'a'; 10_000]);
    assert!(matches!(
        decoder.poll_size(),
        Some(Err(DecodeError::ValueTooLarge { .. }))
    ));
}
