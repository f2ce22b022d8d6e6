//! The task that owns one SPDY connection.
//!
//! Reading and writing proceed independently (the socket is split), so a
//! peer that only reads once its own writes drain can never deadlock us.
//! Towards readers, a stream whose channel is full *stalls* routing: the
//! socket is not read until that reader takes the item, so a slow reader
//! slows the peer through TCP instead of growing a buffer; commands keep
//! flowing meanwhile.

use std::collections::HashMap;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use podlink_proto::spdy::{Config, Connection, Event, GoAwayStatus, Role, RstStatus, StreamId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};

use super::{new_stream, Command, Ended, Item, SpdySession, SpdyStream, StreamEnd};
use crate::error::{Error, Result};
use crate::keepalive::KeepAlive;

/// Socket read size: bulk data arrives in WebSocket messages of up to
/// 256 KiB, and each read is a trip round the driver's loop.
const READ_BUFFER: usize = 256 * 1024;

/// Outgoing bytes buffered before commands are no longer taken.
const MAX_QUEUED: usize = 1024 * 1024;

/// Most queued commands handed to the machine before the driver writes.
const COMMAND_BATCH: usize = 64;

/// A stream as the driver sees it.
struct Route {
    /// Where its data goes; `None` once the reader is gone or it ended.
    items: Option<mpsc::Sender<Item>>,
    /// Waiting for the SYN_REPLY, with the handle to give out then.
    pending: Option<(oneshot::Sender<Result<SpdyStream>>, SpdyStream)>,
}

pub(super) struct Driver<IO> {
    reader: ReadHalf<IO>,
    writer: WriteHalf<IO>,
    conn: Connection,
    keepalive: KeepAlive,
    weak_commands: mpsc::WeakSender<Command>,
    commands: mpsc::Receiver<Command>,
    ended: watch::Sender<Option<Ended>>,
    routes: HashMap<StreamId, Route>,
    /// An item a full stream channel could not take yet.
    stalled: Option<(StreamId, Item)>,
    out: BytesMut,
    unflushed: bool,
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
        let (reader, writer) = tokio::io::split(io);
        Self {
            reader,
            writer,
            conn: Connection::new(Role::Client, config, Instant::now()),
            keepalive,
            weak_commands,
            commands,
            ended,
            routes: HashMap::new(),
            stalled: None,
            out: BytesMut::new(),
            unflushed: false,
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
        self.routes.clear();
        let _ = self.writer.shutdown().await;
    }

    async fn serve(&mut self) -> Result<()> {
        let mut buf = vec![0_u8; READ_BUFFER];
        let mut closing = false;
        loop {
            self.collect_transmits();
            if self.stalled.is_none() && self.route_events()? {
                return Ok(());
            }
            self.collect_transmits();
            if closing && self.out.is_empty() && !self.unflushed {
                return Ok(());
            }
            let timer = self.conn.poll_timeout();
            let stalled = self.stalled.as_ref().map(|(id, _)| *id);
            let stalled_tx = stalled
                .and_then(|id| self.routes.get(&id))
                .and_then(|r| r.items.clone());
            let take_commands = !closing && self.out.len() < MAX_QUEUED;
            let writing = !self.out.is_empty() || self.unflushed;
            tokio::select! {
                biased;
                permit = reserve(stalled_tx), if stalled.is_some() => {
                    let item = self.stalled.take().map(|(_, item)| item);
                    match (permit, item) {
                        (Some(permit), Some(item)) => {
                            permit.send(item);
                        }
                        _ => {
                            if let Some(route) = stalled.and_then(|id| self.routes.get_mut(&id)) {
                                route.items = None;
                            }
                        }
                    }
                }
                read = self.reader.read(&mut buf), if stalled.is_none() => match read? {
                    0 => return Ok(()),
                    n => self
                        .conn
                        .handle_input(&buf[..n])
                        .map_err(|e| Error::Protocol(Box::new(e)))?,
                },
                written = write_some(&mut self.writer, &mut self.out, &mut self.unflushed), if writing => written?,
                command = self.commands.recv(), if take_commands => {
                    // Take what else is queued too, in order: the frames of
                    // many streams then leave in one write (one WebSocket
                    // message, few TLS records) rather than one each. A
                    // command is only taken when it will be handled, and
                    // none once MAX_QUEUED is reached (the bound on `out`).
                    closing = self.take_command(command);
                    for _ in 1..COMMAND_BATCH {
                        self.collect_transmits();
                        if closing || self.out.len() >= MAX_QUEUED {
                            break;
                        }
                        match self.commands.try_recv() {
                            Ok(next) => closing = self.take_command(Some(next)),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep_until(timer), if stalled.is_none() => self.conn.handle_timeout(Instant::now()),
            }
        }
    }

    /// Hands one command (or the end of the commands) to the machine; true
    /// once the session is closing. Everyone being done (`Close`, or every
    /// handle gone) resets what is open (as kubectl does) and says goodbye;
    /// the caller stops once that is written.
    fn take_command(&mut self, command: Option<Command>) -> bool {
        match command {
            Some(Command::Close) | None => {
                for id in self.routes.keys().copied().collect::<Vec<_>>() {
                    let _ = self.conn.reset(id, RstStatus::Cancel);
                }
                self.conn.go_away(GoAwayStatus::Ok);
                self.routes.clear();
                self.stalled = None;
                true
            }
            Some(command) => {
                self.handle_command(command);
                false
            }
        }
    }

    fn collect_transmits(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit() {
            self.out.extend_from_slice(&bytes);
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Open { headers, reply } => {
                let Some(commands) = self.weak_commands.upgrade() else {
                    let _ = reply.send(Err(Error::ConnectionLost("the session is closing".into())));
                    return;
                };
                match self.conn.open_stream(&headers, false) {
                    Ok(id) => {
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
                    Err(err) => {
                        let _ = reply.send(Err(Error::Protocol(Box::new(err))));
                    }
                }
            }
            Command::Data { id, bytes, fin } => {
                if let Err(err) = self.conn.send_data(id, bytes, fin) {
                    tracing::debug!(%err, ?id, "data for a closed stream dropped");
                }
            }
            Command::Reset { id } => {
                let _ = self.conn.reset(id, RstStatus::Cancel);
                self.routes.remove(&id);
                if self.stalled.as_ref().is_some_and(|(s, _)| *s == id) {
                    self.stalled = None;
                }
            }
            Command::Close => {}
        }
    }

    /// Route the machine's events until one stalls; true when the session
    /// is over.
    fn route_events(&mut self) -> Result<bool> {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Replied { id, .. } => {
                    if let Some((reply, stream)) =
                        self.routes.get_mut(&id).and_then(|r| r.pending.take())
                    {
                        if reply.send(Ok(stream)).is_err() {
                            // The opener gave up waiting: nobody wants it.
                            let _ = self.conn.reset(id, RstStatus::Cancel);
                            self.routes.remove(&id);
                        }
                    }
                }
                Event::Data { id, bytes } => self.deliver(id, Item::Data(bytes)),
                Event::Finished { id } => self.end_route(id, StreamEnd::Finished),
                Event::Reset { id, status, .. } => {
                    self.end_route(id, StreamEnd::Reset(status));
                    self.routes.remove(&id);
                }
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
            if self.stalled.is_some() {
                break;
            }
        }
        Ok(false)
    }

    /// Hand an item to a stream's reader, or stall if its channel is full.
    fn deliver(&mut self, id: StreamId, item: Item) {
        let Some(route) = self.routes.get_mut(&id) else {
            return;
        };
        let Some(items) = &route.items else {
            return;
        };
        match items.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => self.stalled = Some((id, item)),
            Err(mpsc::error::TrySendError::Closed(_)) => route.items = None,
        }
    }

    fn end_route(&mut self, id: StreamId, end: StreamEnd) {
        let Some(route) = self.routes.get_mut(&id) else {
            return;
        };
        if let Some((reply, _)) = route.pending.take() {
            let _ = reply.send(Err(Error::ConnectionLost(format!(
                "the server refused stream {}: {end:?}",
                id.get()
            ))));
        }
        self.deliver(id, Item::End(end));
        // The route stays while we may still send (until our FIN or RST),
        // but it takes no more items.
        if let Some(route) = self.routes.get_mut(&id) {
            if self.stalled.as_ref().is_none_or(|(s, _)| *s != id) {
                route.items = None;
            }
        }
        if self.conn.stream_state(id).is_none()
            && self.stalled.as_ref().is_none_or(|(s, _)| *s != id)
        {
            self.routes.remove(&id);
        }
    }
}

/// A permit on a stream's channel, or `None` if its reader is gone.
async fn reserve(items: Option<mpsc::Sender<Item>>) -> Option<mpsc::OwnedPermit<Item>> {
    items?.reserve_owned().await.ok()
}

/// Write some of `out` (or flush once it is empty). Cancel-safe: nothing is
/// consumed unless the write completed.
async fn write_some<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut BytesMut,
    unflushed: &mut bool,
) -> Result<()> {
    if out.is_empty() {
        writer.flush().await?;
        *unflushed = false;
        return Ok(());
    }
    let n = writer.write(out).await?;
    if n == 0 {
        return Err(Error::Io(std::io::ErrorKind::WriteZero.into()));
    }
    out.advance(n);
    *unflushed = true;
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
