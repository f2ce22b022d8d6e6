//! A watch response body as a stream of [`SourceEvent`]s: body frames go
//! into `podlink_proto::watch::WatchDecoder`, which only finds where each
//! event ends; each event is then deserialized in one pass, its `object`
//! straight into `K` (no intermediate raw copy: a watch of 100,000 pods
//! spends most of its CPU here).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use futures::Stream;
use http_body_util::BodyExt;
use kube::client::Body;
use kube::core::Status;
use podlink_proto::watch::{EventType, WatchDecoder, INITIAL_EVENTS_END_ANNOTATION};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::source::SourceEvent;
use crate::error::{Error, Result};

/// The events of one watch response, ending with the body. A decode error
/// is yielded and ends the stream (the watcher restarts from the last good
/// resourceVersion, so nothing is skipped).
pub(crate) fn decode_events<K>(body: Body) -> impl Stream<Item = Result<SourceEvent<K>>> + Send
where
    K: DeserializeOwned + Send + 'static,
{
    futures::stream::unfold(Some((body, WatchDecoder::default())), |state| async move {
        let (mut body, mut decoder) = state?;
        loop {
            match decoder.poll_raw() {
                Some(Ok(event)) => return Some((decode(&event), Some((body, decoder)))),
                Some(Err(err)) => return Some((Err(Error::WatchDecode(err)), None)),
                None => {}
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        decoder.handle_input(&data);
                    }
                }
                Some(Err(err)) => return Some((Err(Error::ReadBody(err)), None)),
                None => {
                    return match decoder.finish() {
                        Ok(()) => None,
                        Err(err) => Some((Err(Error::WatchDecode(err)), None)),
                    }
                }
            }
        }
    })
}

/// One complete event's JSON into a [`SourceEvent`].
fn decode<K: DeserializeOwned>(event: &[u8]) -> Result<SourceEvent<K>> {
    let mut de = serde_json::Deserializer::from_slice(event);
    let decoded = de
        .deserialize_map(EventVisitor(PhantomData))
        .and_then(|event| de.end().map(|()| event))
        .map_err(|source| Error::DecodeObject {
            what: "watch event",
            source,
        })?;
    Ok(decoded)
}

/// What a BOOKMARK's object carries.
#[derive(Deserialize)]
struct BookmarkObject {
    #[serde(default)]
    metadata: Option<BookmarkMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookmarkMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// Reads `{"type":T,"object":O}`, decoding `O` as `T` says. The apiserver
/// writes `type` first; an `object` that comes first is kept raw and
/// decoded once the type is known.
struct EventVisitor<K>(PhantomData<fn() -> K>);

impl<'de, K: DeserializeOwned> Visitor<'de> for EventVisitor<K> {
    type Value = SourceEvent<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a watch event {\"type\": …, \"object\": …}")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut kind: Option<EventType> = None;
        let mut early: Option<Box<RawValue>> = None;
        let mut event: Option<SourceEvent<K>> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => kind = Some(map.next_value()?),
                "object" => match kind {
                    Some(kind) => event = Some(map.next_value_seed(ObjectSeed(kind, PhantomData))?),
                    None => early = Some(map.next_value()?),
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        if let Some(event) = event {
            return Ok(event);
        }
        let raw = early.ok_or_else(|| de::Error::missing_field("object"))?;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        ObjectSeed(kind, PhantomData)
            .deserialize(&mut de)
            .map_err(de::Error::custom)
    }
}

/// Decodes an event's object as its type says.
struct ObjectSeed<K>(EventType, PhantomData<fn() -> K>);

impl<'de, K: DeserializeOwned> DeserializeSeed<'de> for ObjectSeed<K> {
    type Value = SourceEvent<K>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        de: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        Ok(match self.0 {
            EventType::Added => SourceEvent::Added(K::deserialize(de)?),
            EventType::Modified => SourceEvent::Modified(K::deserialize(de)?),
            EventType::Deleted => SourceEvent::Deleted(K::deserialize(de)?),
            EventType::Bookmark => bookmark(BookmarkObject::deserialize(de)?),
            EventType::Error => {
                // Kept raw first: a Status we cannot read is still reported, as text.
                let raw = Box::<RawValue>::deserialize(de)?;
                let raw = raw.get();
                let status = serde_json::from_str::<Status>(raw)
                    .unwrap_or_else(|_| Status::failure(raw, "InternalError").with_code(500));
                SourceEvent::Error(Box::new(status))
            }
        })
    }
}

fn bookmark<K>(object: BookmarkObject) -> SourceEvent<K> {
    let (resource_version, annotations) = object
        .metadata
        .map(|m| (m.resource_version, m.annotations))
        .unwrap_or_default();
    SourceEvent::Bookmark {
        resource_version: resource_version.unwrap_or_default(),
        initial_events_end: annotations.is_some_and(|a| {
            a.get(INITIAL_EVENTS_END_ANNOTATION).map(String::as_str) == Some("true")
        }),
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    async fn decode(body: &str) -> Vec<Result<SourceEvent<Pod>>> {
        decode_events::<Pod>(Body::from(body.as_bytes().to_vec()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn events_become_typed_objects_bookmarks_and_statuses() {
        let body = concat!(
            r#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"5"}}}"#,
            "\n",
            r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"7","annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
            r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (7)","reason":"Expired","code":410}}"#,
        );
        let events = decode(body).await;
        assert_eq!(events.len(), 3);
        assert!(
            matches!(&events[0], Ok(SourceEvent::Added(pod)) if pod.metadata.name.as_deref() == Some("a"))
        );
        assert!(matches!(
            &events[1],
            Ok(SourceEvent::Bookmark { resource_version, initial_events_end: true }) if resource_version == "7"
        ));
        assert!(
            matches!(&events[2], Ok(SourceEvent::Error(status)) if status.code == 410 && status.reason == "Expired")
        );
    }

    #[tokio::test]
    async fn bad_objects_and_cut_bodies_are_typed_errors() {
        let events = decode(r#"{"type":"MODIFIED","object":{"metadata":{"name":7}}}"#).await;
        assert!(
            matches!(&events[..], [Err(Error::DecodeObject { .. })]),
            "{events:?}"
        );
        let events = decode(r#"{"type":"ADDED","object":{"metadata":"#).await;
        assert!(
            matches!(&events[..], [Err(Error::WatchDecode(_))]),
            "{events:?}"
        );
        let events = decode("not json").await;
        assert!(
            matches!(&events[..], [Err(Error::WatchDecode(_))]),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn any_key_order_and_unknown_keys_decode_the_same() {
        let events = decode(concat!(
            r#"{"object":{"metadata":{"name":"a","resourceVersion":"9"}},"extra":[1,{"x":null}],"type":"DELETED"}"#,
            r#"{"object":{"metadata":{"resourceVersion":"10"}},"type":"BOOKMARK"}"#,
        ))
        .await;
        assert!(
            matches!(&events[0], Ok(SourceEvent::Deleted(pod)) if pod.metadata.resource_version.as_deref() == Some("9")),
            "{events:?}"
        );
        assert!(matches!(
            &events[1],
            Ok(SourceEvent::Bookmark { resource_version, initial_events_end: false }) if resource_version == "10"
        ));
    }

    #[tokio::test]
    async fn unknown_types_and_missing_parts_are_typed_errors() {
        for body in [
            r#"{"type":"RENAMED","object":{}}"#,
            r#"{"type":"ADDED"}"#,
            r#"{"object":{}}"#,
        ] {
            let events = decode(body).await;
            assert!(
                matches!(&events[..], [Err(Error::DecodeObject { .. })]),
                "{body}: {events:?}"
            );
        }
    }
}
