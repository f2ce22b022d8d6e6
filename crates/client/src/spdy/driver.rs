//! The task that owns one SPDY connection.

use std::collections::HashMap;
use std::time::Instant;

use podlink_proto::spdy::{Config, Connection, Event, GoAwayStatus, RstStatus, Role, StreamId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::{new_stream, Command, Ended, Item, SpdySession, SpdyStream, StreamEnd};
use crate::error::{Error, Result};
use crate::keepalive::KeepAlive;

/// Socket read size.
const READ_BUFFER: usize = 64 * 1024;

/// A stream as the driver sees it.
struct Route {
    /// Where its data goes; `None` once the peer finished it.
    items: Option<mpsc::Sender<Item>>,
    /// Waiting for the SYN_REPLY, with the handle to give out then.
    pending: Option<(oneshot::Sender<Result<SpdyStream>>, SpdyStream)>,
}

pub(super) struct Driver<IO> {
    io: IO,
    conn: Connection,
    keepalive: KeepAlive,
    weak_commands: mpsc::WeakSender<Command>,
    commands: mpsc::Receiver<Command>,
    ended: watch::Sender<Option<Ended>>,
    routes: HashMap<StreamId, Route>,
}

impl<IO> Driver<IO>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    pub(super) fn new(
        io: IO,
        keepalive: KeepAlive,
        weak_commands: mpsc::WeakSender<Command>,
        commands: mpsc::Receiver<Command>,
        ended: watch::Sender<Option<Ended>>,
    ) -> Self {
        let config = Config::default()
            .ping_interval(Some(keepalive.interval))
            .pong_timeout(Some(keepalive.timeout));
        Self {
            io,
            conn: Connection::new(Role::Client, config, Instant::now()),
            keepalive,
            weak_commands,
            commands,
            ended,
            routes: HashMap::new(),
        }
    }

    pub(super) async fn run(mut self) {
        let outcome = self.serve().await;
        let ended = match outcome {
            Ok(()) => Ended::Clean,
            Err(Error::PeerDead(after)) => Ended::PeerDead(after),
            Err(err) => Ended::Failed(err.to_string()),
        };
        tracing::debug!(?ended, "SPDY session ended");
        // Publish the reason before the routes go, so that readers who see
        // their stream end can ask why.
        let _ = self.ended.send(Some(ended));
        for (_, route) in self.routes.drain() {
            if let Some(items) = route.items {
                let _ = items.try_send(Item::End(StreamEnd::SessionEnded));
            }
        }
        let _ = self.io.shutdown().await;
    }

    async fn serve(&mut self) -> Result<()> {
        let mut buf = vec![0_u8; READ_BUFFER];
        let mut closing = false;
        loop {
            self.flush().await?;
            if self.route_events().await? {
                return Ok(());
            }
            self.flush().await?;
            if closing && self.routes.is_empty() {
                return Ok(());
            }
            let timer = self.conn.poll_timeout();
            tokio::select! {
                biased;
                read = self.io.read(&mut buf) => match read? {
                    0 => return Ok(()),
                    n => self
                        .conn
                        .handle_input(&buf[..n])
                        .map_err(|e| Error::Protocol(Box::new(e)))?,
                },
                command = self.commands.recv(), if !closing => match command {
                    Some(Command::Close) | None => {
                        // Everyone is done: say goodbye and stop reading
                        // new work; the peer's FIN/close finishes us.
                        self.conn.go_away(GoAwayStatus::Ok);
                        for id in self.routes.keys().copied().collect::<Vec<_>>() {
                            let _ = self.conn.reset(id, RstStatus::Cancel);
                        }
                        self.routes.clear();
                        closing = true;
                    }
                    Some(command) => self.handle_command(command),
                },
                () = sleep_until(timer) => self.conn.handle_timeout(Instant::now()),
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Open { headers, reply } => match self.conn.open_stream(&headers, false) {
                Ok(id) => match self.weak_commands.upgrade() {
                    Some(commands) => {
                        let session = SpdySession {
                            commands,
                            ended: self.ended.subscribe(),
                        };
                        let (stream, items) = new_stream(id, session);
                        self.routes.insert(
                            id,
                            Route {
                                items: Some(items),
                                pending: Some((reply, stream)),
                            },
                        );
                    }
                    None => {
                        let _ = reply.send(Err(Error::ConnectionLost("the session is closing".into())));
                    }
                },
                Err(err) => {
                    let _ = reply.send(Err(Error::Protocol(Box::new(err))));
                }
            },
            Command::Data { id, bytes, fin } => {
                if let Err(err) = self.conn.send_data(id, bytes, fin) {
                    tracing::debug!(%err, ?id, "data for a closed stream dropped");
                }
            }
            Command::Reset { id } => {
                let _ = self.conn.reset(id, RstStatus::Cancel);
                self.routes.remove(&id);
            }
            Command::Close => {}
        }
    }

    /// Route the machine's events; true when the session is over.
    async fn route_events(&mut self) -> Result<bool> {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Replied { id, .. } => {
                    if let Some((reply, stream)) = self.routes.get_mut(&id).and_then(|r| r.pending.take()) {
                        if reply.send(Ok(stream)).is_err() {
                            // The opener gave up waiting: nobody wants it.
                            let _ = self.conn.reset(id, RstStatus::Cancel);
                            self.routes.remove(&id);
                        }
                    }
                }
                Event::Data { id, bytes } => {
                    let items = self.routes.get(&id).and_then(|r| r.items.clone());
                    if let Some(items) = items {
                        // Backpressure: a slow reader slows the session.
                        if items.send(Item::Data(bytes)).await.is_err() {
                            if let Some(route) = self.routes.get_mut(&id) {
                                route.items = None;
                            }
                        }
                    }
                }
                Event::Finished { id } => self.end_route(id, StreamEnd::Finished, false).await,
                Event::Reset { id, status, .. } => self.end_route(id, StreamEnd::Reset(status), true).await,
                Event::StreamOpened { id, .. } => {
                    // Kubernetes servers never open streams.
                    let _ = self.conn.reset(id, RstStatus::RefusedStream);
                }
                Event::GoAway { .. } => {
                    if self.routes.is_empty() {
                        return Ok(true);
                    }
                }
                Event::PeerDead => return Err(Error::PeerDead(self.keepalive.timeout)),
                Event::Headers { .. } | Event::Pong { .. } => {}
                other => tracing::debug!(?other, "SPDY event ignored"),
            }
        }
        Ok(false)
    }

    async fn end_route(&mut self, id: StreamId, end: StreamEnd, gone: bool) {
        let Some(route) = self.routes.get_mut(&id) else {
            return;
        };
        if let Some((reply, _)) = route.pending.take() {
            let _ = reply.send(Err(Error::ConnectionLost(format!(
                "the server refused stream {}: {end:?}",
                id.get()
            ))));
        }
        if let Some(items) = route.items.take() {
            let _ = items.send(Item::End(end)).await;
        }
        // The route stays while we may still send (until our FIN/RST).
        if gone || self.conn.stream_state(id).is_none() {
            self.routes.remove(&id);
        }
    }

    async fn flush(&mut self) -> Result<()> {
        let mut wrote = false;
        while let Some(bytes) = self.conn.poll_transmit() {
            self.io.write_all(&bytes).await?;
            wrote = true;
        }
        if wrote {
            self.io.flush().await?;
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
