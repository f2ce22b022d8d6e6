//! [`ApiSource`]: list and watch over HTTP with `kube::Client`, decoding
//! watch bodies with `podlink_proto::watch::WatchDecoder`.
//!
//! Objects are deserialized once, straight from the response bytes into `K`
//! (a k8s-openapi type or `DynamicObject`).

use std::marker::PhantomData;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use kube::core::Status;
use kube::Resource;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::source::{EventStream, ListPage, ListRequest, Source, WatchRequest};
use super::wire::decode_events;
use crate::error::{Error, Result};

/// Query values keep only RFC 3986 unreserved characters unescaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How much of an error answer's body we read to find its `Status`.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A collection of the API server, listed and watched over HTTP.
pub struct ApiSource<K> {
    client: kube::Client,
    url_path: String,
    label_selector: Option<String>,
    field_selector: Option<String>,
    max_list_bytes: usize,
    _kind: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for ApiSource<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSource")
            .field("url_path", &self.url_path)
            .field("label_selector", &self.label_selector)
            .field("field_selector", &self.field_selector)
            .finish_non_exhaustive()
    }
}

impl<K> ApiSource<K>
where
    K: Resource,
    K::DynamicType: Default,
{
    /// The objects of one namespace (a namespaced kind known at compile time).
    #[must_use]
    pub fn namespaced(client: kube::Client, namespace: &str) -> Self {
        Self::namespaced_with(client, namespace, &K::DynamicType::default())
    }

    /// The objects of every namespace, or of a cluster-scoped kind.
    #[must_use]
    pub fn all(client: kube::Client) -> Self {
        Self::all_with(client, &K::DynamicType::default())
    }
}

impl<K: Resource> ApiSource<K> {
    /// One namespace of a kind described at run time (`DynamicObject`).
    #[must_use]
    pub fn namespaced_with(
        client: kube::Client,
        namespace: &str,
        dyntype: &K::DynamicType,
    ) -> Self {
        Self::at(client, K::url_path(dyntype, Some(namespace)))
    }

    /// Every namespace of a kind described at run time.
    #[must_use]
    pub fn all_with(client: kube::Client, dyntype: &K::DynamicType) -> Self {
        Self::at(client, K::url_path(dyntype, None))
    }

    fn at(client: kube::Client, url_path: String) -> Self {
        Self {
            client,
            url_path,
            label_selector: None,
            field_selector: None,
            max_list_bytes: 1 << 30,
            _kind: PhantomData,
        }
    }

    /// Only objects whose labels match (`labelSelector`, kubectl syntax).
    #[must_use]
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_owned()).filter(|s| !s.is_empty());
        self
    }

    /// Only objects whose fields match (`fieldSelector`).
    #[must_use]
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_owned()).filter(|s| !s.is_empty());
        self
    }

    /// Bound on one list page's body (default 1 GiB): a server ignoring
    /// `limit` cannot make us allocate without bound.
    #[must_use]
    pub fn max_list_bytes(mut self, bytes: usize) -> Self {
        self.max_list_bytes = bytes;
        self
    }

    fn uri(&self, params: &[(&str, &str)]) -> String {
        let selectors = [
            ("labelSelector", &self.label_selector),
            ("fieldSelector", &self.field_selector),
        ];
        let selectors = selectors
            .iter()
            .filter_map(|(key, value)| Some((*key, value.as_deref()?)));
        let mut uri = self.url_path.clone();
        for (i, (key, value)) in params.iter().copied().chain(selectors).enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(key);
            uri.push('=');
            uri.extend(utf8_percent_encode(value, QUERY_VALUE));
        }
        uri
    }

    async fn get(&self, uri: String) -> Result<Response<Body>> {
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .map_err(|err| Error::InvalidRequest(err.to_string()))?;
        let response = self.client.send(request).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }
}

/// The list envelope: only what the watcher needs, objects decoded into `K`.
#[derive(Deserialize)]
struct List<K> {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default = "Vec::new")]
    items: Vec<K>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(default)]
    resource_version: String,
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

impl<K> Source<K> for ApiSource<K>
where
    K: Resource + DeserializeOwned + Send + 'static,
{
    fn list(&self, request: ListRequest) -> BoxFuture<'_, Result<ListPage<K>>> {
        async move {
            let limit = request.limit.map(|limit| limit.to_string());
            let mut params = Vec::new();
            if let Some(limit) = &limit {
                params.push(("limit", limit.as_str()));
            }
            if let Some(token) = &request.continue_token {
                params.push(("continue", token.as_str()));
            }
            let response = self.get(self.uri(&params)).await?;
            let body = read_bounded(response.into_body(), self.max_list_bytes).await?;
            let list: List<K> =
                serde_json::from_slice(&body).map_err(|source| Error::DecodeObject {
                    what: "list",
                    source,
                })?;
            Ok(ListPage {
                items: list.items,
                resource_version: list.metadata.resource_version,
                continue_token: list
                    .metadata
                    .continue_token
                    .filter(|token| !token.is_empty()),
            })
        }
        .boxed()
    }

    fn watch(&self, request: WatchRequest) -> BoxFuture<'_, Result<EventStream<K>>> {
        async move {
            let timeout = request.timeout_seconds.map(|secs| secs.to_string());
            let mut params = vec![("watch", "true")];
            if let Some(rv) = &request.resource_version {
                params.push(("resourceVersion", rv.as_str()));
            }
            if request.bookmarks {
                params.push(("allowWatchBookmarks", "true"));
            }
            if let Some(timeout) = &timeout {
                params.push(("timeoutSeconds", timeout.as_str()));
            }
            if request.send_initial_events {
                params.push(("sendInitialEvents", "true"));
                params.push(("resourceVersionMatch", "NotOlderThan"));
            }
            let response = self.get(self.uri(&params)).await?;
            Ok(decode_events(response.into_body()).boxed())
        }
        .boxed()
    }
}

/// Reads a whole body, failing once it exceeds `limit` bytes.
async fn read_bounded(mut body: Body, limit: usize) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Error::ReadBody)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(Error::ResponseTooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Turns a non-2xx answer into the client error, keeping its `Status` and,
/// for 429, its `Retry-After`.
async fn api_error(response: Response<Body>) -> Error {
    let code = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = match read_bounded(response.into_body(), ERROR_BODY_LIMIT).await {
        Ok(body) => body,
        Err(err) => return err,
    };
    let mut status = serde_json::from_slice::<Status>(&text)
        .ok()
        .filter(|status| status.is_failure() || status.code != 0)
        .unwrap_or_else(|| {
            let message = String::from_utf8_lossy(&text).trim().to_owned();
            let reason = code
                .canonical_reason()
                .unwrap_or("Unknown")
                .replace(' ', "");
            Status::failure(&message, &reason)
        });
    if status.code == 0 {
        status.code = code.as_u16();
    }
    let status = Box::new(status);
    if code == StatusCode::TOO_MANY_REQUESTS {
        Error::Throttled {
            status,
            retry_after,
        }
    } else {
        Error::Api(status)
    }
}
