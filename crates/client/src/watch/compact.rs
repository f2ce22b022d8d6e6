//! [`Compact`]: an object kept as the JSON the server sent, decoded on read.
//!
//! A typed `k8s_openapi` pod costs ~5.9 KiB in memory (inline `Option`
//! fields and one allocation per string, map and list) for ~1 KiB of JSON.
//! A watcher of 100,000 pods holding them typed needs ~600 MiB; held as
//! their JSON text (one allocation each) plus the few identity fields the
//! store reconciles on, it needs a fraction of that, and the initial sync
//! skips building every typed object.
//!
//! Every part of the list-watch stack is generic over the object type, so
//! the compact representation is chosen by the type parameter: watch
//! `Compact<Pod>` instead of `Pod` and call [`Compact::decode`] where the
//! typed object is needed.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> podlink_client::Result<()> {
//! use k8s_openapi::api::core::v1::Pod;
//! use podlink_client::watch::{ApiSource, Compact, InformerBuilder, WatchConfig};
//!
//! let source = ApiSource::<Compact<Pod>>::namespaced(client, "default");
//! let informer = InformerBuilder::new(WatchConfig::default()).start(source);
//! informer.store().synced().await;
//! if let Some(pod) = informer.store().get(Some("default"), "web-0") {
//!     let pod: Pod = pod.decode()?;
//!     println!("{:?}", pod.status);
//! }
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// An object of kind `K` kept as its JSON text, exactly as the server sent
/// it (nothing is dropped: [`decode`](Self::decode) gives the whole `K`,
/// [`json`](Self::json) the whole text, unknown fields included).
///
/// [`Resource::meta`] holds only what the store needs: name, namespace,
/// uid, resourceVersion and labels. Changing it through
/// [`Resource::meta_mut`] does not change the JSON.
///
/// It deserializes only with `serde_json` (it keeps the raw text), and
/// serializes as that text.
pub struct Compact<K> {
    meta: ObjectMeta,
    /// Whether the JSON carries `apiVersion` and `kind` (items of a list
    /// from a real apiserver do not).
    has_types: bool,
    json: Box<RawValue>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Compact<K> {
    /// The object's JSON text, as received.
    #[must_use]
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// Whether the JSON has `apiVersion` and `kind` at its top level.
    #[must_use]
    pub fn has_types(&self) -> bool {
        self.has_types
    }
}

impl<K: DeserializeOwned> Compact<K> {
    /// The whole object, decoded from its JSON (every call decodes anew).
    ///
    /// # Errors
    ///
    /// [`Error::DecodeObject`] if the JSON is not a valid `K`.
    pub fn decode(&self) -> Result<K> {
        serde_json::from_str(self.json.get()).map_err(|source| Error::DecodeObject {
            what: "compact object",
            source,
        })
    }
}

impl<K> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta.clone(),
            has_types: self.has_types,
            json: self.json.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Compact<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compact")
            .field("namespace", &self.meta.namespace)
            .field("name", &self.meta.name)
            .field("resource_version", &self.meta.resource_version)
            .field("bytes", &self.json.get().len())
            .finish()
    }
}

/// Equal when the JSON texts are (the same object sent the same way).
impl<K> PartialEq for Compact<K> {
    fn eq(&self, other: &Self) -> bool {
        self.json.get() == other.json.get()
    }
}

impl<K: Resource> Resource for Compact<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// The parts of an object read when it is received.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    metadata: HeadMeta,
    #[serde(default)]
    api_version: Option<de::IgnoredAny>,
    #[serde(default)]
    kind: Option<de::IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

impl<'de, K> Deserialize<'de> for Compact<K> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        let json = Box::<RawValue>::deserialize(de)?;
        let head: Head = serde_json::from_str(json.get()).map_err(de::Error::custom)?;
        let HeadMeta {
            name,
            namespace,
            uid,
            resource_version,
            labels,
        } = head.metadata;
        Ok(Self {
            meta: ObjectMeta {
                name,
                namespace,
                uid,
                resource_version,
                labels,
                ..ObjectMeta::default()
            },
            has_types: head.api_version.is_some() && head.kind.is_some(),
            json,
            _kind: PhantomData,
        })
    }
}

impl<K> Serialize for Compact<K> {
    fn serialize<S: Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        self.json.serialize(ser)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    use super::*;

    const POD: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"ns","uid":"u1","resourceVersion":"7","labels":{"app":"web"},"annotations":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"i"}]},"extra":{"kept":[1,2]}}"#;

    #[test]
    fn keeps_the_whole_text_and_the_identity() {
        let compact: Compact<Pod> = serde_json::from_str(POD).unwrap();
        assert_eq!(compact.json(), POD);
        assert!(compact.has_types());
        let meta = compact.meta();
        assert_eq!(meta.name.as_deref(), Some("a"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.uid.as_deref(), Some("u1"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(meta.labels.as_ref().unwrap()["app"], "web");
        let pod = compact.decode().unwrap();
        assert_eq!(pod, serde_json::from_str::<Pod>(POD).unwrap());
        assert_eq!(serde_json::to_string(&compact).unwrap(), POD);
    }

    #[test]
    fn a_list_item_without_types_says_so() {
        let compact: Compact<Pod> = serde_json::from_str(r#"{"metadata":{"name":"b"}}"#).unwrap();
        assert!(!compact.has_types());
        assert_eq!(
            compact.decode().unwrap().metadata.name.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in ["", "[1]", r#"{"metadata":{"name":7}}"#, r#"{"metadata":"#] {
            assert!(serde_json::from_str::<Compact<Pod>>(bad).is_err(), "{bad}");
        }
        let odd: Compact<Pod> =
            serde_json::from_str(r#"{"metadata":{"name":"c"},"spec":{"containers":7}}"#).unwrap();
        assert!(matches!(odd.decode(), Err(Error::DecodeObject { .. })));
    }
}
