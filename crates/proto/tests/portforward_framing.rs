//! Port-forward stream headers, the tunnel subprotocol and the legacy
//! WebSocket channels (PROTOCOLS.md §6).

use bytes::Bytes;
use podlink_proto::channel::Channel;
use podlink_proto::portforward::legacy::{self, PrefixStripper, Received};
use podlink_proto::portforward::{self, StreamHeaders, StreamKind};
use podlink_proto::spdy::Headers;
use podlink_proto::DecodeError;

#[test]
fn stream_headers_match_kubectl() {
    let h = StreamHeaders {
        kind: StreamKind::Error,
        port: 8080,
        request_id: Some("0".into()),
    };
    let headers = h.to_headers();
    let pairs: Vec<_> = headers.iter().collect();
    assert_eq!(
        pairs,
        [
            ("streamtype", "error"),
            ("port", "8080"),
            ("requestid", "0")
        ]
    );
    assert_eq!(StreamHeaders::from_headers(&headers), Ok(h));
}

#[test]
fn stream_headers_are_validated_like_the_kubelet() {
    let invalid = |name, value: Option<&str>| {
        Err(DecodeError::InvalidHeader {
            name,
            value: value.map(str::to_owned),
        })
    };
    let base = || Headers::new().with("streamtype", "data");
    assert_eq!(StreamHeaders::from_headers(&base()), invalid("port", None));
    for bad in ["0", "65536", "-1", "+80", "http", ""] {
        assert_eq!(
            StreamHeaders::from_headers(&base().with("port", bad)),
            invalid("port", Some(bad))
        );
    }
    assert_eq!(
        StreamHeaders::from_headers(
            &Headers::new()
                .with("streamtype", "stdin")
                .with("port", "80")
        ),
        invalid("streamtype", Some("stdin"))
    );
    let no_id =
        StreamHeaders::from_headers(&Headers::new().with("StreamType", "DATA").with("Port", "1"))
            .expect("names and values match case-insensitively");
    assert_eq!(
        (no_id.kind, no_id.port, no_id.request_id),
        (StreamKind::Data, 1, None)
    );
}

#[test]
fn tunnel_subprotocol_wraps_the_spdy_protocol() {
    assert_eq!(portforward::TUNNEL_PROTOCOL, "SPDY/3.1+portforward.k8s.io");
    assert_eq!(
        portforward::tunnel_inner_protocol(portforward::TUNNEL_PROTOCOL),
        Some(portforward::PROTOCOL)
    );
    assert_eq!(
        portforward::tunnel_inner_protocol("v4.channel.k8s.io"),
        None
    );
}

#[test]
fn legacy_channels_pair_data_and_error_per_port_index() {
    assert_eq!(legacy::channel(0, StreamKind::Data), Some(Channel(0)));
    assert_eq!(legacy::channel(0, StreamKind::Error), Some(Channel(1)));
    assert_eq!(legacy::channel(3, StreamKind::Error), Some(Channel(7)));
    assert_eq!(legacy::channel(127, StreamKind::Error), Some(Channel(255)));
    assert_eq!(legacy::channel(128, StreamKind::Data), None);
    assert_eq!(legacy::port_prefix(8080), [0x90, 0x1f]);
}

#[test]
fn legacy_port_prefix_is_stripped_once_per_channel_even_if_split() {
    let mut stripper = PrefixStripper::new(2);
    assert_eq!(
        stripper.handle_message(Channel(0), Bytes::from_static(&[0x50, 0x00])),
        Ok(Received {
            index: 0,
            kind: StreamKind::Data,
            port: Some(80),
            payload: Bytes::new()
        })
    );
    assert_eq!(
        stripper.handle_message(Channel(0), Bytes::from_static(&[0x50, 0x00])),
        Ok(Received {
            index: 0,
            kind: StreamKind::Data,
            port: None,
            payload: Bytes::from_static(&[0x50, 0x00])
        }),
        "later messages are payload"
    );
    assert_eq!(
        stripper.handle_message(Channel(3), Bytes::from_static(&[0x90])),
        Ok(Received {
            index: 1,
            kind: StreamKind::Error,
            port: None,
            payload: Bytes::new()
        })
    );
    assert_eq!(
        stripper.handle_message(Channel(3), Bytes::from_static(b"\x1fboom")),
        Ok(Received {
            index: 1,
            kind: StreamKind::Error,
            port: Some(8080),
            payload: Bytes::from_static(b"boom")
        })
    );
    assert_eq!(
        stripper.handle_message(Channel(4), Bytes::new()),
        Err(DecodeError::UnknownPortChannel {
            channel: 4,
            ports: 2
        })
    );
}
