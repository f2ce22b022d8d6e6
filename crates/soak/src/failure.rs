//! Which failures are clear transport errors (expected while faults cut,
//! stall and time out connections) and which would be a client bug.

use podlink_client::portforward::ForwardError;
use podlink_client::Error;

/// The kind of a clear transport error, or `None` when `err` is not one
/// (a protocol violation, a bad request, an API refusal: a soak failure).
pub fn exec_transport_kind(err: &Error) -> Option<String> {
    let kind = match err {
        Error::ConnectionLost(_) => "connection-lost".to_owned(),
        Error::PeerDead(_) => "peer-dead".to_owned(),
        Error::WebSocket(_) => "websocket".to_owned(),
        Error::Io(_) => "io".to_owned(),
        Error::Connect { .. } => "connect".to_owned(),
        Error::Http(_) => "http".to_owned(),
        Error::Kube(_) => "kube".to_owned(),
        Error::Throttled { .. } => "throttled".to_owned(),
        // The sandbox refuses nothing on purpose: only a server-side
        // failure (5xx) while connections are being cut is a transport one.
        Error::Upgrade { code, .. } if *code >= 500 => format!("upgrade-{code}"),
        _ => return None,
    };
    Some(format!("exec/{kind}"))
}

/// The kind of a port-forward failure that faults explain, or `None` for
/// one that no fault explains (a fatal error: the target is fine).
pub fn forward_transport_kind(err: &ForwardError) -> Option<String> {
    if err.is_fatal() && !matches!(err, ForwardError::Stopped) {
        return None;
    }
    // The variant name: `Connect { .. }` → `Connect`.
    let debug = format!("{err:?}");
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("unknown");
    Some(format!("forward/{name}"))
}
