//! Sans-IO Kubernetes streaming protocols.
//!
//! # IO contract
//!
//! Nothing in this crate performs IO, reads a clock, draws randomness or
//! spawns tasks, and no async runtime is in its dependency tree (a test runs
//! `cargo tree` to keep it so). Bytes go in, typed events come out; time
//! enters only as [`std::time::Instant`] arguments. The client's drivers,
//! the sandbox's servers, the tests and the fuzzers all share this one
//! implementation.
//!
//! - **Codecs** are stateless: `decode` returns `Ok(None)` when it needs more
//!   bytes and consumes nothing then; `encode` appends to a caller's buffer.
//! - **Machines** ([`spdy::Connection`], [`watch::WatchDecoder`],
//!   [`channel::ResizeDecoder`]) take input through `handle_input`, commands
//!   as plain verbs, and hand out results through `poll_*`.
//! - **Errors** are [`DecodeError`] (malformed bytes), [`ProtocolError`] (the
//!   peer broke a state machine) and [`UsageError`] (caller misuse).
//!
//! # Modules
//!
//! - [`channel`]: remotecommand channel protocols (`channel.k8s.io` … v5,
//!   base64 forms), negotiation, WebSocket messages, v5 close, resize.
//! - [`status`]: the error channel's bytes ↔ [`status::ExitStatus`].
//! - [`spdy`]: SPDY/3 frames, zlib header blocks and the session machine.
//! - [`portforward`]: port-forward stream headers and the legacy WebSocket form.
//! - [`watch`]: incremental decoder for watch event streams.

pub mod channel;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod json_stream;
pub mod portforward;
pub mod spdy;
pub mod status;
pub mod watch;

pub use error::{DecodeError, Initiator, ProtocolError, ProtocolErrorKind, UsageError};
