//! Watch response bodies (PROTOCOLS.md §9) in any chunking, with the
//! event helpers client-go's reflector needs.

use podlink_proto::watch::{EventType, WatchDecoder, WatchEvent};
use podlink_proto::DecodeError;

const ADDED: &str = r#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"101"}}}"#;
const MODIFIED: &str = r#"{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a \"quoted\" {brace}","resourceVersion":"102"}}}"#;
const EXPIRED: &str = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 123 (456)","reason":"Expired","code":410}}"#;
const INITIAL_END: &str = r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"200","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;

fn decode_all(chunks: &[&[u8]]) -> Vec<Result<WatchEvent, DecodeError>> {
    let mut decoder = WatchDecoder::default();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.handle_input(chunk);
        out.extend(std::iter::from_fn(|| decoder.poll_event()));
    }
    if let Err(e) = decoder.finish() {
        out.push(Err(e));
    }
    out
}

#[test]
fn newline_separated_and_concatenated_events_decode() {
    let body = format!("{ADDED}\n{MODIFIED}{EXPIRED}  \r\n\t{INITIAL_END}\n");
    let events: Vec<_> = decode_all(&[body.as_bytes()])
        .into_iter()
        .map(|e| e.expect("valid"))
        .collect();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventType::Added,
            EventType::Modified,
            EventType::Error,
            EventType::Bookmark
        ]
    );
    assert_eq!(events[0].resource_version().as_deref(), Some("101"));
    assert_eq!(events[1].resource_version().as_deref(), Some("102"));
    assert!(events[1].object.get().contains(r#"a \"quoted\" {brace}"#));
    assert!(events[2].is_expired());
    assert_eq!(events[2].error_status().and_then(|s| s.code), Some(410));
    assert!(!events[0].is_expired());
    assert!(events[3].is_initial_events_end());
    assert!(!events[0].is_initial_events_end());
}

#[test]
fn byte_by_byte_input_gives_the_same_events() {
    let body = format!("{ADDED}\n{MODIFIED}\n");
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
    let events: Vec<_> = decode_all(&chunks)
        .into_iter()
        .map(|e| e.expect("valid"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].resource_version().as_deref(), Some("102"));
}

#[test]
fn truncated_trailing_event_is_reported_by_finish() {
    let body = format!("{ADDED}\n{}", &MODIFIED[..40]);
    let out = decode_all(&[body.as_bytes()]);
    assert!(out[0].is_ok());
    assert_eq!(
        out[1],
        Err(DecodeError::Truncated {
            what: "watch event",
            len: 40
        })
    );
}

#[test]
fn a_bad_event_is_skipped_but_framing_errors_end_the_stream() {
    let body = format!(r#"{{"type":"EXPLODED","object":{{}}}}{ADDED}]{MODIFIED}"#);
    let out = decode_all(&[body.as_bytes()]);
    assert!(matches!(out[0], Err(DecodeError::Json { .. })));
    assert!(out[1].is_ok());
    assert!(matches!(
        out[2],
        Err(DecodeError::UnexpectedByte { byte: b']', .. })
    ));
    assert_eq!(out.len(), 3);
}

#[test]
fn oversized_event_is_an_error_not_unbounded_buffering() {
    let mut decoder = WatchDecoder::new(1024);
    decoder.handle_input(br#"{"type":"ADDED","object":{"data":""#);
    for _ in 0..100 {
        decoder.handle_input(&[b'x'; 100]);
    }
    assert_eq!(
        decoder.poll_event(),
        Some(Err(DecodeError::ValueTooLarge {
            what: "watch event",
            max: 1024
        }))
    );
    assert_eq!(decoder.poll_event(), None);
    assert_eq!(decoder.finish(), Ok(()), "the error was already reported");
}

#[test]
fn large_objects_across_many_chunks_decode() {
    let big = "y".repeat(3 << 20);
    let body = format!(
        r#"{{"type":"ADDED","object":{{"kind":"ConfigMap","metadata":{{"resourceVersion":"9"}},"data":{{"k":"{big}"}}}}}}"#
    );
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(16 * 1024 + 7).collect();
    let out = decode_all(&chunks);
    assert_eq!(out.len(), 1);
    let event = out[0].as_ref().expect("valid");
    assert_eq!(event.resource_version().as_deref(), Some("9"));
    assert!(event.object.get().len() > 3 << 20);
}

#[test]
fn encoder_writes_what_the_apiserver_writes() {
    let event = WatchEvent::from_json(ADDED.as_bytes()).expect("valid");
    let mut out = Vec::new();
    event.encode(&mut out);
    assert_eq!(out, format!("{ADDED}\n").as_bytes());
}
