//! A watch response body as a stream of [`SourceEvent`]s: body frames go
//! into `podlink_proto::watch::WatchDecoder`, each event's raw object is
//! deserialized once into `K`.

use futures::Stream;
use http_body_util::BodyExt;
use kube::client::Body;
use kube::core::Status;
use podlink_proto::watch::{EventType, WatchDecoder, WatchEvent};
use serde::de::DeserializeOwned;

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
            match decoder.poll_event() {
                Some(Ok(event)) => return Some((convert(&event), Some((body, decoder)))),
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

fn convert<K: DeserializeOwned>(event: &WatchEvent) -> Result<SourceEvent<K>> {
    let object = || {
        serde_json::from_str::<K>(event.object.get()).map_err(|source| Error::DecodeObject {
            what: "watch event object",
            source,
        })
    };
    Ok(match event.kind {
        EventType::Added => SourceEvent::Added(object()?),
        EventType::Modified => SourceEvent::Modified(object()?),
        EventType::Deleted => SourceEvent::Deleted(object()?),
        EventType::Bookmark => SourceEvent::Bookmark {
            resource_version: event.resource_version().unwrap_or_default(),
            initial_events_end: event.is_initial_events_end(),
        },
        EventType::Error => {
            let raw = event.object.get();
            let status = serde_json::from_str::<Status>(raw)
                .unwrap_or_else(|_| Status::failure(raw, "InternalError").with_code(500));
            SourceEvent::Error(Box::new(status))
        }
    })
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
}
