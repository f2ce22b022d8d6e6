//! An embedded Kubernetes API server whose pods are local processes.
//!
//! # IO contract
//! [`Sandbox::start`] binds one TCP port (loopback by default) and serves
//! HTTPS (HTTP/1.1 and HTTP/2, with upgrades) with a CA and certificate
//! generated at start, behind a random bearer token; it writes a 0600
//! kubeconfig for kubectl. Pods are host processes started in per-pod
//! folders under the state directory (and, as root, in per-pod network
//! namespaces). Everything it starts ends at [`Sandbox::shutdown`] or when
//! the [`Sandbox`] is dropped. No other network access, no global state:
//! several sandboxes can run in one process.
//!
//! # What it serves
//! Discovery (legacy and aggregated), namespaces, pods, services and
//! deployments with create/get/list/watch/update/patch/delete, selectors,
//! paging, Table output, a watch cache with resourceVersion semantics,
//! pod logs, the deployment scale subresource, and the test hooks under
//! `/sandbox/v1/` (`processes`, `faults`). exec, attach and port-forward
//! live in the `streaming` module.
//!
//! # Pod addresses
//! `status.podIP` is always `127.0.0.1`, the address a pod's processes see
//! themselves on; with network namespaces it is each pod's own loopback
//! (not routable between pods), without them it is the host's.

mod admission;
mod api;
mod body;
mod config;
mod conn;
mod controller;
mod discovery;
mod error;
mod faults;
#[doc(hidden)]
pub mod fuzzing;
mod kubeconfig;
mod media;
mod meta;
mod patch;
mod pods;
mod processes;
mod pty;
mod query;
mod resource;
mod router;
mod sandbox;
mod selector;
mod server;
mod state;
mod store;
mod streaming;
mod sys;
mod table;
mod tls;

pub use config::SandboxConfig;
pub use error::Error;
pub use faults::{Fault, InvalidFault};
pub use kubeconfig::CONTEXT;
pub use processes::{ProcessInfo, ProcessKind};
pub use sandbox::{run_until_signal, Sandbox};
