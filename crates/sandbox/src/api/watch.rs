//! `GET …?watch=true`: a chunked stream of watch events.
//!
//! Start points: no resourceVersion or `0` sends the current state as
//! synthetic ADDED events; `N` replays every change after N (or one ERROR
//! 410 event if N was compacted away, as a watch-cache apiserver does);
//! `sendInitialEvents=true` sends the current state and then the
//! `k8s.io/initial-events-end` bookmark. A watcher that falls further
//! behind than the broadcast buffer catches up from the history (a slow
//! reader is never the reason a watch ends); one that falls behind the
//! history itself gets the ERROR 410 a watch cache sends.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Response};
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::mpsc;

use super::Target;
use crate::body::{self, Body};
use crate::conn::{ConnState, StreamingMark};
use crate::error::ApiError;
use crate::media::Representation;
use crate::query::Query;
use crate::resource::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::State;
use crate::store::{event_line, Event, EventType, Object};
use crate::table;

/// How often bookmarks go out when asked for.
const BOOKMARK_PERIOD: Duration = Duration::from_secs(5);
/// Watch length when the client gives no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Chunks buffered towards one client before the watcher waits.
const BODY_CAPACITY: usize = 16;
/// Events batched into one chunk at most.
const BATCH_EVENTS: usize = 512;
const BATCH_BYTES: usize = 1 << 20;

struct Filter {
    resource: Resource,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// What this watcher sees of `e`, if anything: a MODIFIED object that
    /// left the selection is DELETED for it, one that entered it ADDED.
    fn classify(&self, e: &Event) -> Option<EventType> {
        let now = self.matches(&e.object);
        match (e.kind, &e.previous) {
            (EventType::Modified, Some(previous)) => match (self.matches(previous), now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
            (kind, _) => now.then_some(kind),
        }
    }

    fn matches(&self, o: &Object) -> bool {
        if o.resource != self.resource
            || self.namespace.as_ref().is_some_and(|ns| *ns != o.namespace)
        {
            return false;
        }
        if !self.labels.matches(&o.labels) {
            return false;
        }
        let value = self.fields.needs_body().then(|| o.value());
        self.fields.matches(&o.namespace, &o.name, value.as_ref())
    }
}

struct Encoder {
    repr: Representation,
    resource: Resource,
    full_object: bool,
}

impl Encoder {
    /// Encodes an event; `stored` is the stored line when its type is
    /// the one sent (no re-serialization on the JSON path).
    fn event(&self, kind: EventType, object: &Object, stored: Option<&Bytes>) -> Bytes {
        match self.repr {
            Representation::Json => stored
                .cloned()
                .unwrap_or_else(|| event_line(kind.as_str(), &object.json)),
            Representation::Table(version) => {
                let value = object.value();
                let row = table::row(self.resource, &value, version, self.full_object);
                let t = table::table(self.resource, vec![row], version, object.rv, None, true);
                event_line(kind.as_str(), t.to_string().as_bytes())
            }
        }
    }

    fn added(&self, object: &Object) -> Bytes {
        self.event(EventType::Added, object, None)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.resource.kind(), "apiVersion": self.resource.api_version(), "metadata": meta});
        event_line("BOOKMARK", obj.to_string().as_bytes())
    }
}

fn error_line(err: &ApiError) -> Bytes {
    event_line("ERROR", err.status().to_string().as_bytes())
}

/// Serves one watch request.
pub(crate) fn serve(
    state: &Arc<State>,
    conn: &Arc<ConnState>,
    target: &Target,
    query: &Query,
    repr: Representation,
) -> Result<Response<Body>, ApiError> {
    if let Some(code) = state.watch_errors.take() {
        return Err(ApiError::Injected(code));
    }
    let mut fields =
        FieldSelector::parse(query.get("fieldSelector").unwrap_or(""), target.resource)?;
    if let Some(name) = &target.name {
        fields = FieldSelector::parse(&format!("metadata.name={name}"), target.resource)?;
    }
    let filter = Filter {
        resource: target.resource,
        namespace: target.namespace.clone(),
        labels: LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?,
        fields,
    };
    let rv = match query.get("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let initial_events = query.flag("sendInitialEvents");
    let bookmarks = query.flag("allowWatchBookmarks");
    if initial_events && (query.get("resourceVersionMatch") != Some("NotOlderThan") || !bookmarks) {
        return Err(ApiError::Invalid {
            kind: "ListOptions".into(),
            name: String::new(),
            causes: vec![crate::error::Cause {
                reason: "FieldValueForbidden",
                message: "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks".into(),
                field: "sendInitialEvents".into(),
            }],
        });
    }
    if query.get("sendInitialEvents").is_some()
        && !initial_events
        && query.get("resourceVersionMatch").is_some()
    {
        return Err(ApiError::BadRequest(
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
                .into(),
        ));
    }
    let timeout = query
        .number("timeoutSeconds")?
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let encoder = Encoder {
        repr,
        resource: target.resource,
        full_object: query.get("includeObject") == Some("Object"),
    };

    // Where the stream starts.
    let mut initial: Vec<Bytes> = Vec::new();
    let start = match rv {
        Some(from) if from > 0 && !initial_events => match state.store.watch_from(Some(from)) {
            Ok(start) => {
                initial = encode_replay(&filter, &encoder, &start.replay);
                start
            }
            Err(err) => {
                let mut resp = Response::new(body::full(error_line(&err)));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                return Ok(resp);
            }
        },
        _ => {
            let (items, start) = state
                .store
                .snapshot_watch(target.resource, target.namespace.as_deref());
            for o in items.iter().filter(|o| filter.matches(o)) {
                initial.push(encoder.added(o));
            }
            if initial_events {
                initial.push(encoder.bookmark(start.rv, true));
            }
            start
        }
    };
    // A replay is already past the start version.
    let mut last_rv = start.rv;
    let mut live = start.live;

    let (tx, body) = body::channel(BODY_CAPACITY);
    let mark = conn.mark_streaming(&state.conns);
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let _mark: StreamingMark = mark;
        if !send_batched(&tx, initial).await {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_PERIOD,
            BOOKMARK_PERIOD,
        );
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                _ = bookmark_tick.tick(), if bookmarks => {
                    if tx.send(Ok(encoder.bookmark(last_rv, false))).await.is_err() {
                        return;
                    }
                }
                first = live.recv() => {
                    let mut batch = BytesMut::new();
                    // Every received event is encoded before the batch may
                    // close: an event taken off the feed and then left out
                    // would be lost for good.
                    let mut next = Some(first);
                    let mut taken = 0;
                    let mut lagged = false;
                    while let Some(received) = next.take() {
                        match received {
                            Ok(e) => {
                                // Replayed history overlaps the live feed's first events.
                                if e.rv() > last_rv {
                                    last_rv = e.rv();
                                    if let Some(kind) = filter.classify(&e) {
                                        let stored = (kind == e.kind).then_some(&e.line);
                                        batch.extend_from_slice(&encoder.event(kind, &e.object, stored));
                                    }
                                }
                            }
                            Err(RecvError::Lagged(n)) => {
                                tracing::debug!(missed = n, "a watcher fell behind: catching up from history");
                                lagged = true;
                                break;
                            }
                            Err(RecvError::Closed) => return,
                        }
                        taken += 1;
                        if taken == BATCH_EVENTS || batch.len() >= BATCH_BYTES {
                            break;
                        }
                        next = match live.try_recv() {
                            Ok(e) => Some(Ok(e)),
                            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                            Err(TryRecvError::Empty) => None,
                        };
                    }
                    if !batch.is_empty() && tx.send(Ok(batch.freeze())).await.is_err() {
                        return;
                    }
                    if lagged {
                        // The missed events are still in the history; a new
                        // feed starts where the replay ends (the version
                        // check above skips the overlap).
                        match state.store.watch_from(Some(last_rv)) {
                            Ok(start) => {
                                let lines = encode_replay(&filter, &encoder, &start.replay);
                                last_rv = last_rv.max(start.rv);
                                live = start.live;
                                if !send_batched(&tx, lines).await {
                                    return;
                                }
                            }
                            Err(err) => {
                                let _ = tx.send(Ok(error_line(&err))).await;
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// What a watcher sees of replayed history.
fn encode_replay(filter: &Filter, encoder: &Encoder, replay: &[Arc<Event>]) -> Vec<Bytes> {
    replay
        .iter()
        .filter_map(|e| {
            let kind = filter.classify(e)?;
            let stored = (kind == e.kind).then_some(&e.line);
            Some(encoder.event(kind, &e.object, stored))
        })
        .collect()
}

/// Sends pre-encoded lines in batches; false if the client went away.
async fn send_batched(tx: &mpsc::Sender<std::io::Result<Bytes>>, lines: Vec<Bytes>) -> bool {
    let mut batch = BytesMut::new();
    for line in lines {
        batch.extend_from_slice(&line);
        if batch.len() >= BATCH_BYTES
            && tx
                .send(Ok(std::mem::take(&mut batch).freeze()))
                .await
                .is_err()
        {
            return false;
        }
    }
    batch.is_empty() || tx.send(Ok(batch.freeze())).await.is_ok()
}
