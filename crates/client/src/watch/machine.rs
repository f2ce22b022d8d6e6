//! The list-watch state machine: a private [`State`] enum with one transition
//! per arm, driven as a `Stream` of raw [`Event`]s and errors.
//!
//! ```text
//!           Init                      InitPage              InitDone
//!   Empty ────────► Paging{continue} ──────────► Paging ──────────────► Listed{rv}
//!     │  ▲                                                                │ open watch
//!     │  │ 410 Expired, or a streaming list that broke                    ▼
//!     │  └───────────────────────────────────────────────────────── Watching{rv}
//!     │ Init (streaming list)          InitDone (initial-events-end)      ▲ │ Apply / Delete,
//!     └────────► Streaming{buffer} ───────────────────────────────────────┘ │ bookmarks move rv
//!                                                                           │ end, error, stall
//!                                                      Listed{rv} ◄─────────┘ (re-watch from rv)
//! ```
//!
//! Every error is yielded and the machine stays resumable: polling again
//! retries from the state the error left. Waiting between attempts is the
//! retry layer's business ([`super::retry`]); this layer never sleeps.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Resource;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::config::{InitialList, WatchConfig};
use super::retry::{is_expired, rejects_streaming_list};
use super::source::{EventStream, ListRequest, Source, SourceEvent, WatchRequest};
use crate::error::{Error, Result};

/// What the machine tells the store layer.
#[derive(Debug)]
pub(crate) enum Event<K> {
    /// A new snapshot begins; the current store stays visible until it ends.
    Init,
    /// Part of the snapshot.
    InitPage(Vec<K>),
    /// The last part of the snapshot: it is complete.
    InitDone(Vec<K>),
    /// An object was added or changed.
    Apply(K),
    /// An object was deleted (its last state).
    Delete(K),
}

/// How many objects a streaming list hands over at once.
const STREAMING_BATCH: usize = 500;

/// Streaming lists that ended or stalled in a row without their
/// initial-events-end bookmark, after which `Auto` gives up on them.
const STREAMING_ATTEMPTS: u32 = 3;

/// A watch that ends this soon without any event counts as a failure, so
/// that a server closing every watch at once cannot make us spin.
const SHORT_WATCH: Duration = Duration::from_secs(1);

enum State<K> {
    /// No snapshot in progress: start one.
    Empty,
    /// Listing page by page; `None` asks for the first page.
    Paging { continue_token: Option<String> },
    /// Snapshot (or a previous watch) done up to `resource_version`: open a watch.
    Listed { resource_version: String },
    /// Receiving a streaming list's initial events.
    Streaming {
        stream: EventStream<K>,
        buffer: Vec<K>,
    },
    /// Receiving changes after `resource_version`.
    Watching {
        resource_version: String,
        stream: EventStream<K>,
        opened: Instant,
        events: u64,
    },
}

type Step<K> = (Option<Result<Event<K>>>, State<K>);

struct Machine<S> {
    source: S,
    config: WatchConfig,
    /// Streaming lists still worth trying (cleared on a rejection in `Auto`).
    streaming: bool,
    /// Streaming lists that ended or stalled in a row.
    streaming_failures: u32,
    rng: SmallRng,
}

/// The raw list-watch stream: never ends on its own, yields every failure.
pub(crate) fn raw_events<K, S>(
    source: S,
    config: WatchConfig,
) -> impl Stream<Item = Result<Event<K>>> + Send
where
    K: Resource + Send + 'static,
    S: Source<K>,
{
    let machine = Machine {
        streaming: config.initial != InitialList::Paged,
        source,
        config,
        streaming_failures: 0,
        rng: SmallRng::from_os_rng(),
    };
    futures::stream::unfold(
        (machine, State::Empty),
        |(mut machine, mut state)| async move {
            loop {
                let (output, next) = machine.step(state).await;
                state = next;
                if let Some(output) = output {
                    return Some((output, (machine, state)));
                }
            }
        },
    )
}

impl<S> Machine<S> {
    async fn step<K>(&mut self, state: State<K>) -> Step<K>
    where
        K: Resource + Send + 'static,
        S: Source<K>,
    {
        match state {
            State::Empty if self.streaming => self.start_streaming().await,
            State::Empty => (
                Some(Ok(Event::Init)),
                State::Paging {
                    continue_token: None,
                },
            ),
            State::Paging { continue_token } => self.list_page(continue_token).await,
            State::Listed { resource_version } => self.open_watch(resource_version).await,
            State::Streaming { stream, buffer } => self.stream_initial(stream, buffer).await,
            State::Watching {
                resource_version,
                stream,
                opened,
                events,
            } => {
                self.watch_next(resource_version, stream, opened, events)
                    .await
            }
        }
    }

    async fn start_streaming<K>(&mut self) -> Step<K>
    where
        K: Resource + Send + 'static,
        S: Source<K>,
    {
        let request = WatchRequest {
            resource_version: None,
            bookmarks: true,
            send_initial_events: true,
            timeout_seconds: Some(self.watch_timeout()),
        };
        match self.source.watch(request).await {
            Ok(stream) => (
                Some(Ok(Event::Init)),
                State::Streaming {
                    stream,
                    buffer: Vec::new(),
                },
            ),
            Err(err)
                if self.config.initial == InitialList::Auto && rejects_streaming_list(&err) =>
            {
                tracing::info!(error = %err, "server rejects streaming lists; using paged lists");
                self.streaming = false;
                (None, State::Empty)
            }
            Err(err) => (Some(Err(err)), State::Empty),
        }
    }

    async fn list_page<K>(&mut self, continue_token: Option<String>) -> Step<K>
    where
        K: Resource + Send + 'static,
        S: Source<K>,
    {
        let request = ListRequest {
            limit: Some(self.config.page_size),
            continue_token: continue_token.clone(),
        };
        let page =
            match tokio::time::timeout(self.config.list_timeout, self.source.list(request)).await {
                Ok(Ok(page)) => page,
                Ok(Err(err)) if is_expired(&err) => return (Some(Err(err)), State::Empty),
                Ok(Err(err)) => return (Some(Err(err)), State::Paging { continue_token }),
                Err(_) => {
                    let err = Error::ListTimeout(self.config.list_timeout);
                    return (Some(Err(err)), State::Paging { continue_token });
                }
            };
        match page.continue_token {
            Some(token) => (
                Some(Ok(Event::InitPage(page.items))),
                State::Paging {
                    continue_token: Some(token),
                },
            ),
            None => (
                Some(Ok(Event::InitDone(page.items))),
                State::Listed {
                    resource_version: page.resource_version,
                },
            ),
        }
    }

    async fn open_watch<K>(&mut self, resource_version: String) -> Step<K>
    where
        K: Resource + Send + 'static,
        S: Source<K>,
    {
        let request = WatchRequest {
            resource_version: Some(resource_version.clone()),
            bookmarks: true,
            send_initial_events: false,
            timeout_seconds: Some(self.watch_timeout()),
        };
        match self.source.watch(request).await {
            Ok(stream) => (
                None,
                State::Watching {
                    resource_version,
                    stream,
                    opened: Instant::now(),
                    events: 0,
                },
            ),
            Err(err) if is_expired(&err) => (Some(Err(err)), State::Empty),
            Err(err) => (Some(Err(err)), State::Listed { resource_version }),
        }
    }

    async fn stream_initial<K>(&mut self, mut stream: EventStream<K>, mut buffer: Vec<K>) -> Step<K>
    where
        K: Resource + Send + 'static,
        S: Source<K>,
    {
        let failed = match tokio::time::timeout(self.config.stall_timeout, stream.next()).await {
            Ok(Some(Ok(SourceEvent::Added(obj) | SourceEvent::Modified(obj)))) => {
                buffer.push(obj);
                if buffer.len() < STREAMING_BATCH {
                    return (None, State::Streaming { stream, buffer });
                }
                let batch = std::mem::replace(&mut buffer, Vec::with_capacity(STREAMING_BATCH));
                return (
                    Some(Ok(Event::InitPage(batch))),
                    State::Streaming { stream, buffer },
                );
            }
            Ok(Some(Ok(SourceEvent::Bookmark {
                resource_version,
                initial_events_end: true,
            }))) => {
                self.streaming_failures = 0;
                let watching = State::Watching {
                    resource_version,
                    stream,
                    opened: Instant::now(),
                    events: 1,
                };
                return (Some(Ok(Event::InitDone(buffer))), watching);
            }
            // A progress bookmark before the initial-events-end one: the
            // server ignores `sendInitialEvents` and this is a plain watch.
            Ok(Some(Ok(SourceEvent::Bookmark { .. })))
                if self.config.initial == InitialList::Auto =>
            {
                tracing::info!("server ignores sendInitialEvents; using paged lists");
                self.streaming = false;
                return (None, State::Empty);
            }
            Ok(Some(Ok(SourceEvent::Bookmark { .. }))) => {
                return (None, State::Streaming { stream, buffer })
            }
            Ok(Some(Ok(SourceEvent::Deleted(_)))) => {
                Error::Protocol("DELETED event inside a streaming list's initial state".into())
            }
            Ok(Some(Ok(SourceEvent::Error(status)))) => Error::Api(status),
            Ok(Some(Err(err))) => err,
            Ok(None) => {
                self.count_silent_streaming_failure();
                Error::ConnectionLost(
                    "streaming list ended before its initial-events-end bookmark".into(),
                )
            }
            Err(_) => {
                self.count_silent_streaming_failure();
                Error::WatchStalled(self.config.stall_timeout)
            }
        };
        (Some(Err(failed)), State::Empty)
    }

    /// A streaming list that ended or went quiet without saying why: after
    /// a few in a row, `Auto` stops trying them (a server that supports
    /// neither them nor bookmarks looks like this).
    fn count_silent_streaming_failure(&mut self) {
        self.streaming_failures += 1;
        if self.config.initial == InitialList::Auto && self.streaming_failures >= STREAMING_ATTEMPTS
        {
            tracing::info!("streaming lists keep going quiet; using paged lists");
            self.streaming = false;
        }
    }

    async fn watch_next<K>(
        &mut self,
        resource_version: String,
        mut stream: EventStream<K>,
        opened: Instant,
        events: u64,
    ) -> Step<K>
    where
        K: Resource + Send + 'static,
        S: Source<K>,
    {
        let failed = match tokio::time::timeout(self.config.stall_timeout, stream.next()).await {
            Ok(Some(Ok(SourceEvent::Added(obj) | SourceEvent::Modified(obj)))) => {
                let resource_version = obj
                    .meta()
                    .resource_version
                    .clone()
                    .unwrap_or(resource_version);
                let watching = State::Watching {
                    resource_version,
                    stream,
                    opened,
                    events: events + 1,
                };
                return (Some(Ok(Event::Apply(obj))), watching);
            }
            Ok(Some(Ok(SourceEvent::Deleted(obj)))) => {
                let resource_version = obj
                    .meta()
                    .resource_version
                    .clone()
                    .unwrap_or(resource_version);
                let watching = State::Watching {
                    resource_version,
                    stream,
                    opened,
                    events: events + 1,
                };
                return (Some(Ok(Event::Delete(obj))), watching);
            }
            Ok(Some(Ok(SourceEvent::Bookmark {
                resource_version, ..
            }))) => {
                let watching = State::Watching {
                    resource_version,
                    stream,
                    opened,
                    events: events + 1,
                };
                return (None, watching);
            }
            Ok(Some(Ok(SourceEvent::Error(status)))) => Error::Api(status),
            Ok(Some(Err(err))) => err,
            Ok(None) if events > 0 || opened.elapsed() >= SHORT_WATCH => {
                tracing::debug!(%resource_version, "watch ended cleanly; watching again");
                return (None, State::Listed { resource_version });
            }
            Ok(None) => Error::WatchClosedEmpty,
            Err(_) => Error::WatchStalled(self.config.stall_timeout),
        };
        if is_expired(&failed) {
            (Some(Err(failed)), State::Empty)
        } else {
            (Some(Err(failed)), State::Listed { resource_version })
        }
    }

    /// `timeoutSeconds` for the next watch: uniform in `[min, 2×min)`.
    fn watch_timeout(&mut self) -> u32 {
        // Clamped so that doubling cannot overflow: a day is plenty.
        let min = u32::try_from(self.config.watch_timeout.as_secs())
            .unwrap_or(u32::MAX)
            .clamp(1, 86_400);
        self.rng.random_range(min..min * 2)
    }
}
