//! Watches that never silently stop: list-watch machinery in the manner of
//! client-go's reflector and informers.
//!
//! Layers, bottom up:
//! - [`Source`]: the list and watch calls ([`ApiSource`] over HTTP).
//! - the machine: a private `State` enum, one transition per arm, that turns
//!   lists, streaming lists and watches into raw snapshot and change events
//!   and yields every failure;
//! - the retry layer: backs off ([`BackoffConfig`], honouring `Retry-After`),
//!   re-lists at once on 410, and ends only on a fatal error;
//! - the store ([`Store`]): applies the events, and after every re-list
//!   reports exactly the differences ([`Change`]), never letting an object's
//!   resourceVersion go backwards;
//! - [`reflector`] stacks them into a stream of changes, and [`Informer`]
//!   runs that stream in a task with handlers and a termination callback.
//!
//! Objects are held typed (`K`), or as their JSON text ([`Compact<K>`],
//! decoded on read: several times less memory for large collections).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) {
//! use k8s_openapi::api::core::v1::Pod;
//! use podlink_client::watch::{ApiSource, InformerBuilder, WatchConfig};
//!
//! let source = ApiSource::<Pod>::namespaced(client, "default").labels("app=web");
//! let informer = InformerBuilder::new(WatchConfig::default())
//!     .on_add(|pod: &std::sync::Arc<Pod>| println!("added {:?}", pod.metadata.name))
//!     .start(source);
//! informer.store().synced().await;
//! println!("{} pods", informer.store().len());
//! informer.stop().await;
//! # }
//! ```

mod api;
mod backoff;
mod compact;
mod config;
mod health;
mod informer;
mod machine;
mod reflector;
mod retry;
mod source;
mod store;
mod wire;

pub use api::ApiSource;
pub use backoff::BackoffConfig;
pub use compact::Compact;
pub use config::{InitialList, WatchConfig};
pub use health::{Health, HealthReport};
pub use informer::{Informer, InformerBuilder, Termination};
pub use reflector::{reflector, Changes};
pub use source::{EventStream, ListPage, ListRequest, Source, SourceEvent, WatchRequest};
pub use store::{Change, ObjectKey, Store};
