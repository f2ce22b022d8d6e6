//! Where a watcher gets its objects from: the two calls of the list-watch
//! protocol, behind a trait so that the state machine is independent of HTTP.
//!
//! [`ApiSource`](super::ApiSource) is the real implementation over
//! `kube::Client`; tests script their own.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use kube::core::Status;

use crate::error::Result;

/// One page of a paged list.
#[derive(Debug)]
pub struct ListPage<K> {
    /// The objects on this page.
    pub items: Vec<K>,
    /// The list's `metadata.resourceVersion`: where a watch resumes.
    pub resource_version: String,
    /// The `continue` token of the next page, `None` on the last one.
    pub continue_token: Option<String>,
}

/// Arguments of a list call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListRequest {
    /// Page size (`limit`); `None` asks for everything at once.
    pub limit: Option<u32>,
    /// The `continue` token from the previous page.
    pub continue_token: Option<String>,
}

/// Arguments of a watch call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchRequest {
    /// Resume after this resourceVersion; `None` with `send_initial_events`
    /// asks for the current state.
    pub resource_version: Option<String>,
    /// Ask for bookmarks (`allowWatchBookmarks=true`).
    pub bookmarks: bool,
    /// Ask for a streaming list (`sendInitialEvents=true`,
    /// `resourceVersionMatch=NotOlderThan`).
    pub send_initial_events: bool,
    /// `timeoutSeconds`: the server ends the watch cleanly after this long.
    pub timeout_seconds: Option<u32>,
}

/// One decoded event of a watch stream.
#[derive(Debug)]
pub enum SourceEvent<K> {
    /// `ADDED`.
    Added(K),
    /// `MODIFIED`.
    Modified(K),
    /// `DELETED`, carrying the object's last state.
    Deleted(K),
    /// `BOOKMARK`: progress without a change.
    Bookmark {
        /// The resourceVersion to resume from.
        resource_version: String,
        /// The `k8s.io/initial-events-end` annotation: a streaming list's
        /// initial state is complete.
        initial_events_end: bool,
    },
    /// `ERROR`: the server ends the watch with this `Status`.
    Error(Box<Status>),
}

/// The events of one watch call, ending when the server ends the response.
pub type EventStream<K> = BoxStream<'static, Result<SourceEvent<K>>>;

/// The list and watch calls a watcher makes, for one collection (resource,
/// namespace and selectors are the source's business).
///
/// Errors are the client [`Error`](crate::Error): HTTP failures carry the
/// server's `Status` ([`Error::Api`](crate::Error::Api)), 429 carries its
/// `Retry-After` ([`Error::Throttled`](crate::Error::Throttled)).
pub trait Source<K>: Send + Sync + 'static {
    /// Fetches one page of the collection with a consistent read.
    fn list(&self, request: ListRequest) -> BoxFuture<'_, Result<ListPage<K>>>;

    /// Opens a watch; the stream yields its events as they arrive.
    fn watch(&self, request: WatchRequest) -> BoxFuture<'_, Result<EventStream<K>>>;
}
