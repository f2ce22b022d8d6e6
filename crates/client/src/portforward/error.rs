//! The port-forward error: what failed, for which port or target.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a port-forward, or one forwarded connection, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// A `[LOCAL:]REMOTE` argument could not be parsed.
    #[error("invalid port spec {spec:?}: {reason}")]
    InvalidPortSpec {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `TYPE/NAME` target could not be parsed.
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget {
        /// The argument as given.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An API request made to resolve the target failed.
    #[error("resolving {target}: {source}")]
    Resolve {
        /// The target being resolved.
        target: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The target object does not exist (any more).
    #[error("{what} not found")]
    TargetNotFound {
        /// Kind and name, e.g. `service "web"`.
        what: String,
    },
    /// The target's namespace does not exist (any more).
    #[error("namespace {namespace:?} not found")]
    NamespaceGone {
        /// The namespace.
        namespace: String,
    },
    /// A service or deployment has no running pod behind it (yet).
    #[error("no running pod for {target}")]
    NoRunningPod {
        /// The target.
        target: String,
    },
    /// The named pod is not in phase Running.
    #[error("pod {pod:?} is not running (phase {phase})")]
    PodNotRunning {
        /// The pod.
        pod: String,
        /// Its phase.
        phase: String,
    },
    /// A service without a selector, or a deployment with an empty one.
    #[error("{target} has no pod selector")]
    NoSelector {
        /// The target.
        target: String,
    },
    /// The service declares no such port (number or name).
    #[error("service {service:?} does not have a service port {port}")]
    UnknownServicePort {
        /// The service.
        service: String,
        /// The port as given.
        port: String,
    },
    /// No container port of that name.
    #[error("{owner} has no container port named {name:?}")]
    UnknownPortName {
        /// The port name.
        name: String,
        /// Where it was looked up.
        owner: String,
    },
    /// Port-forward carries TCP only.
    #[error("UDP protocol is not supported for port {port}")]
    UdpPort {
        /// The port.
        port: u16,
    },
    /// The server's object holds a port number outside 1–65535.
    #[error("the server's {what} {value} is not a valid port")]
    InvalidServerPort {
        /// Which field.
        what: String,
        /// The value found.
        value: i64,
    },
    /// A local listener could not be bound.
    #[error("unable to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `--address` named something that is neither an IP nor `localhost`.
    #[error("invalid listen address {address:?}: expected an IP address or localhost")]
    InvalidAddress {
        /// The address as given.
        address: String,
    },
    /// Every listener failed to bind.
    #[error("unable to listen on any of the requested addresses for port {port}")]
    NoListener {
        /// The local port.
        port: u16,
    },
    /// The session could not be opened.
    #[error("connecting to pod {pod:?}: {source}")]
    Connect {
        /// The pod.
        pod: String,
        /// The transport error.
        #[source]
        source: Box<crate::Error>,
    },
    /// The server refused or reset one forwarded connection; the message is
    /// the server's own (error stream or legacy error channel).
    #[error("an error occurred forwarding to port {port}: {message}")]
    Remote {
        /// The pod port.
        port: u16,
        /// What the server said.
        message: String,
    },
    /// The session carrying this connection ended.
    #[error("lost connection to pod: {reason}")]
    SessionLost {
        /// Why.
        reason: String,
    },
    /// The server broke the wire protocol.
    #[error("protocol error from the server: {0}")]
    Protocol(String),
    /// No session came up in time for a new connection.
    #[error("no connection to the pod within {waited:?}")]
    Unavailable {
        /// How long the connection waited.
        waited: Duration,
    },
    /// The forwarder has been shut down, or gave up.
    #[error("the port-forward has stopped")]
    Stopped,
    /// A local socket failed.
    #[error("local connection: {0}")]
    Io(#[from] io::Error),
}

impl ForwardError {
    /// Whether retrying cannot help: the forwarder gives up on these.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::TargetNotFound { .. }
            | Self::NamespaceGone { .. }
            | Self::InvalidPortSpec { .. }
            | Self::InvalidTarget { .. }
            | Self::NoSelector { .. }
            | Self::UnknownServicePort { .. }
            | Self::UnknownPortName { .. }
            | Self::UdpPort { .. }
            | Self::InvalidServerPort { .. }
            | Self::InvalidAddress { .. }
            | Self::Stopped => true,
            Self::Resolve { source, .. } => {
                matches!(&**source, kube::Error::Api(s) if is_denied(s.code))
            }
            Self::Connect { source, .. } => is_denied_upgrade(source),
            // Terminal phases: this pod will never run again.
            Self::PodNotRunning { phase, .. } => phase == "Succeeded" || phase == "Failed",
            _ => false,
        }
    }
}

/// 401 or 403: credentials or permissions, which retrying does not fix.
fn is_denied(code: u16) -> bool {
    code == 401 || code == 403
}

/// An upgrade refused for credentials or permissions. A bare 403 is also
/// how a SPDY server says it speaks none of the offered protocols, so 403
/// counts only with a `Forbidden` status.
pub(crate) fn is_denied_upgrade(err: &crate::Error) -> bool {
    match err {
        crate::Error::Upgrade { code: 401, .. } => true,
        crate::Error::Upgrade {
            code: 403,
            status: Some(status),
            ..
        } => status.reason == "Forbidden",
        _ => false,
    }
}
