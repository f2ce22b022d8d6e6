//! The reflector's store and its reconciliation: after any re-list the
//! consumer gets exactly the differences between the old state and the new
//! one, and no object's resourceVersion ever goes backwards.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kube::core::{Selector, SelectorExt};
use kube::Resource;
use tokio::sync::watch;

use super::machine::Event;

/// Where an object lives: its namespace (`None` for cluster-scoped kinds)
/// and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace, `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `obj`.
    #[must_use]
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        Self {
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// One reconciled change of the watched collection.
#[derive(Debug)]
pub enum Change<K> {
    /// The object appeared.
    Added(Arc<K>),
    /// The object changed.
    Modified {
        /// Its state before.
        old: Arc<K>,
        /// Its state now.
        new: Arc<K>,
    },
    /// The object went away (its last known state).
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Added(obj) => Self::Added(Arc::clone(obj)),
            Self::Modified { old, new } => Self::Modified {
                old: Arc::clone(old),
                new: Arc::clone(new),
            },
            Self::Deleted(obj) => Self::Deleted(Arc::clone(obj)),
        }
    }
}

impl<K> Change<K> {
    /// The object as it is after the change (the last state for a deletion).
    #[must_use]
    pub fn object(&self) -> &Arc<K> {
        match self {
            Self::Added(obj) | Self::Deleted(obj) | Self::Modified { new: obj, .. } => obj,
        }
    }

    /// The watch event type of this change: `ADDED`, `MODIFIED` or `DELETED`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Added(_) => "ADDED",
            Self::Modified { .. } => "MODIFIED",
            Self::Deleted(_) => "DELETED",
        }
    }
}

type Map<K> = HashMap<ObjectKey, Arc<K>>;

struct Shared<K> {
    objects: RwLock<Map<K>>,
    /// Closed when the writer goes away, so waiters never hang.
    synced: watch::Receiver<bool>,
}

/// A read handle on the reflector's store: cheap to clone, always the state
/// after the last applied change.
pub struct Store<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> std::fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.len())
            .field("synced", &self.is_synced())
            .finish()
    }
}

impl<K: Resource> Store<K> {
    /// The object named `name` in `namespace` (`None` for cluster-scoped).
    #[must_use]
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = ObjectKey {
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        };
        self.read().get(&key).cloned()
    }

    /// Every object whose labels match `selector`.
    #[must_use]
    pub fn by_labels(&self, selector: &Selector) -> Vec<Arc<K>> {
        self.read()
            .values()
            .filter(|obj| match &obj.meta().labels {
                Some(labels) => selector.matches(labels),
                None => selector.matches(&Default::default()),
            })
            .cloned()
            .collect()
    }
}

impl<K> Store<K> {
    /// Every object, in no particular order.
    #[must_use]
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    /// Every object with its key.
    #[must_use]
    pub fn entries(&self) -> Vec<(ObjectKey, Arc<K>)> {
        self.read()
            .iter()
            .map(|(key, obj)| (key.clone(), Arc::clone(obj)))
            .collect()
    }

    /// How many objects the store holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the store holds no object.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the initial sync is done.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits until the initial sync is done. Returns `false` if the watcher
    /// ended before that (see its termination for why).
    pub async fn synced(&self) -> bool {
        let mut rx = self.shared.synced.clone();
        let synced = rx.wait_for(|synced| *synced).await.is_ok();
        synced
    }

    fn read(&self) -> RwLockReadGuard<'_, Map<K>> {
        // A panicking writer leaves a consistent map (inserts are atomic).
        self.shared
            .objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The reflector's side of the store: applies raw events and says what
/// changed.
pub(crate) struct Writer<K> {
    shared: Arc<Shared<K>>,
    /// The snapshot being received, in arrival order, swapped in when it
    /// completes.
    pending: Option<Vec<Arc<K>>>,
    synced: watch::Sender<bool>,
}

impl<K: Resource> Writer<K> {
    pub(crate) fn new() -> (Self, Store<K>) {
        let (synced, synced_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            objects: RwLock::new(HashMap::new()),
            synced: synced_rx,
        });
        let store = Store {
            shared: Arc::clone(&shared),
        };
        let writer = Self {
            shared,
            pending: None,
            synced,
        };
        (writer, store)
    }

    /// Applies one raw event, appending the resulting changes to `out`.
    pub(crate) fn apply(&mut self, event: Event<K>, out: &mut VecDeque<Change<K>>) {
        match event {
            Event::Init => self.pending = Some(Vec::new()),
            Event::InitPage(items) => self.collect(items),
            Event::InitDone(items) => {
                self.collect(items);
                let snapshot = self.pending.take().unwrap_or_default();
                self.replace(snapshot, out);
                self.synced.send_replace(true);
            }
            Event::Apply(obj) => self.upsert(obj, out),
            Event::Delete(obj) => self.delete(obj, out),
        }
    }

    fn collect(&mut self, items: Vec<K>) {
        let pending = self.pending.get_or_insert_with(Vec::new);
        pending.extend(items.into_iter().map(Arc::new));
    }

    /// Swaps in a complete snapshot and reports exactly the differences:
    /// changes in the snapshot's order, then deletions by key.
    fn replace(&mut self, snapshot: Vec<Arc<K>>, out: &mut VecDeque<Change<K>>) {
        let mut objects = self.write();
        let mut old = std::mem::take(&mut *objects);
        let mut current = HashMap::with_capacity(snapshot.len());
        for new in snapshot {
            let key = ObjectKey::of(new.as_ref());
            let kept = match old.remove(&key) {
                None => {
                    out.push_back(Change::Added(Arc::clone(&new)));
                    new
                }
                Some(previous) => match compare(previous.as_ref(), new.as_ref()) {
                    Ordering::Replaced => {
                        out.push_back(Change::Deleted(previous));
                        out.push_back(Change::Added(Arc::clone(&new)));
                        new
                    }
                    Ordering::Newer => {
                        out.push_back(Change::Modified {
                            old: previous,
                            new: Arc::clone(&new),
                        });
                        new
                    }
                    // Unchanged, or a stale read: keep what we had rather
                    // than go back.
                    Ordering::Same | Ordering::Older => previous,
                },
            };
            current.insert(key, kept);
        }
        let mut gone: Vec<_> = old.into_iter().collect();
        gone.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        out.extend(gone.into_iter().map(|(_, obj)| Change::Deleted(obj)));
        *objects = current;
    }

    fn upsert(&mut self, obj: K, out: &mut VecDeque<Change<K>>) {
        let key = ObjectKey::of(&obj);
        let mut objects = self.write();
        match objects.get(&key) {
            None => {
                let new = Arc::new(obj);
                objects.insert(key, Arc::clone(&new));
                out.push_back(Change::Added(new));
            }
            Some(previous) => match compare(previous.as_ref(), &obj) {
                Ordering::Same | Ordering::Older => {}
                Ordering::Newer => {
                    let new = Arc::new(obj);
                    let old = objects.insert(key, Arc::clone(&new));
                    if let Some(old) = old {
                        out.push_back(Change::Modified { old, new });
                    }
                }
                Ordering::Replaced => {
                    let new = Arc::new(obj);
                    if let Some(old) = objects.insert(key, Arc::clone(&new)) {
                        out.push_back(Change::Deleted(old));
                    }
                    out.push_back(Change::Added(new));
                }
            },
        }
    }

    fn delete(&mut self, obj: K, out: &mut VecDeque<Change<K>>) {
        let key = ObjectKey::of(&obj);
        let mut objects = self.write();
        let Some(previous) = objects.get(&key) else {
            return;
        };
        match compare(previous.as_ref(), &obj) {
            // The deletion is of an older incarnation, or older than what we hold.
            Ordering::Replaced | Ordering::Older => {}
            Ordering::Same | Ordering::Newer => {
                objects.remove(&key);
                out.push_back(Change::Deleted(Arc::new(obj)));
            }
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Map<K>> {
        self.shared
            .objects
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a newly seen state of an object relates to the one we hold.
#[derive(Debug, PartialEq, Eq)]
enum Ordering {
    /// Same resourceVersion: nothing changed.
    Same,
    /// A later state of the same object.
    Newer,
    /// An earlier state (a stale read): ignored.
    Older,
    /// Another object with the same name (the old one was deleted and a new
    /// one created in between).
    Replaced,
}

fn compare<K: Resource>(held: &K, seen: &K) -> Ordering {
    let (held, seen) = (held.meta(), seen.meta());
    if held.uid.is_some() && seen.uid.is_some() && held.uid != seen.uid {
        return Ordering::Replaced;
    }
    match (&held.resource_version, &seen.resource_version) {
        (Some(a), Some(b)) if a == b => Ordering::Same,
        // resourceVersions are opaque, but every apiserver (and the sandbox)
        // uses integers; compare them as such when they parse.
        (Some(a), Some(b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if b < a => Ordering::Older,
            _ => Ordering::Newer,
        },
        _ => Ordering::Newer,
    }
}
