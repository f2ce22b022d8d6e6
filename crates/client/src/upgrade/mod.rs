//! The upgrade connector: one NEW HTTP/1.1 connection per streaming session,
//! signed by kube's auth layer, upgraded to WebSocket or SPDY/3.1.
//!
//! The errors separate an upgrade *refusal* (a non-101 answer, or a 101 with
//! no agreed subprotocol; [`Error::is_upgrade_refusal`]) from transport
//! failures, because only a refusal allows falling back to another transport
//! (PROTOCOLS.md §7).
//!
//! ```no_run
//! # async fn demo(client: podlink_client::Client) -> podlink_client::Result<()> {
//! let path = "/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=true";
//! let (ws, protocol) = client
//!     .upgrader()
//!     .websocket(path, &["v5.channel.k8s.io"], None)
//!     .await?;
//! # drop((ws, protocol)); Ok(()) }
//! ```

mod dial;
mod proxy;
mod tunnel;

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kube::client::middleware::{AuthLayer, ExtraHeadersLayer};
use kube::client::ConfigExt;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tower::{Layer, ServiceExt};

use crate::error::{BoxError, Error, Result};
use dial::Dialer;
pub(crate) use proxy::{select as select_proxy, Loaded as LoadedProxy};

/// The byte stream left after a successful upgrade.
pub type UpgradedIo = TokioIo<hyper::upgrade::Upgraded>;

/// A client WebSocket over an upgraded connection.
pub type WebSocket = WebSocketStream<UpgradedIo>;

/// How long the server may take to answer an upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Most of a refusal's body we read (a `Status` is far smaller).
const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// The HTTP `User-Agent` of podlink's upgrade requests.
const USER_AGENT: &str = concat!("podlink/", env!("CARGO_PKG_VERSION"));

/// Opens upgraded streaming connections to one cluster. Get it from
/// [`Client::upgrader`](crate::Client::upgrader).
pub struct Upgrader {
    dialer: Dialer,
    base_path: String,
    auth: Option<AuthLayer>,
    extra_headers: ExtraHeadersLayer,
}

impl std::fmt::Debug for Upgrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrader")
            .field("authority", &self.dialer.authority())
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

impl Upgrader {
    pub(crate) fn new(config: &kube::Config) -> Result<Self> {
        Ok(Self {
            dialer: Dialer::new(config)?,
            base_path: config.cluster_url.path().trim_end_matches('/').to_owned(),
            auth: config.auth_layer().map_err(Error::Settings)?,
            extra_headers: config.extra_headers_layer().map_err(Error::Settings)?,
        })
    }

    /// Upgrade `GET path_and_query` to a WebSocket, offering `protocols` in
    /// order, and return the stream with the subprotocol the server chose.
    ///
    /// # Errors
    /// [`Error::Upgrade`] or [`Error::Negotiate`] when the server refuses
    /// (fallback allowed); [`Error::Connect`], [`Error::Http`], [`Error::Auth`]
    /// for transport and credential failures.
    pub async fn websocket(
        &self,
        path_and_query: &str,
        protocols: &[&str],
        config: Option<WebSocketConfig>,
    ) -> Result<(WebSocket, String)> {
        let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
        let request = self
            .request(Method::GET, path_and_query)?
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, &key)
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "))
            .body(Empty::new())
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let response = self.exchange(request).await?;
        check_upgrade(&response, "websocket")?;
        let accept = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
        if accept.map(HeaderValue::as_bytes) != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
            return Err(refused(
                StatusCode::SWITCHING_PROTOCOLS,
                "bad Sec-WebSocket-Accept",
            ));
        }
        let chosen = agreed(
            &response,
            header::SEC_WEBSOCKET_PROTOCOL.as_str(),
            protocols,
        )?
        .ok_or_else(|| Error::Negotiate {
            offered: protocols.iter().map(|p| (*p).to_owned()).collect(),
            chosen: None,
        })?;
        let io = finish(response).await?;
        let ws = WebSocketStream::from_raw_socket(io, Role::Client, config).await;
        Ok((ws, chosen))
    }

    /// Upgrade `POST path_and_query` to SPDY/3.1, offering `protocols` as
    /// `X-Stream-Protocol-Version` values in order. Returns the raw stream and
    /// the version the server chose (`None` when it named none: v1 semantics).
    ///
    /// # Errors
    /// As [`Upgrader::websocket`].
    pub async fn spdy(
        &self,
        path_and_query: &str,
        protocols: &[&str],
    ) -> Result<(UpgradedIo, Option<String>)> {
        let mut request = self
            .request(Method::POST, path_and_query)?
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "SPDY/3.1")
            .header(header::CONTENT_LENGTH, "0");
        for protocol in protocols {
            request = request.header("X-Stream-Protocol-Version", *protocol);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let response = self.exchange(request).await?;
        check_upgrade(&response, "spdy/3.1")?;
        let chosen = agreed(&response, "x-stream-protocol-version", protocols)?;
        Ok((finish(response).await?, chosen))
    }

    fn request(&self, method: Method, path_and_query: &str) -> Result<http::request::Builder> {
        if !path_and_query.starts_with('/') {
            return Err(Error::InvalidRequest(format!(
                "upgrade path must start with '/': {path_and_query:?}"
            )));
        }
        Ok(Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base_path, path_and_query))
            .header(header::HOST, self.dialer.authority())
            .header(header::USER_AGENT, USER_AGENT))
    }

    /// Dial a new connection, sign and send `request`, and wait for the head
    /// of the answer.
    async fn exchange(&self, request: Request<Empty<Bytes>>) -> Result<Response<Incoming>> {
        tracing::debug!(method = %request.method(), path = %request.uri(), "upgrade request");
        let io = self.dialer.dial().await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(Error::Http)?;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(error = %err, "upgrade connection ended");
            }
        });
        let request = self.sign(request).await?;
        let response = tokio::time::timeout(HANDSHAKE_TIMEOUT, sender.send_request(request))
            .await
            .map_err(|_| Error::Connect {
                url: self.dialer.authority(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer to the upgrade request",
                ),
            })?
            .map_err(Error::Http)?;
        tracing::debug!(status = %response.status(), "upgrade answer");
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            Ok(response)
        } else {
            Err(refusal(response).await)
        }
    }

    /// Add kube's credentials (token, refreshed token, exec plugin) and the
    /// configured extra headers. The layers wrap a service that hands the
    /// signed request back (as the "body" of a response, since kube's auth
    /// layer only wraps services that answer with a `Response`), so the
    /// credentials logic stays kube's.
    ///
    /// Boxed as `Send` here, where every type is concrete: left to inference
    /// in a caller's spawned task, tower's error conversion makes the future
    /// "not general enough" to be `Send`.
    fn sign(
        &self,
        request: Request<Empty<Bytes>>,
    ) -> futures::future::BoxFuture<'_, Result<Request<Empty<Bytes>>>> {
        use futures::FutureExt;
        let echo = tower::service_fn(|req: Request<Empty<Bytes>>| {
            std::future::ready(Ok::<_, BoxError>(Response::new(req)))
        });
        let finish = |signed: std::result::Result<Response<Request<Empty<Bytes>>>, BoxError>| {
            signed.map(Response::into_body).map_err(Error::Auth)
        };
        // Combinators, not an async block: the Send check then sees concrete
        // types instead of a generator's erased lifetimes.
        match &self.auth {
            Some(auth) => self
                .extra_headers
                .layer(auth.layer(echo))
                .oneshot(request)
                .map(finish)
                .boxed(),
            None => self
                .extra_headers
                .layer(echo)
                .oneshot(request)
                .map(finish)
                .boxed(),
        }
    }
}

/// A 101 must carry `Connection: upgrade` and the upgrade token we asked for.
fn check_upgrade(response: &Response<Incoming>, token: &str) -> Result<()> {
    let has = |name: header::HeaderName, want: &str| {
        response
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains(want))
    };
    if has(header::CONNECTION, "upgrade") && has(header::UPGRADE, token) {
        Ok(())
    } else {
        Err(refused(
            StatusCode::SWITCHING_PROTOCOLS,
            &format!("101 without Connection: upgrade / Upgrade: {token}"),
        ))
    }
}

/// The subprotocol in header `name`: `None` if absent, an error if the
/// server chose one we did not offer.
fn agreed(response: &Response<Incoming>, name: &str, offered: &[&str]) -> Result<Option<String>> {
    let Some(value) = response.headers().get(name) else {
        return Ok(None);
    };
    let chosen = value.to_str().unwrap_or_default().trim();
    if offered.contains(&chosen) {
        Ok(Some(chosen.to_owned()))
    } else {
        Err(Error::Negotiate {
            offered: offered.iter().map(|p| (*p).to_owned()).collect(),
            chosen: Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        })
    }
}

fn refused(code: StatusCode, why: &str) -> Error {
    Error::Upgrade {
        code: code.as_u16(),
        status: None,
        body: why.to_owned(),
    }
}

/// Turn a non-101 answer into [`Error::Upgrade`], decoding a `Status` body.
async fn refusal(response: Response<Incoming>) -> Error {
    let code = response.status().as_u16();
    let read = Limited::new(response.into_body(), MAX_REFUSAL_BODY).collect();
    let body = match tokio::time::timeout(HANDSHAKE_TIMEOUT, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    let status = serde_json::from_slice::<kube::core::Status>(&body)
        .ok()
        .filter(|s| !s.message.is_empty() || s.code != 0)
        .map(Box::new);
    let text = if status.is_some() {
        String::new()
    } else {
        String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(512)
            .collect()
    };
    Error::Upgrade {
        code,
        status,
        body: text,
    }
}

async fn finish(response: Response<Incoming>) -> Result<UpgradedIo> {
    hyper::upgrade::on(response)
        .await
        .map(TokioIo::new)
        .map_err(Error::Http)
}
