//! The task that runs one server-side SPDY session over an upgraded
//! connection (plain SPDY or the WebSocket tunnel), driving podlink-proto's
//! sans-IO [`Connection`].
//!
//! It replies to every SYN_STREAM at once (PROTOCOLS.md §4.2), hands each new
//! stream to the application with a bounded receiver for its data, and takes
//! the application's writes as [`Command`]s. Backpressure, not buffering:
//! when a stream's receiver is full, the driver stops reading the socket
//! (SPDY has no flow control, so this is what a kubelet does too) but keeps
//! writing, so output never waits on input.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use podlink_proto::spdy::{
    Config, Connection, Event, GoAwayStatus, Headers, Role, RstStatus, StreamId,
};
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

use super::process::READ_CHUNK;

/// Data chunks buffered per stream before the driver stops reading.
const STREAM_DEPTH: usize = 8;
/// Application commands queued before writers wait.
const COMMAND_DEPTH: usize = 32;
/// Most queued commands handed to the machine before the driver writes.
const COMMAND_BATCH: usize = 64;
/// Frames shorter than this are gathered into one write with their
/// neighbours; longer ones are written as they are.
const GATHER_BELOW: usize = 16 * 1024;
/// Most streams one session may hold open (port-forward opens two per
/// connection, kubectl keeps no limit); more are refused by the machine.
const MAX_STREAMS: usize = 4096;
/// After the server ends a session, how long it waits for the client to
/// close the connection before closing it itself.
const LINGER: Duration = Duration::from_secs(5);

/// A stream the client opened (already replied to).
#[derive(Debug)]
pub(crate) struct OpenedStream {
    /// Its id.
    pub(crate) id: StreamId,
    /// Its SYN_STREAM headers.
    pub(crate) headers: Headers,
    /// Its data; ends at the client's FIN or RST, or when the session dies.
    pub(crate) data: mpsc::Receiver<Bytes>,
}

/// What the application asks of the session.
#[derive(Debug)]
enum Command {
    Data {
        id: StreamId,
        bytes: Bytes,
        fin: bool,
    },
    Reset {
        id: StreamId,
        status: RstStatus,
    },
    /// FIN every stream, GOAWAY, flush and close.
    Finish,
}

/// The application's handle for writing to a session's streams.
#[derive(Debug, Clone)]
pub(crate) struct SessionWriter {
    commands: mpsc::Sender<Command>,
}

/// The session is gone; nothing more can be sent.
#[derive(Debug, thiserror::Error)]
#[error("the SPDY session is closed")]
pub(crate) struct SessionClosed;

impl SessionWriter {
    /// Sends bytes on a stream (FIN after them if `fin`). Waits while the
    /// socket is slow.
    pub(crate) async fn send(
        &self,
        id: StreamId,
        bytes: Bytes,
        fin: bool,
    ) -> Result<(), SessionClosed> {
        self.command(Command::Data { id, bytes, fin }).await
    }

    /// Resets a stream.
    pub(crate) async fn reset(&self, id: StreamId, status: RstStatus) -> Result<(), SessionClosed> {
        self.command(Command::Reset { id, status }).await
    }

    /// Ends the session the kubelet's way: FIN on every stream, GOAWAY,
    /// then close once the client has read everything.
    pub(crate) async fn finish(&self) -> Result<(), SessionClosed> {
        self.command(Command::Finish).await
    }

    async fn command(&self, command: Command) -> Result<(), SessionClosed> {
        self.commands.send(command).await.map_err(|_| SessionClosed)
    }
}

/// Starts the driver task; returns the writer and the stream of opened
/// streams (which ends when the session does).
pub(crate) fn spawn<IO>(
    io: IO,
    label: &'static str,
) -> (SessionWriter, mpsc::UnboundedReceiver<OpenedStream>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (commands_tx, commands) = mpsc::channel(COMMAND_DEPTH);
    // Unbounded in type only: the machine refuses more than MAX_STREAMS.
    let (opened_tx, opened) = mpsc::unbounded_channel();
    let config = Config::default().max_streams(MAX_STREAMS);
    let driver = Driver {
        conn: Connection::new(Role::Server, config, std::time::Instant::now()),
        streams: HashMap::new(),
        opened: opened_tx,
        pending: None,
        out: BytesMut::new(),
    };
    tokio::spawn(async move {
        match driver.run(io, commands).await {
            Ok(()) => tracing::debug!(label, "SPDY session ended"),
            Err(error) => tracing::info!(label, %error, "SPDY session failed"),
        }
    });
    (
        SessionWriter {
            commands: commands_tx,
        },
        opened,
    )
}

/// Why a session's driver stopped.
#[derive(Debug, thiserror::Error)]
enum DriverError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(#[from] podlink_proto::ProtocolError),
}

struct Driver {
    conn: Connection,
    /// Senders for the data of live client streams.
    streams: HashMap<StreamId, mpsc::Sender<Bytes>>,
    opened: mpsc::UnboundedSender<OpenedStream>,
    /// A data chunk waiting for room in its stream's channel.
    pending: Option<(mpsc::Sender<Bytes>, Bytes)>,
    /// Frames gathered for the next write.
    out: BytesMut,
}

impl Driver {
    async fn run<IO>(
        mut self,
        mut io: IO,
        mut commands: mpsc::Receiver<Command>,
    ) -> Result<(), DriverError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut commands_open = true;
        loop {
            self.route_events();
            self.transmit(&mut io).await?;
            let wake = self.conn.poll_timeout();
            tokio::select! {
                read = io.read_buf(&mut buf), if self.pending.is_none() => {
                    if read? == 0 {
                        return Ok(());
                    }
                    let result = self.conn.handle_input(&buf);
                    buf.clear();
                    if let Err(error) = result {
                        // The machine queued GOAWAY(PROTOCOL_ERROR): send it.
                        self.route_events();
                        self.transmit(&mut io).await?;
                        return Err(error.into());
                    }
                }
                permit = reserve(self.pending.as_ref().map(|(tx, _)| tx.clone())), if self.pending.is_some() => {
                    if let (Some(permit), Some((_, bytes))) = (permit, self.pending.take()) {
                        permit.send(bytes);
                    }
                }
                command = commands.recv(), if commands_open => match command {
                    Some(command) => {
                        // Take what else is queued too: the frames of many
                        // streams then leave in one write (one WebSocket
                        // message, few TLS records) rather than one each.
                        // A command is only taken when it will be applied:
                        // one received past the batch's end would be lost.
                        if self.apply(command) {
                            return self.finish(io).await;
                        }
                        for _ in 1..COMMAND_BATCH {
                            let Ok(command) = commands.try_recv() else {
                                break;
                            };
                            if self.apply(command) {
                                return self.finish(io).await;
                            }
                        }
                    }
                    // The application is gone; the session lives until
                    // the client closes it.
                    None => commands_open = false,
                },
                () = sleep_until_opt(wake) => self.conn.handle_timeout(std::time::Instant::now()),
            }
        }
    }

    /// Hands one application command to the machine; true for
    /// [`Command::Finish`], which the caller carries out.
    fn apply(&mut self, command: Command) -> bool {
        match command {
            Command::Data { id, bytes, fin } => {
                if let Err(error) = self.conn.send_data(id, bytes, fin) {
                    // The client reset the stream: its data goes nowhere.
                    tracing::debug!(%error, "dropping data for a closed stream");
                }
            }
            Command::Reset { id, status } => {
                if let Err(error) = self.conn.reset(id, status) {
                    tracing::debug!(%error, "reset of an unknown stream");
                }
            }
            Command::Finish => return true,
        }
        false
    }

    /// Moves machine events to the application until one must wait.
    fn route_events(&mut self) {
        while self.pending.is_none() {
            let Some(event) = self.conn.poll_event() else {
                break;
            };
            match event {
                Event::StreamOpened { id, headers, .. } => {
                    if let Err(error) = self.conn.reply(id, &Headers::new()) {
                        tracing::debug!(%error, "cannot reply to stream");
                        continue;
                    }
                    let (tx, data) = mpsc::channel(STREAM_DEPTH);
                    self.streams.insert(id, tx);
                    if self
                        .opened
                        .send(OpenedStream { id, headers, data })
                        .is_err()
                    {
                        // Nobody handles streams any more: refuse it.
                        self.streams.remove(&id);
                        let _ = self.conn.reset(id, RstStatus::RefusedStream);
                    }
                }
                Event::Data { id, bytes } => {
                    let Some(tx) = self.streams.get(&id) else {
                        continue;
                    };
                    match tx.try_send(bytes) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(bytes)) => {
                            self.pending = Some((tx.clone(), bytes))
                        }
                        // The application stopped reading this stream.
                        Err(mpsc::error::TrySendError::Closed(_)) => {}
                    }
                }
                Event::Finished { id } | Event::Reset { id, .. } => {
                    self.streams.remove(&id);
                }
                Event::GoAway { .. } => tracing::debug!("client sent GOAWAY"),
                // Server sessions send no pings; headers carry nothing here.
                _ => {}
            }
        }
    }

    /// Writes the queued frames, small ones gathered into one write, then
    /// flushes: over the WebSocket tunnel each write is a message of its
    /// own, and a frame per message made small requests cost a message and
    /// a TLS record each. Large frames go as they are (no copy).
    async fn transmit<IO: AsyncWrite + Unpin>(&mut self, io: &mut IO) -> std::io::Result<()> {
        let mut wrote = false;
        while let Some(bytes) = self.conn.poll_transmit() {
            if bytes.len() < GATHER_BELOW {
                self.out.extend_from_slice(&bytes);
                continue;
            }
            self.write_gathered(io).await?;
            io.write_all(&bytes).await?;
            wrote = true;
        }
        wrote |= self.write_gathered(io).await?;
        if wrote {
            io.flush().await?;
        }
        Ok(())
    }

    /// Writes the gathered small frames, if any; true when it wrote.
    async fn write_gathered<IO: AsyncWrite + Unpin>(
        &mut self,
        io: &mut IO,
    ) -> std::io::Result<bool> {
        if self.out.is_empty() {
            return Ok(false);
        }
        io.write_all(&self.out).await?;
        self.out.clear();
        Ok(true)
    }

    async fn finish<IO>(mut self, mut io: IO) -> Result<(), DriverError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in ids {
            let _ = self.conn.close(id);
        }
        self.conn.go_away(GoAwayStatus::Ok);
        self.transmit(&mut io).await?;
        self.streams.clear();
        // The client closes first, as with a kubelet (whose spdystream waits
        // for every stream to end before it closes): Go's spdystream drops
        // frames it has read but not yet handed to a stream as soon as it
        // sees EOF, so closing right after the last frame loses output under
        // load. Reading (and dropping) meanwhile also keeps unread input
        // from turning the close into a TCP reset.
        let mut sink = vec![0u8; READ_CHUNK];
        let _ = timeout(LINGER, async {
            while io.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        })
        .await;
        io.shutdown().await?;
        Ok(())
    }
}

/// Waits for room in a stream's channel; `None` if it closed meanwhile.
async fn reserve(tx: Option<mpsc::Sender<Bytes>>) -> Option<mpsc::OwnedPermit<Bytes>> {
    tx?.reserve_owned().await.ok()
}

async fn sleep_until_opt(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => sleep_until(Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}
