//! The reflector: the machine, the retry layer and the store stacked into
//! one stream of reconciled changes.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::{Stream, StreamExt};
use kube::Resource;

use super::config::WatchConfig;
use super::health::Health;
use super::machine::{raw_events, Event};
use super::retry::retrying;
use super::source::Source;
use super::store::{Change, Store, Writer};
use crate::error::Result;

type Events<K> = Pin<Box<dyn Stream<Item = Result<Event<K>>> + Send>>;

/// The changes of a watched collection, reconciled against a [`Store`].
///
/// It never ends on its own: every failure is retried (see
/// [`WatchConfig`]), except a fatal one (the resource does not exist, or
/// 401/403 with [`WatchConfig::stop_on_unauthorized`]), which is yielded
/// once as the last item. Dropping it stops the watch; the store then keeps
/// its last state and [`Store::synced`] no longer waits.
pub struct Changes<K> {
    events: Events<K>,
    /// `None` once the stream has ended.
    writer: Option<Writer<K>>,
    queue: VecDeque<Change<K>>,
    health: Health,
}

impl<K> std::fmt::Debug for Changes<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("queued", &self.queue.len())
            .field("ended", &self.writer.is_none())
            .finish_non_exhaustive()
    }
}

/// Starts watching `source`: returns the store it keeps and the stream of
/// changes that drives it (nothing happens until the stream is polled).
pub fn reflector<K, S>(source: S, config: WatchConfig) -> (Store<K>, Changes<K>)
where
    K: Resource + Send + Sync + 'static,
    S: Source<K>,
{
    let health = Health::default();
    let raw = Box::pin(raw_events(source, config.clone()));
    let events = Box::pin(retrying(
        raw,
        config.backoff,
        config.stop_on_unauthorized,
        health.clone(),
    ));
    let (writer, store) = Writer::new();
    let changes = Changes {
        events,
        writer: Some(writer),
        queue: VecDeque::new(),
        health,
    };
    (store, changes)
}

impl<K> Changes<K> {
    /// The watcher's health figures (a shared handle that stays current).
    #[must_use]
    pub fn health(&self) -> Health {
        self.health.clone()
    }
}

impl<K: Resource> Stream for Changes<K> {
    type Item = Result<Change<K>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(change) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(change)));
            }
            let Some(writer) = this.writer.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(this.events.poll_next_unpin(cx)) {
                Some(Ok(event)) => {
                    match &event {
                        Event::Init => {
                            if this.health.record_list() > 0 {
                                tracing::info!("re-listing");
                            }
                        }
                        Event::InitDone(_) => this.health.record_sync(),
                        Event::Apply(_) | Event::Delete(_) => this.health.record_event(),
                        Event::InitPage(_) => {}
                    }
                    writer.apply(event, &mut this.queue);
                }
                Some(Err(err)) => {
                    this.writer = None;
                    return Poll::Ready(Some(Err(err)));
                }
                None => {
                    this.writer = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}
