//! The informer: a reflector driven by its own task, calling handlers for
//! each change and reporting its termination exactly once.

use std::sync::Arc;

use futures::StreamExt;
use kube::Resource;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::config::WatchConfig;
use super::health::Health;
use super::reflector::reflector;
use super::source::Source;
use super::store::{Change, Store};
use crate::error::Error;

/// Why an informer ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Termination {
    /// The owner stopped it (or dropped the [`Informer`]).
    Stopped,
    /// A fatal error ended it (see [`WatchConfig::stop_on_unauthorized`]).
    Failed(Error),
}

type ObjectHandler<K> = Box<dyn FnMut(&Arc<K>) + Send>;
type UpdateHandler<K> = Box<dyn FnMut(&Arc<K>, &Arc<K>) + Send>;
type TerminationHandler = Box<dyn FnOnce(&Termination) + Send>;

/// Builds an [`Informer`]: the handlers it calls and how it watches.
#[must_use]
pub struct InformerBuilder<K> {
    config: WatchConfig,
    on_add: Option<ObjectHandler<K>>,
    on_update: Option<UpdateHandler<K>>,
    on_delete: Option<ObjectHandler<K>>,
    on_terminate: Option<TerminationHandler>,
}

impl<K> std::fmt::Debug for InformerBuilder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InformerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K> Default for InformerBuilder<K> {
    fn default() -> Self {
        Self::new(WatchConfig::default())
    }
}

impl<K> InformerBuilder<K> {
    /// An informer watching with `config` and no handlers yet.
    pub fn new(config: WatchConfig) -> Self {
        Self {
            config,
            on_add: None,
            on_update: None,
            on_delete: None,
            on_terminate: None,
        }
    }

    /// Called for each object that appears.
    pub fn on_add(mut self, handler: impl FnMut(&Arc<K>) + Send + 'static) -> Self {
        self.on_add = Some(Box::new(handler));
        self
    }

    /// Called with the old and new state of each object that changes.
    pub fn on_update(mut self, handler: impl FnMut(&Arc<K>, &Arc<K>) + Send + 'static) -> Self {
        self.on_update = Some(Box::new(handler));
        self
    }

    /// Called with the last state of each object that goes away.
    pub fn on_delete(mut self, handler: impl FnMut(&Arc<K>) + Send + 'static) -> Self {
        self.on_delete = Some(Box::new(handler));
        self
    }

    /// Called exactly once, when the informer ends, with the reason.
    pub fn on_terminate(mut self, handler: impl FnOnce(&Termination) + Send + 'static) -> Self {
        self.on_terminate = Some(Box::new(handler));
        self
    }
}

impl<K> InformerBuilder<K>
where
    K: Resource + Send + Sync + 'static,
{
    /// Starts the informer's task on the current tokio runtime.
    pub fn start<S: Source<K>>(self, source: S) -> Informer<K> {
        let (store, mut changes) = reflector(source, self.config);
        let health = changes.health();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let Self {
            mut on_add,
            mut on_update,
            mut on_delete,
            on_terminate,
            ..
        } = self;
        let task = tokio::spawn(async move {
            let termination = loop {
                let next = tokio::select! {
                    // A send and a dropped sender both mean stop.
                    _ = &mut stop_rx => break Termination::Stopped,
                    next = changes.next() => next,
                };
                match next {
                    Some(Ok(Change::Added(obj))) => call(&mut on_add, |h| h(&obj)),
                    Some(Ok(Change::Modified { old, new })) => {
                        call(&mut on_update, |h| h(&old, &new))
                    }
                    Some(Ok(Change::Deleted(obj))) => call(&mut on_delete, |h| h(&obj)),
                    Some(Err(err)) => break Termination::Failed(err),
                    // Not reachable with the retry layer below, but never
                    // end without a reason.
                    None => {
                        break Termination::Failed(Error::ConnectionLost(
                            "watch stream ended".into(),
                        ))
                    }
                }
            };
            drop(changes);
            if let Some(handler) = on_terminate {
                handler(&termination);
            }
            termination
        });
        Informer {
            store,
            health,
            stop: Some(stop_tx),
            task,
        }
    }
}

fn call<H: ?Sized>(handler: &mut Option<Box<H>>, f: impl FnOnce(&mut H)) {
    if let Some(handler) = handler.as_deref_mut() {
        f(handler);
    }
}

/// A running informer. Dropping it stops the watch (the termination handler
/// still fires, from the informer's task).
#[derive(Debug)]
pub struct Informer<K> {
    store: Store<K>,
    health: Health,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Termination>,
}

impl<K> Informer<K> {
    /// The store the informer keeps in sync.
    #[must_use]
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// The informer's health figures.
    #[must_use]
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Whether the informer has ended (stopped or failed).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the informer and returns why it ended: [`Termination::Stopped`],
    /// or the fatal error if it had already failed.
    pub async fn stop(mut self) -> Termination {
        if let Some(stop) = self.stop.take() {
            // The task may have ended already; its termination is the answer.
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(termination) => termination,
            Err(join) => Termination::Failed(Error::ConnectionLost(format!(
                "informer task ended abnormally: {join}"
            ))),
        }
    }
}
