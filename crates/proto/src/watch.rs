//! Watch event streams (PROTOCOLS.md §9): concatenated
//! `{"type":T,"object":{…}}` values, whitespace optional between them.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::DecodeError;
use crate::json_stream::JsonSplitter;
use crate::status::Status;

/// Default largest event: big enough for any real object (etcd's own limit
/// is 1.5 MiB per object), small enough to stop a runaway stream.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;
/// Annotation that marks the BOOKMARK ending a streaming list's initial events.
pub const INITIAL_EVENTS_END_ANNOTATION: &str = "k8s.io/initial-events-end";

/// The `type` of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
    /// `BOOKMARK`: only the resource version matters.
    Bookmark,
    /// `ERROR`: the object is a Status and the watch ends.
    Error,
}

impl EventType {
    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
            Self::Bookmark => "BOOKMARK",
            Self::Error => "ERROR",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One watch event. The object stays raw JSON so that consumers
/// deserialize it into their own types with a single parse.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The object, as sent.
    pub object: Box<RawValue>,
}

impl PartialEq for WatchEvent {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.object.get() == other.object.get()
    }
}

impl Eq for WatchEvent {}

#[derive(Deserialize)]
struct ObjectMeta {
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl WatchEvent {
    /// An event from an object's JSON.
    pub fn new(kind: EventType, object: Box<RawValue>) -> Self {
        Self { kind, object }
    }

    /// Parses one complete event.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::json("watch event", &e))
    }

    /// Appends the event and a newline, as the apiserver writes it.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(br#"{"type":""#);
        dst.extend_from_slice(self.kind.name().as_bytes());
        dst.extend_from_slice(br#"","object":"#);
        dst.extend_from_slice(self.object.get().as_bytes());
        dst.extend_from_slice(b"}\n");
    }

    fn metadata(&self) -> Option<Metadata> {
        serde_json::from_str::<ObjectMeta>(self.object.get())
            .ok()
            .and_then(|o| o.metadata)
    }

    /// `metadata.resourceVersion` of the object, if it has one.
    pub fn resource_version(&self) -> Option<String> {
        self.metadata().and_then(|m| m.resource_version)
    }

    /// Whether this is the BOOKMARK that ends a streaming list's initial
    /// events (annotation `k8s.io/initial-events-end: "true"`).
    pub fn is_initial_events_end(&self) -> bool {
        self.kind == EventType::Bookmark
            && self
                .metadata()
                .and_then(|m| m.annotations)
                .is_some_and(|a| {
                    a.get(INITIAL_EVENTS_END_ANNOTATION).map(String::as_str) == Some("true")
                })
    }

    /// The Status of an ERROR event.
    pub fn error_status(&self) -> Option<Status> {
        if self.kind != EventType::Error {
            return None;
        }
        Status::from_json(self.object.get().as_bytes()).ok()
    }

    /// Whether this is an ERROR saying the resource version is too old
    /// (410 / Expired / Gone, as client-go decides): relist.
    pub fn is_expired(&self) -> bool {
        self.error_status().is_some_and(|s| s.is_expired())
    }
}

/// Incremental decoder of a watch response body.
///
/// Feed body chunks to [`handle_input`](Self::handle_input) in any split,
/// then call [`poll_event`](Self::poll_event) until `None`; at the end of
/// the body call [`finish`](Self::finish). A bad event that is still
/// well-framed (unknown type, missing object) is reported and skipped; a
/// framing error (a stray byte between events, an event over the size
/// limit) is reported once and ends the stream.
#[derive(Debug)]
pub struct WatchDecoder {
    splitter: JsonSplitter,
}

impl Default for WatchDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_SIZE)
    }
}

impl WatchDecoder {
    /// A decoder refusing events larger than `max_event_size` bytes.
    pub fn new(max_event_size: usize) -> Self {
        Self {
            splitter: JsonSplitter::new("watch event", max_event_size),
        }
    }

    /// Feeds body bytes.
    pub fn handle_input(&mut self, data: &[u8]) {
        self.splitter.handle_input(data);
    }

    /// The next event, or the next error.
    pub fn poll_event(&mut self) -> Option<Result<WatchEvent, DecodeError>> {
        self.splitter
            .next_value()
            .map(|value| value.and_then(|v| WatchEvent::from_json(&v)))
    }

    /// The next event's complete JSON, unparsed, or the next framing
    /// error: for consumers that decode `type` and `object` straight into
    /// their own types in one pass (instead of [`poll_event`](Self::poll_event)'s
    /// parse into a raw object followed by theirs).
    pub fn poll_raw(&mut self) -> Option<Result<Bytes, DecodeError>> {
        self.splitter.next_value()
    }

    /// Ends the body: an event cut off in the middle is an error. Call
    /// after draining [`poll_event`](Self::poll_event) or
    /// [`poll_raw`](Self::poll_raw).
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        self.splitter.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_events_are_the_exact_bytes_of_each_event_in_any_split() {
        let first = r#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"#;
        let second = r#"{"type":"DELETED","object":{"metadata":{"name":"b"}}}"#;
        let body = format!("{first}\n {second}\n");
        for split in 0..body.len() {
            let mut decoder = WatchDecoder::default();
            decoder.handle_input(&body.as_bytes()[..split]);
            let mut raw = Vec::new();
            while let Some(event) = decoder.poll_raw() {
                raw.push(event.expect("well-framed"));
            }
            decoder.handle_input(&body.as_bytes()[split..]);
            while let Some(event) = decoder.poll_raw() {
                raw.push(event.expect("well-framed"));
            }
            decoder.finish().expect("complete body");
            assert_eq!(
                raw,
                [first.as_bytes(), second.as_bytes()],
                "split at {split}"
            );
        }
    }

    #[test]
    fn raw_events_report_framing_errors_once() {
        let mut decoder = WatchDecoder::default();
        decoder.handle_input(b"{\"type\":\"ADDED\",\"object\":{}} x");
        assert!(matches!(decoder.poll_raw(), Some(Ok(_))));
        assert!(matches!(decoder.poll_raw(), Some(Err(_))));
        assert!(decoder.poll_raw().is_none());
    }
}
