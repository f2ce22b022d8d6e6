//! Probes of the streaming paths: each opens its own connection, proves
//! data moves (an `echo` through exec, a SPDY ping through port-forward),
//! and closes it. The idle probe holds one connection open without a byte
//! and times how long the path keeps it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use podlink_proto::channel::{decode_message, Channel, ChannelMessage, MessageKind, Protocol};
use podlink_proto::spdy::{Frame, PingId};
use podlink_proto::status::ExitStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::error::{Error, Result};
use crate::exec::{CancelPolicy, ExecRequest, ProtocolChoice};
use crate::upgrade::{UpgradedIo, WebSocket};
use crate::Client;

/// What the exec probes run, and what they must read back.
const ECHO: &str = "podlink-doctor";

/// Most messages or frames a probe reads before giving up (a peer that
/// chatters without answering).
const MAX_READS: usize = 10_000;

/// Largest SPDY frame payload a probe accepts.
const MAX_FRAME: usize = 1 << 20;

/// The SPDY ping id the probes send (odd: client-initiated).
const PING: PingId = PingId(1);

/// Where a probe runs: the pod, its namespace and optionally a container.
#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) container: Option<String>,
    /// A port for the legacy port-forward handshake.
    pub(crate) port: u16,
}

impl Pod {
    fn path(&self, sub: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/pods/{}/{sub}",
            self.namespace, self.name
        )
    }

    fn exec_path(&self) -> String {
        let container = self
            .container
            .as_ref()
            .map(|c| format!("&container={c}"))
            .unwrap_or_default();
        format!(
            "{}?command=echo&command={ECHO}{container}&stdout=true",
            self.path("exec")
        )
    }
}

fn protocol_error(text: impl Into<String>) -> Error {
    Error::Protocol(text.into().into())
}

/// Run `echo` over WebSocket offering only `offer`; the detail on success.
pub(crate) async fn exec_websocket(client: &Client, pod: &Pod, offer: &str) -> Result<String> {
    let (mut ws, chosen) = client
        .upgrader()
        .websocket(&pod.exec_path(), &[offer], None)
        .await?;
    let protocol = Protocol::from_name(&chosen).ok_or_else(|| Error::Negotiate {
        offered: vec![offer.to_owned()],
        chosen: Some(chosen.clone()),
    })?;
    let mut stdout = Vec::new();
    let mut status = Vec::new();
    for _ in 0..MAX_READS {
        let (kind, data) = match ws.next().await {
            None | Some(Ok(Message::Close(_))) => break,
            Some(Err(err)) => return Err(err.into()),
            Some(Ok(Message::Binary(data))) => (MessageKind::Binary, data),
            Some(Ok(Message::Text(text))) => {
                (MessageKind::Text, Bytes::from(text.as_str().to_owned()))
            }
            Some(Ok(_)) => continue,
        };
        match decode_message(protocol, kind, data).map_err(|e| Error::Protocol(Box::new(e)))? {
            ChannelMessage::Data {
                channel: Channel(1),
                payload,
            } => stdout.extend_from_slice(&payload),
            ChannelMessage::Data {
                channel: Channel(3),
                payload,
            } => status.extend_from_slice(&payload),
            _ => {}
        }
    }
    let exit = ExitStatus::decode(protocol, &status).map_err(|e| Error::Protocol(Box::new(e)))?;
    check_echo(&stdout, &exit)?;
    Ok(format!("{chosen}: echo round trip"))
}

/// Run `echo` over SPDY through the exec library.
pub(crate) async fn exec_spdy(client: &Client, pod: &Pod) -> Result<String> {
    let mut request = ExecRequest::new(pod.name.clone(), ["echo", ECHO])
        .with_namespace(pod.namespace.clone())
        .with_protocol(ProtocolChoice::Spdy)
        .with_stderr(false)
        .with_on_cancel(CancelPolicy::Detach);
    if let Some(container) = &pod.container {
        request = request.with_container(container.clone());
    }
    let output = client.run(request).await?;
    check_echo(&output.stdout, &output.status)?;
    Ok("SPDY/3.1: echo round trip".to_owned())
}

fn check_echo(stdout: &[u8], status: &ExitStatus) -> Result<()> {
    if !status.is_success() {
        return Err(protocol_error(format!(
            "the probe command ended with {status:?}"
        )));
    }
    if stdout != format!("{ECHO}\n").as_bytes() {
        return Err(protocol_error(format!(
            "the probe command's output came back wrong: {:?}",
            String::from_utf8_lossy(stdout)
        )));
    }
    Ok(())
}

fn ping_bytes() -> BytesMut {
    let mut out = BytesMut::new();
    Frame::Ping(PING).encode(&mut out);
    out
}

/// Whether `buf` (SPDY bytes so far) holds our ping's answer; consumes
/// whole frames.
fn has_pong(buf: &mut BytesMut) -> Result<bool> {
    while let Some(frame) =
        Frame::decode(buf, MAX_FRAME).map_err(|e| Error::Protocol(Box::new(e)))?
    {
        if frame == Frame::Ping(PING) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Port-forward through the WebSocket tunnel: a SPDY ping round trip.
pub(crate) async fn forward_tunnel(client: &Client, pod: &Pod) -> Result<String> {
    let offer = "SPDY/3.1+portforward.k8s.io";
    let (mut ws, _) = client
        .upgrader()
        .websocket(&pod.path("portforward"), &[offer], None)
        .await?;
    ws.send(Message::Binary(ping_bytes().freeze())).await?;
    let mut buf = BytesMut::new();
    for _ in 0..MAX_READS {
        match ws.next().await {
            Some(Ok(Message::Binary(data))) => {
                buf.extend_from_slice(&data);
                if has_pong(&mut buf)? {
                    // Best effort: the answer is already in.
                    let _ = ws.close(None).await;
                    return Ok(format!("{offer}: SPDY ping round trip"));
                }
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(err)) => return Err(err.into()),
            Some(Ok(_)) => {}
        }
    }
    Err(Error::ConnectionLost(
        "the tunnel closed before answering the ping".into(),
    ))
}

/// Plain SPDY port-forward: a SPDY ping round trip.
pub(crate) async fn forward_spdy(client: &Client, pod: &Pod) -> Result<String> {
    let offer = "portforward.k8s.io";
    let (mut io, chosen) = client
        .upgrader()
        .spdy(&pod.path("portforward"), &[offer])
        .await?;
    if chosen.as_deref() != Some(offer) {
        return Err(Error::Negotiate {
            offered: vec![offer.to_owned()],
            chosen,
        });
    }
    io.write_all(&ping_bytes()).await?;
    let mut buf = BytesMut::with_capacity(4096);
    for _ in 0..MAX_READS {
        if io.read_buf(&mut buf).await? == 0 {
            break;
        }
        if has_pong(&mut buf)? {
            return Ok(format!("{offer}: SPDY ping round trip"));
        }
    }
    Err(Error::ConnectionLost(
        "the connection closed before answering the ping".into(),
    ))
}

/// The legacy WebSocket port-forward: the handshake only (data would need
/// a listening port in the pod).
pub(crate) async fn forward_legacy(client: &Client, pod: &Pod) -> Result<String> {
    let offer = "v4.channel.k8s.io";
    let path = format!("{}?ports={}", pod.path("portforward"), pod.port);
    let (mut ws, chosen) = client.upgrader().websocket(&path, &[offer], None).await?;
    let _ = ws.close(None).await;
    Ok(format!("{chosen}: handshake accepted"))
}

/// How the idle probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Still open after the probe's limit.
    Survived(Duration),
    /// Cut after this long.
    Cut(Duration),
}

/// Hold a port-forward tunnel (SPDY when the tunnel is refused) open
/// without sending a byte, for at most `limit`.
pub(crate) async fn idle(client: &Client, pod: &Pod, limit: Duration) -> Result<Idle> {
    let path = pod.path("portforward");
    let tunnel = client
        .upgrader()
        .websocket(&path, &["SPDY/3.1+portforward.k8s.io"], None)
        .await;
    let closed = match tunnel {
        Ok((ws, _)) => websocket_closed(ws).boxed(),
        Err(err) if err.is_upgrade_refusal() => {
            let (io, _) = client
                .upgrader()
                .spdy(&path, &["portforward.k8s.io"])
                .await?;
            io_closed(io).boxed()
        }
        Err(err) => return Err(err),
    };
    let started = Instant::now();
    Ok(match tokio::time::timeout(limit, closed).await {
        Ok(()) => Idle::Cut(started.elapsed()),
        Err(_) => Idle::Survived(limit),
    })
}

/// Resolves when the WebSocket closes or fails.
async fn websocket_closed(mut ws: WebSocket) {
    for _ in 0..MAX_READS {
        if let None | Some(Err(_) | Ok(Message::Close(_))) = ws.next().await {
            return;
        }
    }
}

/// Resolves when the raw connection ends or fails.
async fn io_closed(mut io: UpgradedIo) {
    let mut buf = vec![0; 4096];
    for _ in 0..MAX_READS {
        if let Ok(0) | Err(_) = io.read(&mut buf).await {
            return;
        }
    }
}
