//! Port-forward: listeners on local ports, one supervised session to the
//! pod carrying every connection, reconnects with backoff, and target
//! re-resolution when the pod goes away.
//!
//! ```no_run
//! # async fn demo(client: podlink_client::Client) -> Result<(), podlink_client::portforward::ForwardError> {
//! use podlink_client::portforward::{PortForwarder, Target};
//! let forwarder = PortForwarder::builder(client, "svc/web".parse::<Target>()?)
//!     .port("8080:80".parse()?)
//!     .start()
//!     .await?;
//! for forwarding in forwarder.forwardings() {
//!     println!("{forwarding}");
//! }
//! let stream = forwarder.connect(80).await?; // AsyncRead + AsyncWrite
//! # drop(stream);
//! forwarder.shutdown().await;
//! # Ok(()) }
//! ```

mod backoff;
mod error;
mod forwarder;
mod legacy;
mod listen;
mod pair;
mod session;
mod spec;
mod stats;
mod stream;
mod target;
mod tunnel;

pub use error::ForwardError;
pub use forwarder::{
    Forwarding, PortForwardBuilder, PortForwarder, DEFAULT_PING_INTERVAL, DEFAULT_PONG_TIMEOUT,
};
pub use session::Protocol;
pub use spec::{LocalPort, PortSpec, RemotePort};
pub use stats::Stats;
pub use stream::PodStream;
pub use target::{ResolvedPort, ResolvedTarget, Target};
