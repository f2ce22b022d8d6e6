//! One port-forward session to one pod, over whichever transport the server
//! accepts: the WebSocket tunnel, plain SPDY, or legacy WebSocket (which
//! has no session of its own: one WebSocket per connection).

use std::sync::Arc;
use std::time::Duration;

use podlink_proto::portforward::{PROTOCOL as SPDY_PROTOCOL, TUNNEL_PROTOCOL};
use tokio_util::sync::CancellationToken;

use super::error::{is_denied_upgrade, ForwardError};
use super::legacy;
use super::pair::PairSession;
use super::stats::Counters;
use super::stream::PodStream;
use super::tunnel::TunnelIo;
use crate::spdy::SpdySession;
use crate::{Client, KeepAlive};

/// Which port-forward transport to use (`--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// The tunnel, then SPDY when the upgrade is refused, then legacy
    /// WebSocket when that is refused too.
    #[default]
    Auto,
    /// SPDY inside a WebSocket (`SPDY/3.1+portforward.k8s.io`).
    Tunnel,
    /// SPDY/3.1 (`portforward.k8s.io`).
    Spdy,
    /// Legacy WebSocket (`?ports=`, `v4.channel.k8s.io`): one WebSocket per
    /// connection.
    WebSocket,
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "tunnel" => Ok(Self::Tunnel),
            "spdy" => Ok(Self::Spdy),
            "websocket" | "ws" => Ok(Self::WebSocket),
            other => Err(format!(
                "unknown protocol {other:?}: expected auto, tunnel, spdy or websocket"
            )),
        }
    }
}

/// Settings every session of a forwarder shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionConfig {
    pub(crate) protocol: Protocol,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
}

/// How a session reaches the pod.
enum Transport {
    /// One SPDY session (plain, or inside the WebSocket tunnel).
    Spdy(PairSession),
    /// A new WebSocket per connection.
    Legacy,
}

/// A live session; cheap to share between connections.
pub(crate) struct Session {
    client: Client,
    namespace: String,
    pod: String,
    config: SessionConfig,
    transport: Transport,
    /// Cancelled when the session is closed or lost; ends every connection
    /// on it.
    cancel: CancellationToken,
}

impl Session {
    /// Opens a session to `pod`. With [`Protocol::Auto`], starts from
    /// `*last` (the transport that worked last time, `Auto` at first) and
    /// falls back to the next transport on an upgrade refusal only
    /// (PROTOCOLS.md §7); `*last` is updated to the one that worked.
    pub(crate) async fn connect(
        client: &Client,
        namespace: &str,
        pod: &str,
        config: &SessionConfig,
        last: &mut Protocol,
    ) -> Result<Self, ForwardError> {
        let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}/portforward");
        let keepalive = KeepAlive::new(config.ping_interval, config.pong_timeout);
        let order: &[Protocol] = match (config.protocol, *last) {
            (Protocol::Auto, Protocol::Auto | Protocol::Tunnel) => {
                &[Protocol::Tunnel, Protocol::Spdy, Protocol::WebSocket]
            }
            (Protocol::Auto, Protocol::Spdy) => &[Protocol::Spdy, Protocol::WebSocket],
            (Protocol::Auto, Protocol::WebSocket) => &[Protocol::WebSocket],
            (Protocol::Tunnel, _) => &[Protocol::Tunnel],
            (Protocol::Spdy, _) => &[Protocol::Spdy],
            (Protocol::WebSocket, _) => &[Protocol::WebSocket],
        };
        let mut refusal = None;
        for &protocol in order {
            let attempt = match protocol {
                Protocol::Tunnel => client
                    .upgrader()
                    .websocket(&path, &[TUNNEL_PROTOCOL], None)
                    .await
                    .map(|(ws, _)| {
                        Transport::Spdy(PairSession::new(SpdySession::start(
                            TunnelIo::new(ws),
                            keepalive,
                        )))
                    }),
                Protocol::Spdy => client
                    .upgrader()
                    .spdy(&path, &[SPDY_PROTOCOL])
                    .await
                    .and_then(|(io, chosen)| match chosen.as_deref() {
                        Some(SPDY_PROTOCOL) => Ok(io),
                        // kubectl: "unable to negotiate protocol".
                        _ => Err(crate::Error::Negotiate {
                            offered: vec![SPDY_PROTOCOL.to_owned()],
                            chosen,
                        }),
                    })
                    .map(|io| Transport::Spdy(PairSession::new(SpdySession::start(io, keepalive)))),
                Protocol::WebSocket | Protocol::Auto => Ok(Transport::Legacy),
            };
            match attempt {
                Ok(transport) => {
                    *last = protocol;
                    tracing::debug!(?protocol, %pod, "port-forward session up");
                    return Ok(Self {
                        client: client.clone(),
                        namespace: namespace.to_owned(),
                        pod: pod.to_owned(),
                        config: *config,
                        transport,
                        cancel: CancellationToken::new(),
                    });
                }
                // Denied credentials are not a missing transport: no fallback.
                Err(e)
                    if e.is_upgrade_refusal()
                        && !is_denied_upgrade(&e)
                        && config.protocol == Protocol::Auto =>
                {
                    tracing::debug!(?protocol, error = %e, "upgrade refused; falling back");
                    refusal = Some(e);
                }
                Err(e) => return Err(connect_error(pod, e)),
            }
        }
        Err(connect_error(
            pod,
            refusal.unwrap_or_else(|| crate::Error::ConnectionLost("no transport left".into())),
        ))
    }

    /// Opens one connection to `port` of the pod.
    pub(crate) async fn open(
        &self,
        port: u16,
        counters: Arc<Counters>,
    ) -> Result<PodStream, ForwardError> {
        if self.is_closed() {
            return Err(ForwardError::SessionLost {
                reason: "the session was closed".into(),
            });
        }
        match &self.transport {
            Transport::Spdy(pairs) => pairs.open(port, counters, self.cancel.child_token()).await,
            Transport::Legacy => {
                let ws = legacy::dial(&self.client, &self.namespace, &self.pod, port)
                    .await
                    .map_err(|e| match e.status() {
                        // The server answered for this port: this connection fails alone.
                        Some(status) => ForwardError::Remote {
                            port,
                            message: status.message.clone(),
                        },
                        None => connect_error(&self.pod, e),
                    })?;
                let (stream, ends) = PodStream::new(port, counters);
                tokio::spawn(legacy::drive(
                    ws,
                    port,
                    ends,
                    self.config,
                    self.cancel.child_token(),
                ));
                Ok(stream)
            }
        }
    }

    /// Resolves when the session is lost or closed, with the reason.
    pub(crate) async fn closed(&self) -> String {
        match &self.transport {
            Transport::Spdy(pairs) => tokio::select! {
                ended = pairs.spdy().closed() => match ended {
                    Ok(()) => "the server closed the session".to_owned(),
                    Err(e) => e.to_string(),
                },
                () = self.cancel.cancelled() => "the session was closed".to_owned(),
            },
            Transport::Legacy => {
                self.cancel.cancelled().await;
                "the session was closed".to_owned()
            }
        }
    }

    /// Whether the session has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.cancel.is_cancelled()
            || matches!(&self.transport, Transport::Spdy(pairs) if pairs.spdy().is_closed())
    }

    /// Ends the session and every connection on it, at once.
    pub(crate) fn close(&self) {
        self.cancel.cancel();
        if let Transport::Spdy(pairs) = &self.transport {
            let spdy = pairs.spdy().clone();
            tokio::spawn(async move { spdy.close().await });
        }
    }
}

impl Drop for Session {
    /// The last user of a session ends its connections too.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn connect_error(pod: &str, source: crate::Error) -> ForwardError {
    ForwardError::Connect {
        pod: pod.to_owned(),
        source: Box::new(source),
    }
}
