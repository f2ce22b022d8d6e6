//! podlink's client library: exec, attach, port-forward and watch over real
//! connections, driving the sans-IO machines of `podlink-proto` with tokio.
//!
//! IO contract: every streaming session runs on its own new HTTP/1.1
//! connection (see [`upgrade`]), driven by one task that owns the socket; the
//! handles given to callers talk to that task over channels and pipes.
//!
//! - [`Client`]: the cluster (kubeconfig, context, namespace, in-cluster).
//! - [`exec`]: exec and attach sessions, exit statuses, cancellation.
//! - [`portforward`]: port-forward listeners, sessions and reconnects.
//! - [`spdy`]: the generic SPDY/3.1 session driver.
//! - [`upgrade`]: the WebSocket / SPDY upgrade connector.
//! - [`watch`]: list-watch, reflector store and informers that never silently stop.

mod client;
pub mod cp;
pub mod doctor;
mod error;
pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
mod keepalive;
pub mod portforward;
pub mod spdy;
pub mod upgrade;
pub mod watch;

pub use client::{Client, ClientOptions};
pub use error::{one_line, BoxError, Error, Result};
pub use keepalive::KeepAlive;
