//! Port-forward, the kubelet's way (PROTOCOLS.md §6): over SPDY (plain or
//! inside the WebSocket tunnel) streams pair up by `requestid` and each pair
//! is one TCP connection to the pod; over the legacy WebSocket protocol each
//! `?ports=` entry gets one connection and two channels.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use podlink_proto::channel::{decode_message, encode_data, ChannelMessage, MessageKind, Protocol};
use podlink_proto::portforward::{legacy, StreamHeaders, StreamKind};
use podlink_proto::spdy::RstStatus;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::process::READ_CHUNK;
use super::spdy_driver::{self, OpenedStream, SessionWriter};

/// How long the kubelet waits for the second stream of a pair.
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages queued for the legacy WebSocket writer.
const LEGACY_DEPTH: usize = 16;
/// Chunks buffered per legacy port before the reader waits.
const LEGACY_PORT_DEPTH: usize = 8;

/// Opens TCP connections to ports of the target pod.
pub(crate) trait Dialer: Clone + Send + Sync + 'static {
    /// Connects to `port` inside the pod.
    fn dial(&self, port: u16) -> impl Future<Output = std::io::Result<TcpStream>> + Send;
    /// The pod as error messages name it.
    fn pod(&self) -> &str;
}

/// The kubelet's error text for a failed forward.
fn forward_error(pod: &str, port: u16, error: &std::io::Error) -> String {
    format!(
        "error forwarding port {port} to pod {pod}, uid : failed to connect to localhost:{port} inside namespace \"{pod}\", IPv4: dial tcp4 127.0.0.1:{port}: connect: {error}"
    )
}

/// Serves a SPDY port-forward session (plain SPDY, or the tunnel's byte
/// stream) until the client goes away.
pub(crate) async fn serve_spdy<IO, D>(io: IO, dialer: D)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: Dialer,
{
    let (writer, mut opened) = spdy_driver::spawn(io, "portforward");
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    loop {
        let next_deadline = pairs.values().map(|p| p.deadline).min();
        tokio::select! {
            stream = opened.recv() => {
                let Some(stream) = stream else { break };
                accept(stream, &writer, &mut pairs, &dialer).await;
            }
            () = sleep_or_pending(next_deadline) => {
                let now = Instant::now();
                let expired: Vec<String> = pairs
                    .iter()
                    .filter(|(_, p)| p.deadline <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in expired {
                    if let Some(pair) = pairs.remove(&key) {
                        pair.time_out(&writer).await;
                    }
                }
            }
        }
    }
    tracing::debug!(pod = dialer.pod(), "port-forward session ended");
}

async fn sleep_or_pending(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One connection's streams while the second is awaited.
struct Pair {
    port: u16,
    error: Option<OpenedStream>,
    data: Option<OpenedStream>,
    deadline: Instant,
}

impl Pair {
    async fn time_out(self, writer: &SessionWriter) {
        tracing::info!(port = self.port, "port-forward stream pair timed out");
        if let Some(error) = &self.error {
            let text = Bytes::from_static(b"timed out waiting for streams");
            let _ = writer.send(error.id, text, true).await;
        }
        for stream in [self.error, self.data].into_iter().flatten() {
            let _ = writer.reset(stream.id, RstStatus::Cancel).await;
        }
    }
}

async fn accept<D: Dialer>(
    stream: OpenedStream,
    writer: &SessionWriter,
    pairs: &mut HashMap<String, Pair>,
    dialer: &D,
) {
    let headers = match StreamHeaders::from_headers(&stream.headers) {
        Ok(headers) => headers,
        Err(error) => {
            tracing::info!(id = %stream.id, %error, "refusing port-forward stream");
            let _ = writer.reset(stream.id, RstStatus::ProtocolError).await;
            return;
        }
    };
    // Without a requestid the kubelet pairs error stream N with data N+2.
    let key = headers.request_id.clone().unwrap_or_else(|| {
        let id = stream.id.get();
        match headers.kind {
            StreamKind::Error => id.to_string(),
            StreamKind::Data => id.saturating_sub(2).to_string(),
        }
    });
    let pair = pairs.entry(key.clone()).or_insert_with(|| Pair {
        port: headers.port,
        error: None,
        data: None,
        deadline: Instant::now() + PAIR_TIMEOUT,
    });
    let slot = match headers.kind {
        StreamKind::Error => &mut pair.error,
        StreamKind::Data => &mut pair.data,
    };
    if slot.is_some() {
        tracing::info!(id = %stream.id, request = %key, "duplicate port-forward stream");
        let _ = writer.reset(stream.id, RstStatus::ProtocolError).await;
        return;
    }
    *slot = Some(stream);
    if pair.error.is_some() && pair.data.is_some() {
        if let Some(Pair {
            port,
            error: Some(error),
            data: Some(data),
            ..
        }) = pairs.remove(&key)
        {
            tokio::spawn(forward(writer.clone(), dialer.clone(), port, error, data));
        }
    }
}

/// One forwarded connection: dial, copy both ways, FIN both streams; on a
/// dial failure, the error text goes on the error stream and only this
/// pair ends.
async fn forward<D: Dialer>(
    writer: SessionWriter,
    dialer: D,
    port: u16,
    error: OpenedStream,
    mut data: OpenedStream,
) {
    // The client half-closes the error stream at once; nothing to read.
    drop(error.data);
    let tcp = match dialer.dial(port).await {
        Ok(tcp) => tcp,
        Err(dial_error) => {
            let text = forward_error(dialer.pod(), port, &dial_error);
            tracing::info!(port, %dial_error, "port-forward dial failed");
            let _ = writer.send(error.id, Bytes::from(text), true).await;
            let _ = writer.reset(data.id, RstStatus::Cancel).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let upstream = copy_to_pod(&mut data.data, &mut to_pod);
    let downstream = async {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            buf.reserve(READ_CHUNK);
            match from_pod.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if writer
                        .send(data.id, buf.split().freeze(), false)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = writer.send(data.id, Bytes::new(), true).await;
        // Like the kubelet, end the pair's error stream as soon as the pod
        // side is done, not after the client's half-close: kubectl up to
        // 1.31 closes the local connection only once the error stream ends.
        let _ = writer.send(error.id, Bytes::new(), true).await;
    };
    tokio::join!(upstream, downstream);
}

/// Serves the legacy WebSocket port-forward: `ports[i]` on channels 2i
/// (data) and 2i+1 (error), each opened with the port in little-endian.
pub(crate) async fn serve_legacy<S, D>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    ports: Vec<u16>,
    dialer: D,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: Dialer,
{
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(LEGACY_DEPTH);
    // The writer: every channel message goes out in order through one task.
    let writer = tokio::spawn(async move {
        let mut scratch = BytesMut::new();
        while let Some((channel, payload)) = out_rx.recv().await {
            let kind = encode_data(
                protocol,
                podlink_proto::channel::Channel(channel),
                &payload,
                &mut scratch,
            );
            let bytes = scratch.split().freeze();
            let message = match kind {
                MessageKind::Binary => Message::Binary(bytes),
                MessageKind::Text => match Utf8Bytes::try_from(bytes) {
                    Ok(text) => Message::Text(text),
                    Err(_) => break,
                },
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
    });

    let mut inputs = Vec::with_capacity(ports.len());
    let mut forwards = tokio::task::JoinSet::new();
    for (index, port) in ports.iter().copied().enumerate() {
        let (Some(data_channel), Some(error_channel)) = (
            legacy::channel(index, StreamKind::Data),
            legacy::channel(index, StreamKind::Error),
        ) else {
            break;
        };
        let prefix = Bytes::copy_from_slice(&legacy::port_prefix(port));
        // Each prefix is its own message: the Python client requires it.
        for channel in [data_channel, error_channel] {
            if out_tx.send((channel.0, prefix.clone())).await.is_err() {
                return;
            }
        }
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(LEGACY_PORT_DEPTH);
        inputs.push(in_tx);
        forwards.spawn(forward_legacy(
            dialer.clone(),
            port,
            data_channel.0,
            error_channel.0,
            in_rx,
            out_tx.clone(),
        ));
    }
    drop(out_tx);

    // Reader: route client data to its port until the client leaves or
    // every forward is done.
    loop {
        tokio::select! {
            message = source.next() => {
                let (kind, payload) = match message {
                    Some(Ok(Message::Binary(bytes))) => (MessageKind::Binary, bytes),
                    Some(Ok(Message::Text(text))) => (MessageKind::Text, Bytes::from(text)),
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        tracing::info!(%error, "legacy port-forward connection failed");
                        break;
                    }
                };
                match decode_message(protocol, kind, payload) {
                    Ok(ChannelMessage::Data { channel, payload }) if channel.0 % 2 == 0 && !payload.is_empty() => {
                        let sender = inputs.get(usize::from(channel.0 / 2));
                        // Input for a port whose connection ended is dropped.
                        if let Some(sender) = sender {
                            let _ = sender.send(payload).await;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::info!(%error, "bad legacy port-forward message; closing");
                        break;
                    }
                }
            }
            done = forwards.join_next() => if done.is_none() { break },
        }
    }
    // Dropping the inputs ends the upstream copies; the writer finishes with
    // close 1000 once every forward released its sender.
    drop(inputs);
    forwards.abort_all();
    let _ = writer.await;
}

async fn forward_legacy<D: Dialer>(
    dialer: D,
    port: u16,
    data_channel: u8,
    error_channel: u8,
    mut input: mpsc::Receiver<Bytes>,
    output: mpsc::Sender<(u8, Bytes)>,
) {
    let tcp = match dialer.dial(port).await {
        Ok(tcp) => tcp,
        Err(error) => {
            let text = forward_error(dialer.pod(), port, &error);
            let _ = output.send((error_channel, Bytes::from(text))).await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let upstream = copy_to_pod(&mut input, &mut to_pod);
    let downstream = async {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            buf.reserve(READ_CHUNK);
            match from_pod.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if output
                        .send((data_channel, buf.split().freeze()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    // The kubelet ends a legacy forward when the pod side ends.
    tokio::select! {
        () = downstream => {}
        () = async { upstream.await; std::future::pending::<()>().await } => {}
    }
}

/// Copies the client's bytes to the pod; at the client's end of input (FIN,
/// RST, or the session's end) the pod sees end of input.
async fn copy_to_pod(input: &mut mpsc::Receiver<Bytes>, to_pod: &mut OwnedWriteHalf) {
    while let Some(chunk) = input.recv().await {
        if to_pod.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = to_pod.shutdown().await;
}

/// A [`Dialer`] for a sandbox pod.
#[derive(Clone)]
pub(crate) struct PodDialer {
    pub(crate) state: Arc<crate::state::State>,
    pub(crate) namespace: String,
    pub(crate) pod: String,
}

impl Dialer for PodDialer {
    async fn dial(&self, port: u16) -> std::io::Result<TcpStream> {
        self.state.dial_pod(&self.namespace, &self.pod, port).await
    }

    fn pod(&self) -> &str {
        &self.pod
    }
}
