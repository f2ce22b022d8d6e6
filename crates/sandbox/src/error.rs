//! Errors: [`Error`] for starting and running the sandbox, [`ApiError`] for
//! one API request, turned into a Kubernetes `Status` at the HTTP edge.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use crate::body::{self, Body};

/// Why the sandbox could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Generating the CA or serving certificate failed.
    #[error("cannot generate TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS configuration was rejected.
    #[error("cannot configure TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Creating the state directory failed.
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the kubeconfig failed.
    #[error("cannot write kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configured Kubernetes version is not `MAJOR.MINOR`.
    #[error("invalid kube_version {0:?}: expected MAJOR.MINOR such as \"1.32\"")]
    KubeVersion(String),
    /// Waiting for a signal failed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

/// One field problem inside an `Invalid` (422) answer.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    /// Machine reason such as `FieldValueRequired`.
    pub(crate) reason: &'static str,
    /// Human message.
    pub(crate) message: String,
    /// The JSON path of the field, such as `metadata.name`.
    pub(crate) field: String,
}

/// A failed API request, rendered as the `Status` a real apiserver sends.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 401: missing or wrong bearer token.
    #[error("Unauthorized")]
    Unauthorized,
    /// 404 for a named object.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// Plural resource name (`pods`).
        resource: String,
        /// Object name.
        name: String,
    },
    /// 404 for a path that names nothing we serve.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// 409 on create of an existing name.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Plural resource name.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 on an update with a stale resourceVersion.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again")]
    Conflict {
        /// Plural resource name.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 400 with a free message.
    #[error("{0}")]
    BadRequest(String),
    /// 422 with field causes.
    #[error("{kind} \"{name}\" is invalid: {}", causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>().join(", "))]
    Invalid {
        /// Object kind (`Pod`).
        kind: String,
        /// Object name.
        name: String,
        /// What is wrong.
        causes: Vec<Cause>,
    },
    /// 403 with a message.
    #[error("{0}")]
    Forbidden(String),
    /// 405.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 406: nothing we can produce matches Accept.
    #[error("only the following media types are accepted: application/json")]
    NotAcceptable,
    /// 413: request body over the limit.
    #[error("the request is too large (limit {limit} bytes)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415: unsupported Content-Type (e.g. a patch type we do not implement).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {0}"
    )]
    UnsupportedMediaType(String),
    /// 410: resource version too old (compacted).
    #[error("{0}")]
    Expired(String),
    /// 500.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// Any status code, injected by the `watch-error` fault.
    #[error("injected failure with HTTP status {0}")]
    Injected(u16),
}

impl ApiError {
    /// The HTTP status code.
    pub(crate) fn code(&self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::NotFound { .. } | Self::NoRoute => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::BadRequest(_) => 400,
            Self::Invalid { .. } => 422,
            Self::Forbidden(_) => 403,
            Self::MethodNotAllowed => 405,
            Self::NotAcceptable => 406,
            Self::TooLarge { .. } => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Expired(_) => 410,
            Self::Internal(_) => 500,
            Self::Injected(code) => *code,
        }
    }

    /// The `Status.reason`.
    fn reason(&self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::NotFound { .. } | Self::NoRoute => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::BadRequest(_) => "BadRequest",
            Self::Invalid { .. } => "Invalid",
            Self::Forbidden(_) => "Forbidden",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable => "NotAcceptable",
            Self::TooLarge { .. } => "RequestEntityTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Expired(_) => "Expired",
            Self::Internal(_) => "InternalError",
            Self::Injected(code) => match code {
                429 => "TooManyRequests",
                410 => "Expired",
                500 => "InternalError",
                503 => "ServiceUnavailable",
                504 => "Timeout",
                _ => "Unknown",
            },
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name } => Some(json!({"name": name, "kind": resource})),
            Self::Invalid { kind, name, causes } => Some(json!({
                "name": name,
                "kind": kind,
                "causes": causes.iter().map(|c| json!({
                    "reason": c.reason, "message": c.message, "field": c.field,
                })).collect::<Vec<_>>(),
            })),
            Self::Injected(429) => Some(json!({"retryAfterSeconds": 1})),
            _ => None,
        }
    }

    /// The `metav1.Status` object.
    pub(crate) fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(details) = self.details() {
            status["details"] = details;
        }
        status
    }

    /// The HTTP response carrying the Status.
    pub(crate) fn into_response(self) -> Response<Body> {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = Response::new(body::full(self.status().to_string()));
        *resp.status_mut() = code;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if code == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
