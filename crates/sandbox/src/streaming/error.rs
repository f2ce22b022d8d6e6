//! Errors of the streaming endpoints: refusals before the upgrade become an
//! HTTP `Status`; failures after it end one session and are logged.

use crate::error::ApiError;

/// Why a streaming request or session failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// The request itself is wrong (query, container, upgrade headers).
    #[error("{0}")]
    BadRequest(String),
    /// Starting the process failed (the runtime's exec error).
    #[error("Internal error occurred: error executing command in container: {0}")]
    Spawn(#[source] std::io::Error),
    /// The connection failed below the protocol.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer failed (bad frame, size limit, closed).
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The client broke the channel protocol.
    #[error("channel protocol: {0}")]
    Channel(#[from] podlink_proto::DecodeError),
}

impl StreamError {
    /// The API error for a refusal answered before any upgrade.
    pub(crate) fn into_api_error(self) -> ApiError {
        match self {
            Self::BadRequest(message) => ApiError::BadRequest(message),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
