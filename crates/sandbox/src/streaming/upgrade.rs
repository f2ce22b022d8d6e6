//! The HTTP side of the upgrade: which transport a request asks for, the
//! protocols it offers, and the 101 (or refusal) the server answers.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::error::StreamError;
use crate::body::{self, Body};

/// The SPDY protocol version header, one per offered version.
pub(crate) const STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";
/// Sent with a 403 when no SPDY version is in common, one per supported one.
const ACCEPTED_STREAM_PROTOCOL_VERSIONS: &str = "x-accepted-stream-protocol-versions";

/// The transport a streaming request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `Upgrade: websocket`.
    WebSocket,
    /// `Upgrade: SPDY/3.1`.
    Spdy,
}

impl Transport {
    /// Reads `Connection: Upgrade` plus `Upgrade`; anything else is refused
    /// with 400 as the kubelet does for a plain request.
    pub(crate) fn of(headers: &HeaderMap) -> Result<Self, StreamError> {
        let connection_upgrade = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
        let upgrade = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if connection_upgrade && upgrade.eq_ignore_ascii_case("websocket") {
            Ok(Self::WebSocket)
        } else if connection_upgrade && upgrade.to_ascii_lowercase().contains("spdy/3.1") {
            Ok(Self::Spdy)
        } else {
            Err(StreamError::BadRequest(
                "Upgrade request required".to_owned(),
            ))
        }
    }
}

/// Every value of a list header, split at commas, trimmed, in order.
pub(crate) fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The WebSocket subprotocols the client offers.
pub(crate) fn websocket_offer(headers: &HeaderMap) -> Vec<String> {
    header_list(headers, "sec-websocket-protocol")
}

/// The 101 for a WebSocket upgrade, echoing the chosen subprotocol (none
/// when the client offered none).
pub(crate) fn websocket_accept(
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> Result<Response<Body>, StreamError> {
    let key = headers
        .get("sec-websocket-key")
        .ok_or_else(|| StreamError::BadRequest("missing Sec-WebSocket-Key".to_owned()))?;
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        return Err(StreamError::BadRequest(
            "unsupported Sec-WebSocket-Version (want 13)".to_owned(),
        ));
    }
    let mut response = switching(HeaderValue::from_static("websocket"));
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| StreamError::BadRequest("bad Sec-WebSocket-Key".to_owned()))?;
    let headers = response.headers_mut();
    headers.insert("sec-websocket-accept", accept);
    if let Some(protocol) = protocol {
        let value = HeaderValue::from_str(protocol)
            .map_err(|_| StreamError::BadRequest("bad subprotocol".to_owned()))?;
        headers.insert("sec-websocket-protocol", value);
    }
    Ok(response)
}

/// The 101 for a SPDY upgrade with the chosen protocol version (none when
/// the client offered none, as the kubelet answers).
pub(crate) fn spdy_accept(protocol: Option<&'static str>) -> Response<Body> {
    let mut response = switching(HeaderValue::from_static("SPDY/3.1"));
    if let Some(protocol) = protocol {
        response
            .headers_mut()
            .insert(STREAM_PROTOCOL_VERSION, HeaderValue::from_static(protocol));
    }
    response
}

/// The kubelet's 403 when the client offers no SPDY version it speaks.
pub(crate) fn spdy_refuse(offered: &[String], supported: &[&'static str]) -> Response<Body> {
    let message = format!(
        "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
    );
    let mut response = Response::new(body::full(message));
    *response.status_mut() = StatusCode::FORBIDDEN;
    for version in supported {
        response.headers_mut().append(
            ACCEPTED_STREAM_PROTOCOL_VERSIONS,
            HeaderValue::from_static(version),
        );
    }
    response
}

fn switching(upgrade: HeaderValue) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, upgrade);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn recognises_transports() {
        let ws = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert_eq!(Transport::of(&ws).unwrap(), Transport::WebSocket);
        let spdy = headers(&[
            ("connection", "keep-alive, upgrade"),
            ("upgrade", "SPDY/3.1"),
        ]);
        assert_eq!(Transport::of(&spdy).unwrap(), Transport::Spdy);
        assert!(Transport::of(&headers(&[("upgrade", "websocket")])).is_err());
    }

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        let request = headers(&[
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]);
        let response = websocket_accept(&request, Some("v5.channel.k8s.io")).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "v5.channel.k8s.io"
        );
    }

    #[test]
    fn splits_repeated_and_comma_separated_offers() {
        let request = headers(&[
            (STREAM_PROTOCOL_VERSION, "v5.channel.k8s.io"),
            (STREAM_PROTOCOL_VERSION, "v4.channel.k8s.io, channel.k8s.io"),
        ]);
        assert_eq!(
            header_list(&request, STREAM_PROTOCOL_VERSION),
            ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
        );
    }
}
