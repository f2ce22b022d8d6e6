//! Authentication and routing of every request.

use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::body::{self, Body};
use crate::conn::ConnState;
use crate::discovery;
use crate::error::ApiError;
use crate::faults::Fault;
use crate::media;
use crate::state::State;

/// The pod subresources served by [`crate::streaming::serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subresource {
    /// `pods/{name}/exec`.
    Exec,
    /// `pods/{name}/attach`.
    Attach,
    /// `pods/{name}/portforward`.
    PortForward,
}

impl Subresource {
    /// The URL segment.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Attach => "attach",
            Self::PortForward => "portforward",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "exec" => Some(Self::Exec),
            "attach" => Some(Self::Attach),
            "portforward" => Some(Self::PortForward),
            _ => None,
        }
    }
}

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

fn authorized(state: &State, req: &Request<Incoming>) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some(token) = value
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case(b"bearer "))
        .and(value.get(7..))
    else {
        return false;
    };
    constant_time_eq(token, state.token.as_bytes())
}

fn text(s: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(s));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers().contains_key(header::UPGRADE)
}

/// Handles one request; never fails (errors become Status responses).
pub(crate) async fn route(
    state: Arc<State>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let result = dispatch(state, conn, req).await;
    let resp = result.unwrap_or_else(ApiError::into_response);
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

async fn dispatch(
    state: Arc<State>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if !authorized(&state, &req) {
        return Err(ApiError::Unauthorized);
    }
    if req.uri().query().map_or(0, str::len) > crate::query::MAX_QUERY {
        return Err(ApiError::BadRequest("the query string is too long".into()));
    }
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = req.method().clone();
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    match seg.as_slice() {
        ["version"] if get => Ok(discovery::version(&state.version)),
        ["healthz" | "livez" | "readyz", ..] if get => Ok(text("ok")),
        ["api"] if get => Ok(discovery::root(
            true,
            media::negotiate_discovery(accept.as_deref()),
        )),
        ["apis"] if get => Ok(discovery::root(
            false,
            media::negotiate_discovery(accept.as_deref()),
        )),
        ["api", "v1"] if get => Ok(discovery::resource_list("")),
        ["apis", "apps"] if get => Ok(discovery::apps()),
        ["apis", "apps", "v1"] if get => Ok(discovery::resource_list("apps")),
        ["openapi", "v3"] if get => Ok(discovery::openapi_index()),
        ["openapi", "v3", "api", "v1"] if get => Ok(discovery::openapi_group("")),
        ["openapi", "v3", "apis", "apps", "v1"] if get => Ok(discovery::openapi_group("apps")),
        ["sandbox", "v1", "processes"] if get => {
            Ok(discovery::json(&json!({"items": state.processes.list()})))
        }
        ["sandbox", "v1", "faults"] if method == Method::POST => {
            let body = crate::api::read_json(req).await?;
            let fault: Fault = serde_json::from_value(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid fault: {e}")))?;
            fault
                .validate()
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            state.inject(&fault);
            Ok(discovery::json(
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            ))
        }
        ["api", "v1", "namespaces", ns, "pods", pod, sub] if Subresource::parse(sub).is_some() => {
            let sub = Subresource::parse(sub).ok_or(ApiError::NoRoute)?;
            if method != Method::GET && method != Method::POST {
                return Err(ApiError::MethodNotAllowed);
            }
            if is_upgrade(&req) {
                conn.mark_upgraded(&state.conns);
            }
            tracing::debug!(namespace = %ns, pod = %pod, sub = sub.as_str(), "streaming request");
            let (ns, pod) = ((*ns).to_owned(), (*pod).to_owned());
            Ok(crate::streaming::serve(state, req, ns, pod, sub).await)
        }
        ["api", "v1", rest @ ..] if !rest.is_empty() => {
            crate::api::serve(state, conn, req, "", &segs[2..]).await
        }
        ["apis", "apps", "v1", rest @ ..] if !rest.is_empty() => {
            crate::api::serve(state, conn, req, "apps", &segs[3..]).await
        }
        _ => Err(ApiError::NoRoute),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
