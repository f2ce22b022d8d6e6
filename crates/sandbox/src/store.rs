//! The object store and watch cache.
//!
//! One monotonic resourceVersion counter for everything. Each object is kept
//! serialized (its JSON bytes) next to the few fields needed to filter it, so
//! a list is a concatenation and a watch event is serialized once, whatever
//! the number of watchers. Changes go into a bounded history (for watches
//! that resume from a resourceVersion) and onto a broadcast channel; a
//! watcher that falls further behind than the channel holds is dropped
//! rather than buffered without bound.
//!
//! Consistency: every change is applied, recorded and broadcast under the
//! write lock, and a watch subscribes and copies history under the read lock,
//! so a resumed watch sees each change exactly once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::meta;
use crate::resource::Resource;

/// How many changes are kept for resuming watches.
pub(crate) const HISTORY_LIMIT: usize = 200_000;
/// How many live events a watcher may lag behind before it is dropped.
pub(crate) const BROADCAST_CAPACITY: usize = 65_536;

/// One stored object.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) resource: Resource,
    /// Namespace, `""` for cluster-scoped objects.
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) rv: u64,
    pub(crate) labels: BTreeMap<String, String>,
    /// The whole object as JSON, `kind` and `apiVersion` included.
    pub(crate) json: Bytes,
}

impl Object {
    /// Parses the stored JSON.
    pub(crate) fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// The type of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, with its watch-stream line serialized once.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) kind: EventType,
    pub(crate) object: Arc<Object>,
    /// The version a MODIFIED event replaced, so that filtered watches can
    /// turn "stopped matching" into DELETED and "started matching" into
    /// ADDED, as the apiserver's watch cache does.
    pub(crate) previous: Option<Arc<Object>>,
    /// `{"type":…,"object":…}\n`.
    pub(crate) line: Bytes,
}

impl Event {
    pub(crate) fn new(kind: EventType, object: Arc<Object>) -> Self {
        let line = event_line(kind.as_str(), &object.json);
        Self {
            kind,
            object,
            previous: None,
            line,
        }
    }

    fn replacing(mut self, previous: Arc<Object>) -> Self {
        self.previous = Some(previous);
        self
    }

    pub(crate) fn rv(&self) -> u64 {
        self.object.rv
    }
}

/// Serializes one watch event around already-serialized object bytes.
pub(crate) fn event_line(kind: &str, object_json: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(object_json.len() + 32);
    buf.put_slice(b"{\"type\":\"");
    buf.put_slice(kind.as_bytes());
    buf.put_slice(b"\",\"object\":");
    buf.put_slice(object_json);
    buf.put_slice(b"}\n");
    buf.freeze()
}

type Key = (String, String);

#[derive(Debug, Default)]
struct Inner {
    rv: u64,
    objects: HashMap<Resource, BTreeMap<Key, Arc<Object>>>,
    history: VecDeque<Arc<Event>>,
    /// The history holds every change after this version.
    compacted_rv: u64,
}

/// A page of a list.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) items: Vec<Arc<Object>>,
    /// The store version the list reflects.
    pub(crate) rv: u64,
    /// The key to continue from, if more items remain.
    pub(crate) next: Option<Key>,
}

/// A watch's starting point: the history to replay and the live feed.
pub(crate) struct WatchStart {
    pub(crate) replay: Vec<Arc<Event>>,
    pub(crate) live: broadcast::Receiver<Arc<Event>>,
    pub(crate) rv: u64,
}

/// The store.
#[derive(Debug)]
pub(crate) struct Store {
    inner: RwLock<Inner>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Store {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::with_capacity(BROADCAST_CAPACITY)
    }

    /// A store whose watchers may lag `capacity` events behind.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: RwLock::new(Inner {
                rv: 1,
                ..Inner::default()
            }),
            events: broadcast::channel(capacity).0,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The current resourceVersion.
    #[cfg(test)]
    pub(crate) fn rv(&self) -> u64 {
        self.read().rv
    }

    /// One object.
    pub(crate) fn get(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Object>> {
        self.read()
            .objects
            .get(&resource)?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Lists objects of `resource` (in `namespace` if given) in key order,
    /// starting at `from`, keeping those `filter` accepts, at most `limit`.
    pub(crate) fn list(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        from: Option<Key>,
        limit: Option<usize>,
        filter: impl Fn(&Object) -> bool,
    ) -> Page {
        let inner = self.read();
        let mut page = Page {
            items: Vec::new(),
            rv: inner.rv,
            next: None,
        };
        let Some(map) = inner.objects.get(&resource) else {
            return page;
        };
        let start = match (&from, namespace) {
            (Some(key), _) => key.clone(),
            (None, Some(ns)) => (ns.to_owned(), String::new()),
            (None, None) => (String::new(), String::new()),
        };
        for (key, object) in map.range(start..) {
            if namespace.is_some_and(|ns| key.0 != ns) {
                break;
            }
            if !filter(object) {
                continue;
            }
            if limit.is_some_and(|l| page.items.len() >= l) {
                page.next = Some(key.clone());
                break;
            }
            page.items.push(object.clone());
        }
        page
    }

    /// Creates an object from a fully prepared value (metadata.name and
    /// namespace set); fills uid, creationTimestamp and resourceVersion.
    pub(crate) fn create(
        &self,
        resource: Resource,
        mut value: Value,
    ) -> Result<Arc<Object>, ApiError> {
        let namespace = str_at(&value, "/metadata/namespace").to_owned();
        let name = str_at(&value, "/metadata/name").to_owned();
        let mut inner = self.write();
        let key = (namespace, name);
        if inner
            .objects
            .get(&resource)
            .is_some_and(|m| m.contains_key(&key))
        {
            return Err(ApiError::AlreadyExists {
                resource: resource.plural().to_owned(),
                name: key.1,
            });
        }
        let rv = inner.rv + 1;
        let meta = &mut value["metadata"];
        meta["uid"] = Value::String(meta::new_uid());
        meta["creationTimestamp"] = Value::String(meta::now_rfc3339());
        let object = Arc::new(build_object(resource, &mut value, rv)?);
        inner.commit(&self.events, Event::new(EventType::Added, object.clone()));
        Ok(object)
    }

    /// Replaces an object with `change(old)`; no event and no new version if
    /// the object did not change.
    pub(crate) fn update(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&Object, Value) -> Result<Value, ApiError>,
    ) -> Result<Arc<Object>, ApiError> {
        let mut inner = self.write();
        let old = inner.existing(resource, namespace, name)?;
        let mut value = change(&old, old.value())?;
        // Identity fields never change through an update.
        value["metadata"]["name"] = Value::String(old.name.clone());
        value["metadata"]["uid"] = Value::String(old.uid.clone());
        if resource.namespaced() {
            value["metadata"]["namespace"] = Value::String(old.namespace.clone());
        }
        let unchanged = build_object(resource, &mut value, old.rv)?;
        if unchanged.json == old.json {
            return Ok(old);
        }
        let rv = inner.rv + 1;
        let object = Arc::new(build_object(resource, &mut value, rv)?);
        inner.commit(
            &self.events,
            Event::new(EventType::Modified, object.clone()).replacing(old),
        );
        Ok(object)
    }

    /// Removes an object; the DELETED event carries a new resourceVersion.
    pub(crate) fn delete(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Object>, ApiError> {
        let mut inner = self.write();
        let old = inner.existing(resource, namespace, name)?;
        let rv = inner.rv + 1;
        // Only the version changes: a deletecollection of 100,000 objects
        // must not parse and re-serialize each one under the write lock.
        let object = match with_resource_version(&old.json, rv) {
            Some(json) => Object {
                resource,
                namespace: old.namespace.clone(),
                name: old.name.clone(),
                uid: old.uid.clone(),
                rv,
                labels: old.labels.clone(),
                json,
            },
            None => build_object(resource, &mut old.value(), rv)?,
        };
        let object = Arc::new(object);
        inner.commit(&self.events, Event::new(EventType::Deleted, object.clone()));
        Ok(object)
    }

    /// Starts a watch: history after `from` (`None` = only live changes),
    /// or Expired if that history was compacted away.
    pub(crate) fn watch_from(&self, from: Option<u64>) -> Result<WatchStart, ApiError> {
        let inner = self.read();
        let live = self.events.subscribe();
        let replay = match from {
            None => Vec::new(),
            Some(from) => {
                if from < inner.compacted_rv {
                    return Err(too_old(from, inner.compacted_rv));
                }
                // History is in version order; skip what the client has seen.
                let skip = inner.history.partition_point(|e| e.rv() <= from);
                inner.history.range(skip..).cloned().collect()
            }
        };
        Ok(WatchStart {
            replay,
            live,
            rv: inner.rv,
        })
    }

    /// The current objects of `resource` (in `namespace` if given) and a
    /// live feed starting right after them, taken atomically.
    pub(crate) fn snapshot_watch(
        &self,
        resource: Resource,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Object>>, WatchStart) {
        let inner = self.read();
        let live = self.events.subscribe();
        let items = inner
            .objects
            .get(&resource)
            .map(|m| {
                m.values()
                    .filter(|o| namespace.is_none_or(|ns| o.namespace == ns))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        (
            items,
            WatchStart {
                replay: Vec::new(),
                live,
                rv: inner.rv,
            },
        )
    }

    /// Subscribes to live changes only.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Checks that `rv` is still inside the kept history (continue tokens).
    pub(crate) fn check_not_compacted(&self, rv: u64) -> Result<(), ApiError> {
        let compacted = self.read().compacted_rv;
        if rv < compacted {
            return Err(ApiError::Expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".to_owned(),
            ));
        }
        Ok(())
    }

    /// Forgets all history (the `compact` fault).
    pub(crate) fn compact(&self) {
        let mut inner = self.write();
        inner.history.clear();
        inner.compacted_rv = inner.rv;
    }
}

impl Inner {
    /// The stored object, or NotFound.
    fn existing(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Object>, ApiError> {
        self.objects
            .get(&resource)
            .and_then(|m| m.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            .ok_or_else(|| ApiError::NotFound {
                resource: resource.plural().to_owned(),
                name: name.to_owned(),
            })
    }

    fn commit(&mut self, events: &broadcast::Sender<Arc<Event>>, event: Event) {
        let event = Arc::new(event);
        self.rv = event.rv();
        let object = &event.object;
        let map = self.objects.entry(object.resource).or_default();
        let key = (object.namespace.clone(), object.name.clone());
        if event.kind == EventType::Deleted {
            map.remove(&key);
        } else {
            map.insert(key, object.clone());
        }
        if self.history.len() >= HISTORY_LIMIT {
            if let Some(oldest) = self.history.pop_front() {
                self.compacted_rv = oldest.rv();
            }
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = events.send(event);
    }
}

/// The Status message a real watch cache gives for a too-old version.
pub(crate) fn too_old(from: u64, oldest: u64) -> ApiError {
    ApiError::Expired(format!("too old resource version: {from} ({oldest})"))
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The stored JSON `json` with `metadata.resourceVersion` set to `rv`,
/// spliced in place (same bytes otherwise); `None` if it has no such field
/// to replace.
fn with_resource_version(json: &[u8], rv: u64) -> Option<Bytes> {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        metadata: &'a serde_json::value::RawValue,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta<'a> {
        #[serde(borrow)]
        resource_version: Option<&'a serde_json::value::RawValue>,
    }
    let top: Top<'_> = serde_json::from_slice(json).ok()?;
    let meta: Meta<'_> = serde_json::from_str(top.metadata.get()).ok()?;
    let old = meta.resource_version?.get();
    // The raw value borrows from `json`: its address gives its place.
    let start = (old.as_ptr() as usize).checked_sub(json.as_ptr() as usize)?;
    let end = start + old.len();
    let value = format!("\"{rv}\"");
    let mut out = BytesMut::with_capacity(json.len() - old.len() + value.len());
    out.put_slice(json.get(..start)?);
    out.put_slice(value.as_bytes());
    out.put_slice(json.get(end..)?);
    Some(out.freeze())
}

/// Sets kind, apiVersion and resourceVersion and serializes.
fn build_object(resource: Resource, value: &mut Value, rv: u64) -> Result<Object, ApiError> {
    value["kind"] = Value::String(resource.kind().to_owned());
    value["apiVersion"] = Value::String(resource.api_version().to_owned());
    value["metadata"]["resourceVersion"] = Value::String(rv.to_string());
    let labels = value
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let json = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Object {
        resource,
        namespace: str_at(value, "/metadata/namespace").to_owned(),
        name: str_at(value, "/metadata/name").to_owned(),
        uid: str_at(value, "/metadata/uid").to_owned(),
        rv,
        labels,
        json: Bytes::from(json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "x"}}, "spec": {}})
    }

    #[test]
    fn versions_are_monotonic_and_lists_page() {
        let store = Store::new();
        let a = store.create(Resource::Pods, pod("a")).unwrap();
        let b = store.create(Resource::Pods, pod("b")).unwrap();
        assert!(b.rv > a.rv);
        let page = store.list(Resource::Pods, Some("default"), None, Some(1), |_| true);
        assert_eq!(page.items.len(), 1);
        let next = page.next.unwrap();
        let page = store.list(Resource::Pods, Some("default"), Some(next), Some(1), |_| {
            true
        });
        assert_eq!(page.items[0].name, "b");
        assert!(page.next.is_none());
    }

    #[test]
    fn a_deletion_changes_only_the_version() {
        let store = Store::new();
        let mut value = pod("a");
        value["metadata"]["annotations"] =
            json!({"resourceVersion": "2", "q": "\"resourceVersion\":\"2\""});
        value["status"] = json!({"resourceVersion": "2"});
        let a = store.create(Resource::Pods, value).unwrap();
        let gone = store.delete(Resource::Pods, "default", "a").unwrap();
        assert!(gone.rv > a.rv);
        let mut expected = a.value();
        expected["metadata"]["resourceVersion"] = json!(gone.rv.to_string());
        assert_eq!(gone.value(), expected);
        assert_eq!(
            gone.json,
            serde_json::to_vec(&expected).unwrap(),
            "same bytes as a re-serialization"
        );
        assert_eq!(
            (gone.uid.as_str(), &gone.labels),
            (a.uid.as_str(), &a.labels)
        );
        assert_eq!(with_resource_version(b"{\"metadata\":{}}", 9), None);
        assert_eq!(with_resource_version(b"not json", 9), None);
    }

    #[test]
    fn unchanged_update_keeps_version() {
        let store = Store::new();
        let a = store.create(Resource::Pods, pod("a")).unwrap();
        let same = store
            .update(Resource::Pods, "default", "a", |_, v| Ok(v))
            .unwrap();
        assert_eq!(same.rv, a.rv);
    }

    #[test]
    fn watch_replays_after_version_and_expires_after_compact() {
        let store = Store::new();
        let a = store.create(Resource::Pods, pod("a")).unwrap();
        store.create(Resource::Pods, pod("b")).unwrap();
        store.delete(Resource::Pods, "default", "a").unwrap();
        let start = store.watch_from(Some(a.rv)).unwrap();
        let kinds: Vec<_> = start
            .replay
            .iter()
            .map(|e| (e.kind, e.object.name.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EventType::Added, "b".into()),
                (EventType::Deleted, "a".into())
            ]
        );
        store.compact();
        assert!(matches!(
            store.watch_from(Some(a.rv)),
            Err(ApiError::Expired(_))
        ));
        assert!(store.watch_from(Some(store.rv())).is_ok());
    }

    /// Many watchers, started at different points while a writer runs,
    /// each see every change after their start exactly once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_watchers_see_every_change_once_in_order() {
        const WRITES: u64 = 3000;
        const WATCHERS: usize = 64;
        let store = Arc::new(Store::new());
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..WRITES {
                    let name = format!("p{}", i % 100);
                    if store.get(Resource::Pods, "default", &name).is_some() {
                        store.delete(Resource::Pods, "default", &name).unwrap();
                    } else {
                        store.create(Resource::Pods, pod(&name)).unwrap();
                    }
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let mut watchers = Vec::new();
        for w in 0..WATCHERS {
            let store = store.clone();
            watchers.push(tokio::spawn(async move {
                for _ in 0..w % 7 {
                    tokio::task::yield_now().await;
                }
                let from = store.rv();
                let start = store.watch_from(Some(from)).unwrap();
                let mut seen: Vec<u64> = start.replay.iter().map(|e| e.rv()).collect();
                let mut live = start.live;
                let last = 1 + WRITES; // the version after the final write
                while seen.last().copied().unwrap_or(from) < last {
                    let e = live.recv().await.unwrap();
                    if e.rv() > start.rv {
                        seen.push(e.rv());
                    }
                }
                (from, seen)
            }));
        }
        writer.await.unwrap();
        for w in watchers {
            let (from, seen) = w.await.unwrap();
            let expected: Vec<u64> = (from + 1..=1 + WRITES).collect();
            assert_eq!(seen, expected, "watcher from {from}");
        }
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_told_so() {
        let store = Store::with_capacity(8);
        let mut live = store.watch_from(None).unwrap().live;
        for i in 0..20 {
            store.create(Resource::Pods, pod(&format!("p{i}"))).unwrap();
        }
        assert!(matches!(
            live.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }
}
