//! Malformed SPDY bytes give typed errors (or `Unknown`), never panics,
//! and leave the caller's buffer untouched.

use bytes::{Bytes, BytesMut};
use podlink_proto::spdy::frame::UnknownFrame;
use podlink_proto::spdy::Frame;
use podlink_proto::DecodeError;

fn decode(bytes: &[u8]) -> (Result<Option<Frame>, DecodeError>, usize) {
    let mut buf = BytesMut::from(bytes);
    let result = Frame::decode(&mut buf, 1 << 16);
    (result, buf.len())
}

#[test]
fn fixed_size_frames_with_other_lengths_are_rejected() {
    let cases: [(&str, &[u8]); 5] = [
        (
            "RST_STREAM",
            &[0x80, 3, 0, 3, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 5, 0],
        ),
        ("PING", &[0x80, 3, 0, 6, 0, 0, 0, 3, 0, 0, 1]),
        ("GOAWAY", &[0x80, 3, 0, 7, 0, 0, 0, 4, 0, 0, 0, 0]),
        ("WINDOW_UPDATE", &[0x80, 3, 0, 9, 0, 0, 0, 0]),
        (
            "SYN_STREAM",
            &[0x80, 3, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0],
        ),
    ];
    for (frame, bytes) in cases {
        let (result, left) = decode(bytes);
        let len = bytes.len() - 8;
        assert_eq!(result, Err(DecodeError::BadFrameLength { frame, len }));
        assert_eq!(left, bytes.len(), "{frame}: nothing consumed on error");
    }
}

#[test]
fn settings_count_must_match_the_length() {
    let (result, _) = decode(&[0x80, 3, 0, 4, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        result,
        Err(DecodeError::BadFrameLength {
            frame: "SETTINGS",
            len: 4
        })
    );
}

#[test]
fn other_versions_are_rejected_as_soon_as_the_header_arrives() {
    let (result, _) = decode(&[0x80, 2, 0, 1, 0, 0, 0x10, 0]);
    assert_eq!(result, Err(DecodeError::UnsupportedVersion(2)));
}

#[test]
fn unknown_control_types_decode_as_unknown() {
    let (result, left) = decode(&[0x80, 3, 0x12, 0x34, 0xaa, 0, 0, 2, 7, 8]);
    assert_eq!(
        result,
        Ok(Some(Frame::Unknown(UnknownFrame {
            kind: 0x1234,
            flags: 0xaa,
            payload: Bytes::from_static(&[7, 8])
        })))
    );
    assert_eq!(left, 0);
}

#[test]
fn reserved_stream_id_bit_is_ignored() {
    let (result, _) = decode(&[0x80, 3, 0, 3, 0, 0, 0, 8, 0x80, 0, 0, 1, 0, 0, 0, 5]);
    let Ok(Some(Frame::RstStream { stream_id, .. })) = result else {
        panic!("expected RST_STREAM, got {result:?}");
    };
    assert_eq!(stream_id.get(), 1);
}
