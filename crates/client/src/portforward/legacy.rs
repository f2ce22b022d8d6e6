//! Legacy WebSocket port-forward (`?ports=`, PROTOCOLS.md §6.3): one
//! WebSocket per forwarded connection, channel 0 data both ways, channel 1
//! the server's error text, each channel's first server message prefixed by
//! the port (2 bytes, little-endian). There is no half-close.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use podlink_proto::channel::{
    decode_message, encode_data, Channel, ChannelMessage, MessageKind, Protocol as ChannelProtocol,
};
use podlink_proto::portforward::legacy::{self, Received};
use podlink_proto::portforward::StreamKind;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::error::ForwardError;
use super::session::SessionConfig;
use super::stream::{Outbound, StreamEnds};
use crate::upgrade::WebSocket;
use crate::Client;

/// The binary channel protocol the kubelet serves for legacy port-forward.
const PROTOCOL: ChannelProtocol = ChannelProtocol::V4;
/// Pings (and the close) queued for the writer.
const CONTROL_DEPTH: usize = 4;
/// How long the end of a connection may wait on a slow or dead peer.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Most error text kept from the server.
const MAX_ERROR_TEXT: usize = 4096;

/// Opens the WebSocket for one connection to `port` of `pod`.
pub(crate) async fn dial(
    client: &Client,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<WebSocket, crate::Error> {
    let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports={port}");
    let (ws, _) = client
        .upgrader()
        .websocket(&path, &[PROTOCOL.name()], None)
        .await?;
    Ok(ws)
}

/// How the writing half ended.
enum Writer {
    /// The [`PodStream`](super::PodStream) was dropped: the connection is over.
    Dropped,
    /// Sending failed: the connection is lost.
    Lost(String),
    /// The reading half finished and the close frame went out.
    Closed,
}

/// Moves one connection's bytes between its [`PodStream`](super::PodStream)
/// ends and the WebSocket, with pings and a pong deadline, until either side
/// ends.
///
/// The writing half runs as its own task: a peer that stops reading until
/// its own writes drain must never find us blocked on a write while its
/// bytes wait unread.
pub(crate) async fn drive(
    ws: WebSocket,
    port: u16,
    ends: StreamEnds,
    config: SessionConfig,
    cancel: CancellationToken,
) {
    let StreamEnds { inbound, outbound } = ends;
    let (sink, mut stream) = ws.split();
    let (control_tx, control_rx) = mpsc::channel(CONTROL_DEPTH);
    let mut writer = tokio::spawn(write_half(sink, control_rx, outbound));
    let mut writer_done = false;
    // One port per connection: channels 0 (data) and 1 (error).
    let mut prefixes = legacy::PrefixStripper::new(1);
    let mut error_text = Vec::new();
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut awaiting_pong: Option<Instant> = None;
    let outcome: Result<(), ForwardError> = loop {
        tokio::select! {
            // Only read the socket while the local side can take the bytes:
            // backpressure instead of buffering.
            _ = inbound.reserve(), if inbound.capacity() == 0 => {}
            message = stream.next(), if inbound.capacity() > 0 => match message {
                Some(Ok(Message::Binary(payload))) => {
                    let received = match decode_message(PROTOCOL, MessageKind::Binary, payload) {
                        Ok(ChannelMessage::Data { channel, payload }) => prefixes.handle_message(channel, payload),
                        Ok(ChannelMessage::Close { .. } | ChannelMessage::Empty) => continue,
                        Err(e) => break Err(ForwardError::Protocol(e.to_string())),
                    };
                    match received {
                        Ok(Received { kind: StreamKind::Data, payload, .. }) => {
                            if !payload.is_empty() && inbound.try_send(Ok(payload)).is_err() {
                                break Ok(());
                            }
                        }
                        Ok(Received { kind: StreamKind::Error, payload, .. }) => {
                            let room = MAX_ERROR_TEXT.saturating_sub(error_text.len());
                            error_text.extend_from_slice(&payload[..payload.len().min(room)]);
                            if !error_text.is_empty() {
                                break Err(ForwardError::Remote {
                                    port,
                                    message: String::from_utf8_lossy(&error_text).trim().to_owned(),
                                });
                            }
                        }
                        // A channel of a port this connection did not ask for.
                        Err(e) => break Err(ForwardError::Protocol(e.to_string())),
                    }
                }
                Some(Ok(Message::Pong(_))) => awaiting_pong = None,
                Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    break Err(ForwardError::Protocol("text message on a binary channel protocol".into()))
                }
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(f) if f.code != CloseCode::Normal => {
                        break Err(ForwardError::SessionLost {
                            reason: format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                        })
                    }
                    _ => break Ok(()),
                },
                Some(Err(e)) => break Err(ForwardError::SessionLost { reason: e.to_string() }),
                None => break Ok(()),
            },
            ended = &mut writer, if !writer_done => {
                writer_done = true;
                match ended {
                    Ok(Writer::Lost(reason)) => break Err(ForwardError::SessionLost { reason }),
                    Ok(Writer::Dropped | Writer::Closed) | Err(_) => break Ok(()),
                }
            }
            () = cancel.cancelled() => {
                break Err(ForwardError::SessionLost { reason: "the session was closed".into() })
            }
            _ = ping.tick() => {
                if inbound.capacity() == 0 {
                    // Not reading (the local side is slow): a pong may be
                    // waiting unread, so silence proves nothing.
                    awaiting_pong = None;
                } else if let Some(sent) = awaiting_pong {
                    if sent.elapsed() >= config.pong_timeout {
                        break Err(ForwardError::SessionLost {
                            reason: format!("no pong for {:?}", config.pong_timeout),
                        });
                    }
                } else if control_tx.try_send(Message::Ping(Bytes::new())).is_ok() {
                    awaiting_pong = Some(Instant::now());
                }
            }
        }
    };
    if let Err(e) = outcome {
        // The reader may be slow; it gets the error if it comes back soon,
        // end-of-stream otherwise.
        let _ = tokio::time::timeout(CLOSE_GRACE, inbound.send(Err(e))).await;
    }
    drop(inbound);
    // Dropping the control sender tells the writer to send the close frame.
    drop(control_tx);
    if !writer_done
        && tokio::time::timeout(CLOSE_GRACE, &mut writer)
            .await
            .is_err()
    {
        // A dead peer must not hold the task: the close is best effort.
        writer.abort();
    }
}

/// Sends pings and data until the reading half is done (then a close 1000),
/// the stream is dropped, or a send fails.
async fn write_half(
    mut sink: SplitSink<WebSocket, Message>,
    mut control: mpsc::Receiver<Message>,
    mut outbound: mpsc::Receiver<Outbound>,
) -> Writer {
    let channel = legacy::channel(0, StreamKind::Data).unwrap_or(Channel(0));
    let mut local_done = false;
    loop {
        let message = tokio::select! {
            biased;
            control = control.recv() => match control {
                Some(message) => message,
                None => {
                    let close = Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "".into(),
                    }));
                    let _ = sink.send(close).await;
                    return Writer::Closed;
                }
            },
            item = outbound.recv(), if !local_done => match item {
                Some(Outbound::Data(data)) => {
                    let mut message = BytesMut::with_capacity(data.len() + 1);
                    encode_data(PROTOCOL, channel, &data, &mut message);
                    Message::Binary(message.freeze())
                }
                // No half-close on this protocol: stop sending, keep reading
                // until the pod closes.
                Some(Outbound::Fin) => {
                    local_done = true;
                    continue;
                }
                None => return Writer::Dropped,
            },
        };
        if let Err(e) = sink.send(message).await {
            return Writer::Lost(e.to_string());
        }
    }
}
