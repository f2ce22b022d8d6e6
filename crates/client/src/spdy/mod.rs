//! The generic SPDY/3.1 driver: one task per connection owns the socket and
//! a [`podlink_proto::spdy::Connection`] (client role), and talks to stream
//! handles over channels. Exec uses a handful of streams; port-forward opens
//! many pairs on one long-lived session.
//!
//! The task selects over socket reads (first, so that a pong waiting in the
//! socket is seen before a deadline fires), commands from handles, and a
//! sleep until the machine's next timer. Keepalive is the machine's: a PING
//! every interval, and a session whose PING stays unanswered past the
//! timeout ends with [`Error::PeerDead`].
//!
//! ```no_run
//! # async fn demo(io: podlink_client::upgrade::UpgradedIo) -> podlink_client::Result<()> {
//! use podlink_client::{spdy::SpdySession, KeepAlive};
//! use podlink_proto::spdy::Headers;
//!
//! let session = SpdySession::start(io, KeepAlive::default());
//! let stream = session.open(Headers::new().with("streamtype", "error")).await?;
//! let (tx, mut rx) = stream.into_split();
//! tx.finish().await?;
//! while let Some(bytes) = rx.recv().await {
//!     println!("{bytes:?}");
//! }
//! session.close().await;
//! # Ok(()) }
//! ```

mod driver;

use std::time::Duration;

use bytes::Bytes;
use podlink_proto::spdy::{Headers, RstStatus, StreamId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::keepalive::KeepAlive;

/// How long the peer may take to answer a SYN_STREAM (client-go: 30 s).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Chunks buffered per stream towards its reader.
const STREAM_BUFFER: usize = 16;

/// Commands from handles to the driver.
#[derive(Debug)]
enum Command {
    Open {
        headers: Headers,
        reply: oneshot::Sender<Result<SpdyStream>>,
    },
    Data {
        id: StreamId,
        bytes: Bytes,
        fin: bool,
    },
    Reset {
        id: StreamId,
    },
    Close,
}

/// How a session ended, shared with every handle.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    /// We closed it, or the peer closed the connection.
    Clean,
    /// The peer stopped answering pings.
    PeerDead(Duration),
    /// The transport or the peer failed.
    Failed(String),
}

impl Ended {
    fn to_error(&self) -> Option<Error> {
        match self {
            Self::Clean => None,
            Self::PeerDead(after) => Some(Error::PeerDead(*after)),
            Self::Failed(why) => Some(Error::ConnectionLost(why.clone())),
        }
    }
}

/// A SPDY session over an upgraded connection. Cloning shares it; the
/// session closes when [`SpdySession::close`] is called or every clone and
/// stream handle is gone.
#[derive(Debug, Clone)]
pub struct SpdySession {
    commands: mpsc::Sender<Command>,
    ended: watch::Receiver<Option<Ended>>,
}

impl SpdySession {
    /// Start the driver task on `io` (client role).
    pub fn start<IO>(io: IO, keepalive: KeepAlive) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (ended_tx, ended_rx) = watch::channel(None);
        let driver = driver::Driver::new(
            io,
            keepalive,
            commands_tx.downgrade(),
            commands_rx,
            ended_tx,
        );
        tokio::spawn(driver.run());
        Self {
            commands: commands_tx,
            ended: ended_rx,
        }
    }

    /// Open a stream with `headers` and wait (up to [`REPLY_TIMEOUT`]) for
    /// the peer's SYN_REPLY.
    ///
    /// # Errors
    /// The session is over, the peer reset the stream, or it did not reply
    /// in time.
    pub async fn open(&self, headers: Headers) -> Result<SpdyStream> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(Command::Open {
            headers,
            reply: reply_tx,
        })
        .await?;
        match tokio::time::timeout(REPLY_TIMEOUT, reply_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.end_error()),
            Err(_) => Err(Error::ConnectionLost(format!(
                "the server did not accept a stream within {REPLY_TIMEOUT:?}"
            ))),
        }
    }

    /// Close the session: GOAWAY, then the connection. Open streams end.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
        self.ended().await;
    }

    /// Wait for the session to end; `Ok` if it ended cleanly.
    ///
    /// # Errors
    /// [`Error::PeerDead`] or [`Error::ConnectionLost`].
    pub async fn closed(&self) -> Result<()> {
        match self.ended().await.to_error() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Whether the session has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.ended.borrow().is_some()
    }

    async fn ended(&self) -> Ended {
        let mut ended = self.ended.clone();
        let value = ended.wait_for(Option::is_some).await.map(|v| v.clone());
        match value {
            Ok(value) => value.unwrap_or(Ended::Clean),
            Err(_) => Ended::Failed("the session driver stopped".into()),
        }
    }

    fn end_error(&self) -> Error {
        self.ended
            .borrow()
            .as_ref()
            .and_then(Ended::to_error)
            .unwrap_or_else(|| Error::ConnectionLost("the session is closed".into()))
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| self.end_error())
    }
}

/// One stream: a sending half and a receiving half.
#[derive(Debug)]
pub struct SpdyStream {
    sender: StreamSender,
    receiver: StreamReceiver,
}

impl SpdyStream {
    /// The stream id.
    #[must_use]
    pub fn id(&self) -> StreamId {
        self.sender.id
    }

    /// Split into halves that can live in different tasks.
    #[must_use]
    pub fn into_split(self) -> (StreamSender, StreamReceiver) {
        (self.sender, self.receiver)
    }
}

/// The sending half of a stream. Dropping it does nothing to the stream.
#[derive(Debug, Clone)]
pub struct StreamSender {
    id: StreamId,
    session: SpdySession,
}

impl StreamSender {
    /// The stream id.
    #[must_use]
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Send bytes (queued with backpressure; empty input sends nothing).
    ///
    /// # Errors
    /// The session is over.
    pub async fn send(&self, bytes: Bytes) -> Result<()> {
        self.session
            .send(Command::Data {
                id: self.id,
                bytes,
                fin: false,
            })
            .await
    }

    /// Half-close: an empty DATA frame with FIN.
    ///
    /// # Errors
    /// The session is over.
    pub async fn finish(&self) -> Result<()> {
        self.session
            .send(Command::Data {
                id: self.id,
                bytes: Bytes::new(),
                fin: true,
            })
            .await
    }

    /// Reset the stream with CANCEL (Kubernetes' normal reset).
    ///
    /// # Errors
    /// The session is over.
    pub async fn reset(&self) -> Result<()> {
        self.session.send(Command::Reset { id: self.id }).await
    }
}

/// Why a stream's receiving half ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEnd {
    /// The peer half-closed it (FIN).
    Finished,
    /// It was reset.
    Reset(RstStatus),
    /// The whole session ended first.
    SessionEnded,
}

/// Items on a stream's channel.
#[derive(Debug)]
enum Item {
    Data(Bytes),
    End(StreamEnd),
}

/// The receiving half of a stream.
#[derive(Debug)]
pub struct StreamReceiver {
    id: StreamId,
    items: mpsc::Receiver<Item>,
    end: Option<StreamEnd>,
}

impl StreamReceiver {
    /// The stream id.
    #[must_use]
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The next bytes, or `None` once the stream ended (see
    /// [`StreamReceiver::end`] for why).
    pub async fn recv(&mut self) -> Option<Bytes> {
        if self.end.is_some() {
            return None;
        }
        match self.items.recv().await {
            Some(Item::Data(bytes)) => Some(bytes),
            Some(Item::End(end)) => {
                self.end = Some(end);
                None
            }
            None => {
                self.end = Some(StreamEnd::SessionEnded);
                None
            }
        }
    }

    /// Why the stream ended, once [`StreamReceiver::recv`] returned `None`.
    #[must_use]
    pub fn end(&self) -> Option<StreamEnd> {
        self.end.clone()
    }
}

/// Shared by the driver and handles: make a stream's handle pair.
fn new_stream(id: StreamId, session: SpdySession) -> (SpdyStream, mpsc::Sender<Item>) {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let stream = SpdyStream {
        sender: StreamSender { id, session },
        receiver: StreamReceiver {
            id,
            items: rx,
            end: None,
        },
    };
    (stream, tx)
}
