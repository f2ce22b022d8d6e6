//! The client layer's one error type. Each variant names the step that
//! failed, so a caller (and the CLI's one-line message) can tell a refused
//! upgrade from a lost connection from an API answer.

use std::time::Duration;

use kube::core::Status;

/// Boxed error from a layer we do not own (kube's auth middleware).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Result` with the client [`enum@Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client library.
///
/// A remote command that exits non-zero is not an error: it is an
/// [`ExitStatus`](crate::exec::ExitStatus) value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading the kubeconfig (file, context, user) failed.
    #[error("loading kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),

    /// No kubeconfig and no in-cluster service account were found.
    #[error("no cluster configuration found: {0}")]
    InferConfig(#[source] kube::config::InferConfigError),

    /// Building the TLS or auth settings from the configuration failed.
    #[error("preparing the connection settings: {0}")]
    Settings(#[source] kube::Error),

    /// An ordinary API request (not an upgrade) failed in kube.
    #[error(transparent)]
    Kube(kube::Error),

    /// The cluster answered an API request with a failure `Status`.
    #[error("{}", .0.message)]
    Api(Box<Status>),

    /// Opening the TCP or TLS connection to the cluster failed.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The address we dialled.
        url: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },

    /// The auth layer (token refresh, exec plugin) refused to sign the request.
    #[error("authenticating: {0}")]
    Auth(#[source] BoxError),

    /// The HTTP exchange that carries the upgrade failed before any answer.
    #[error("sending the upgrade request: {0}")]
    Http(#[source] hyper::Error),

    /// The server answered the upgrade with something other than 101.
    /// This is an upgrade refusal: falling back to another transport is allowed.
    #[error("upgrade refused: {}", refusal_text(*.code, .status.as_deref(), .body))]
    Upgrade {
        /// HTTP status of the answer.
        code: u16,
        /// The decoded `Status` body, when the answer carried one.
        status: Option<Box<Status>>,
        /// The body as text (trimmed, bounded) when it was not a `Status`.
        body: String,
    },

    /// The 101 answer named no subprotocol, or one we did not offer.
    /// Also an upgrade refusal.
    #[error("no agreed protocol: offered {offered:?}, server chose {chosen:?}")]
    Negotiate {
        /// What we offered, in order.
        offered: Vec<String>,
        /// What the server answered, if anything.
        chosen: Option<String>,
    },

    /// The WebSocket layer failed after the upgrade.
    #[error("websocket: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),

    /// The peer broke the streaming protocol.
    #[error("protocol error: {0}")]
    Protocol(#[source] BoxError),

    /// The peer answered no ping within the pong deadline.
    #[error("peer unresponsive: no answer to keepalive pings for {0:?}")]
    PeerDead(Duration),

    /// The connection ended before the remote command reported its end.
    #[error("connection lost: {0}")]
    ConnectionLost(String),

    /// The request the caller built is not valid (empty command, bad name).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A local read or write failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// The server asked us to slow down (HTTP 429); retry no sooner than
    /// `retry_after` when it said.
    #[error("throttled by the server: {}", .status.message)]
    Throttled {
        /// The `Status` body (synthesised when the answer had none).
        status: Box<Status>,
        /// The `Retry-After` header, when present.
        retry_after: Option<Duration>,
    },

    /// Reading a list or watch response body failed midway.
    #[error("reading the response body: {0}")]
    ReadBody(#[source] kube::Error),

    /// A listed or watched object (or the list around it) did not decode.
    #[error("decoding {what}: {source}")]
    DecodeObject {
        /// What was being decoded (`pod list`, `watch event object`).
        what: &'static str,
        /// The JSON error, with its position.
        #[source]
        source: serde_json::Error,
    },

    /// A watch delivered nothing, bookmarks included, for this long: the
    /// connection is presumed dead and the watch restarted.
    #[error("watch stalled: nothing received for {0:?}")]
    WatchStalled(Duration),

    /// A response body grew past the limit set for it.
    #[error("response body larger than {0} bytes")]
    ResponseTooLarge(usize),

    /// A list call (body included) took longer than the watcher allows.
    #[error("list timed out after {0:?}")]
    ListTimeout(Duration),

    /// The server ended a watch at once, without a single event.
    #[error("watch closed by the server before any event")]
    WatchClosedEmpty,

    /// A watch response body was not a valid stream of watch events.
    #[error("decoding the watch stream: {0}")]
    WatchDecode(#[source] podlink_proto::DecodeError),
}

impl Error {
    /// True when the server refused the upgrade (non-101 answer, or no agreed
    /// subprotocol): the only case where falling back from WebSocket to SPDY
    /// is allowed (PROTOCOLS.md §7).
    #[must_use]
    pub fn is_upgrade_refusal(&self) -> bool {
        matches!(self, Self::Upgrade { .. } | Self::Negotiate { .. })
    }

    /// The API `Status` carried by this error, if any.
    #[must_use]
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Api(status) => Some(status),
            Self::Upgrade { status, .. } => status.as_deref(),
            Self::Kube(kube::Error::Api(status)) => Some(status),
            _ => None,
        }
    }
}

/// A request that got no HTTP answer, with the address it went to.
#[derive(Debug, thiserror::Error)]
#[error("request to the API server at {url} failed")]
pub(crate) struct RequestFailed {
    /// The cluster URL.
    pub(crate) url: String,
    /// What went wrong below (connect, TLS, auth, timeout).
    #[source]
    pub(crate) source: BoxError,
}

impl From<kube::Error> for Error {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => Self::Api(status),
            other => Self::Kube(other),
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::WebSocket(Box::new(err))
    }
}

fn refusal_text(code: u16, status: Option<&Status>, body: &str) -> String {
    match status {
        Some(status) if !status.message.is_empty() => status.message.clone(),
        _ if !body.is_empty() => format!("HTTP {code}: {body}"),
        _ => format!("HTTP {code}"),
    }
}

/// An error and its causes on one line, without repeating a cause whose
/// text its parent already includes (many errors print their source too).
///
/// ```
/// let io = std::io::Error::other("connection refused");
/// assert_eq!(podlink_client::one_line(&io), "connection refused");
/// ```
#[must_use]
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(error);
    while let Some(current) = cause {
        let text = current.to_string();
        if !text.is_empty() && !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = current.source();
    }
    line.replace('\n', " ")
}
