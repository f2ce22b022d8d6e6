//! SPDY port-forward (PROTOCOLS.md §6.1–6.2): one session carries every
//! connection as a pair of streams, `error` then `data`, sharing a
//! `requestid` from one counter per session.
//!
//! Unlike kubectl, text on an error stream ends only that connection: the
//! session and every other connection go on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use podlink_proto::portforward::{StreamHeaders, StreamKind};
use tokio_util::sync::CancellationToken;

use super::error::ForwardError;
use super::stats::Counters;
use super::stream::{Outbound, PodStream, StreamEnds};
use crate::spdy::{SpdySession, StreamEnd, StreamReceiver, StreamSender};

/// Most error text kept from one error stream.
const MAX_ERROR_TEXT: usize = 4096;
/// After the data stream is reset, how long to wait for the error stream's
/// explanation (the server writes it just before resetting both).
const ERROR_GRACE: Duration = Duration::from_secs(1);

/// The SPDY session of a port-forward and its request-id counter.
pub(crate) struct PairSession {
    spdy: SpdySession,
    next_request: AtomicU64,
}

impl PairSession {
    pub(crate) fn new(spdy: SpdySession) -> Self {
        Self {
            spdy,
            next_request: AtomicU64::new(0),
        }
    }

    /// The underlying session.
    pub(crate) fn spdy(&self) -> &SpdySession {
        &self.spdy
    }

    /// Opens the error and data streams of one connection to `port` and
    /// starts the task that moves its bytes.
    pub(crate) async fn open(
        &self,
        port: u16,
        counters: Arc<Counters>,
        cancel: CancellationToken,
    ) -> Result<PodStream, ForwardError> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let headers = |kind| {
            StreamHeaders {
                kind,
                port,
                request_id: Some(request.to_string()),
            }
            .to_headers()
        };
        let error = self
            .spdy
            .open(headers(StreamKind::Error))
            .await
            .map_err(|e| self.open_error(port, e))?;
        let (error_tx, error_rx) = error.into_split();
        // The error stream only ever carries the server's words.
        if let Err(e) = error_tx.finish().await {
            return Err(self.open_error(port, e));
        }
        let data = match self.spdy.open(headers(StreamKind::Data)).await {
            Ok(data) => data,
            Err(e) => {
                let _ = error_tx.reset().await;
                return Err(self.open_error(port, e));
            }
        };
        let (data_tx, data_rx) = data.into_split();
        let (stream, ends) = PodStream::new(port, counters);
        let pair = Pair {
            port,
            data_tx,
            data_rx,
            error_tx,
            error_rx,
            error_text: Vec::new(),
        };
        tokio::spawn(pair.run(ends, cancel));
        Ok(stream)
    }

    /// A failed open: the session is gone (retry on the next one), or the
    /// server refused this stream (this connection fails alone).
    fn open_error(&self, port: u16, err: crate::Error) -> ForwardError {
        if self.spdy.is_closed() {
            ForwardError::SessionLost {
                reason: err.to_string(),
            }
        } else {
            ForwardError::Remote {
                port,
                message: err.to_string(),
            }
        }
    }
}

/// One connection's two streams.
struct Pair {
    port: u16,
    data_tx: StreamSender,
    data_rx: StreamReceiver,
    error_tx: StreamSender,
    error_rx: StreamReceiver,
    error_text: Vec<u8>,
}

impl Pair {
    fn keep_error_text(&mut self, bytes: &Bytes) {
        let room = MAX_ERROR_TEXT.saturating_sub(self.error_text.len());
        self.error_text
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn remote_error(&self, fallback: &str) -> ForwardError {
        let text = String::from_utf8_lossy(&self.error_text).trim().to_owned();
        ForwardError::Remote {
            port: self.port,
            message: if text.is_empty() {
                fallback.to_owned()
            } else {
                text
            },
        }
    }

    /// Collects what the error stream still has to say, for a little while.
    async fn drain_error_stream(&mut self) {
        let deadline = tokio::time::Instant::now() + ERROR_GRACE;
        while let Ok(Some(bytes)) = tokio::time::timeout_at(deadline, self.error_rx.recv()).await {
            self.keep_error_text(&bytes);
        }
    }

    /// Moves bytes until both directions are done or the connection fails;
    /// a failure reaches the [`PodStream`]'s reader as an error.
    ///
    /// The upload runs as its own task: the driver may be waiting for this
    /// connection to take downloaded bytes while this connection waits for
    /// the driver to take uploaded ones, so neither direction may wait on
    /// the other.
    async fn run(mut self, ends: StreamEnds, cancel: CancellationToken) {
        let StreamEnds { inbound, outbound } = ends;
        let mut upload = tokio::spawn(upload(outbound, self.data_tx.clone()));
        // `None` once the pod's side has ended (end-of-stream delivered).
        let mut inbound = Some(inbound);
        let mut upload_done = false;
        let mut error_done = false;
        let failure: Option<ForwardError> = loop {
            if inbound.is_none() && upload_done {
                break None;
            }
            tokio::select! {
                chunk = self.data_rx.recv(), if inbound.is_some() => match (chunk, &inbound) {
                    (Some(bytes), Some(tx)) => {
                        tokio::select! {
                            sent = tx.send(Ok(bytes)) => if sent.is_err() {
                                // The reader is gone: nobody wants the rest.
                                break Some(ForwardError::Stopped);
                            },
                            () = cancel.cancelled() => break Some(session_closed()),
                        }
                    }
                    _ => match self.data_rx.end() {
                        Some(StreamEnd::Finished) => {
                            if !self.error_text.is_empty() {
                                break Some(self.remote_error(""));
                            }
                            inbound = None;
                        }
                        Some(StreamEnd::Reset(status)) => {
                            self.drain_error_stream().await;
                            break Some(self.remote_error(&format!(
                                "the server reset the connection ({status:?})"
                            )));
                        }
                        _ => break Some(session_closed()),
                    },
                },
                text = self.error_rx.recv(), if !error_done => match text {
                    Some(bytes) => self.keep_error_text(&bytes),
                    None => {
                        error_done = true;
                        if !self.error_text.is_empty() {
                            break Some(self.remote_error(""));
                        }
                    }
                },
                ended = &mut upload, if !upload_done => match ended {
                    Ok(Upload::Finished) => upload_done = true,
                    // The stream was dropped without end-of-stream.
                    Ok(Upload::Dropped) | Err(_) => break Some(ForwardError::Stopped),
                    Ok(Upload::SessionEnded) => break Some(session_closed()),
                },
                () = cancel.cancelled() => break Some(session_closed()),
            }
        };
        upload.abort();
        if let Some(err) = failure {
            // Both streams go; the session stays.
            let _ = self.data_tx.reset().await;
            let _ = self.error_tx.reset().await;
            if let (Some(tx), false) = (inbound, matches!(err, ForwardError::Stopped)) {
                // A slow reader gets the error if it comes back soon.
                let _ = tokio::time::timeout(ERROR_GRACE, tx.send(Err(err))).await;
            }
        }
    }
}

fn session_closed() -> ForwardError {
    ForwardError::SessionLost {
        reason: "the session to the pod ended".into(),
    }
}

/// How the local-to-pod direction ended.
enum Upload {
    /// Local end-of-stream, sent as FIN.
    Finished,
    /// The [`PodStream`] was dropped without shutting down.
    Dropped,
    /// The session is gone.
    SessionEnded,
}

async fn upload(mut outbound: tokio::sync::mpsc::Receiver<Outbound>, data: StreamSender) -> Upload {
    while let Some(item) = outbound.recv().await {
        match item {
            Outbound::Data(bytes) => {
                if data.send(bytes).await.is_err() {
                    return Upload::SessionEnded;
                }
            }
            Outbound::Fin => {
                return match data.finish().await {
                    Ok(()) => Upload::Finished,
                    Err(_) => Upload::SessionEnded,
                };
            }
        }
    }
    Upload::Dropped
}

#[cfg(test)]
mod tests {
    //! A scripted kubelet (proto's server-role machine over an in-memory
    //! pipe) against the real driver and pair logic.

    use std::collections::HashMap;
    use std::time::Instant;

    use podlink_proto::spdy::{Config, Connection, Event, Headers, Role, RstStatus, StreamId};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::time::timeout;

    use super::*;
    use crate::portforward::stream::explain;
    use crate::KeepAlive;

    const REFUSED: &str = "error forwarding port 81 to pod web: connection refused";

    /// Echoes data streams for port 80; for any other port writes the
    /// kubelet's error text and resets the pair.
    async fn kubelet(mut io: DuplexStream) {
        let mut conn = Connection::new(Role::Server, Config::default(), Instant::now());
        let mut error_streams: HashMap<String, StreamId> = HashMap::new();
        let mut echo_streams: Vec<StreamId> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..10_000 {
            while let Some(event) = conn.poll_event() {
                match event {
                    Event::StreamOpened { id, headers, .. } => {
                        let _ = conn.reply(id, &Headers::new());
                        let request = headers.get("requestid").unwrap_or("").to_owned();
                        match (headers.get("streamtype"), headers.get("port")) {
                            (Some("error"), _) => {
                                error_streams.insert(request, id);
                            }
                            (Some("data"), Some("80")) => {
                                echo_streams.push(id);
                            }
                            (Some("data"), _) => {
                                if let Some(err) = error_streams.get(&request) {
                                    let _ = conn.send_data(*err, Bytes::from(REFUSED), true);
                                    let _ = conn.reset(*err, RstStatus::Cancel);
                                }
                                let _ = conn.reset(id, RstStatus::Cancel);
                            }
                            _ => {}
                        }
                    }
                    Event::Data { id, bytes } => {
                        let _ = conn.send_data(id, bytes, false);
                    }
                    // Echo the end of a data stream; the error stream stays
                    // open after the client's early FIN, as on a kubelet.
                    Event::Finished { id } if echo_streams.contains(&id) => {
                        let _ = conn.close(id);
                    }
                    _ => {}
                }
            }
            while let Some(out) = conn.poll_transmit() {
                if io.write_all(&out).await.is_err() {
                    return;
                }
            }
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if conn.handle_input(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// A session over an in-memory pipe to [`kubelet`], and the kubelet's task.
    fn session_with_kubelet() -> (PairSession, tokio::task::JoinHandle<()>) {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(kubelet(server_io));
        let session = PairSession::new(SpdySession::start(client_io, KeepAlive::default()));
        (session, server)
    }

    /// Sends `message` and expects it back from the echoing kubelet.
    async fn echo(stream: &mut PodStream, message: &str) {
        stream.write_all(message.as_bytes()).await.expect("write");
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.expect("echo");
        assert_eq!(back, message.as_bytes());
    }

    /// Half-closes `stream` and expects the kubelet to end it, with nothing
    /// more to read.
    async fn finish(mut stream: PodStream) {
        stream.shutdown().await.expect("fin");
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.expect("eof after fin");
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_refused_port_fails_alone_and_the_session_goes_on() {
        let (session, server) = session_with_kubelet();
        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        for round in 0..3 {
            let mut ok = session
                .open(80, Arc::clone(&counters), cancel.child_token())
                .await
                .expect("open 80");
            echo(&mut ok, &format!("hello {round}")).await;
            finish(ok).await;

            let mut refused = session
                .open(81, Arc::clone(&counters), cancel.child_token())
                .await
                .expect("open 81");
            let err = refused.read(&mut [0u8; 16]).await.expect_err("refused");
            match explain(err) {
                ForwardError::Remote { port: 81, message } => assert_eq!(message, REFUSED),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(!session.spdy().is_closed());
        session.spdy().close().await;
        server.await.expect("kubelet task");
    }

    /// More connections than the driver's command queue holds, opened and
    /// used at once from two threads: the driver takes queued commands in
    /// batches, and none may be lost or reordered (a lost open fails a
    /// connection; lost data hangs it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_connections_lose_no_command() {
        const CONNECTIONS: usize = 100;
        const ROUNDS: usize = 20;
        let (session, server) = session_with_kubelet();
        let session = Arc::new(session);
        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        let connections: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                let (session, counters) = (Arc::clone(&session), Arc::clone(&counters));
                let cancel = cancel.child_token();
                tokio::spawn(async move {
                    let mut stream = session.open(80, counters, cancel).await.expect("open");
                    for round in 0..ROUNDS {
                        echo(&mut stream, &format!("connection {c} round {round}")).await;
                    }
                    finish(stream).await;
                })
            })
            .collect();
        for connection in connections {
            timeout(Duration::from_secs(60), connection)
                .await
                .expect("connection finishes")
                .expect("connection task");
        }
        session.spdy().close().await;
        server.await.expect("kubelet task");
    }

    #[tokio::test]
    async fn closing_the_session_fails_open_connections_promptly() {
        let (session, server) = session_with_kubelet();
        let cancel = CancellationToken::new();
        let mut stream = session
            .open(80, Arc::new(Counters::default()), cancel.child_token())
            .await
            .expect("open");
        cancel.cancel();
        let err = stream
            .read(&mut [0u8; 4])
            .await
            .expect_err("session closed");
        assert!(matches!(explain(err), ForwardError::SessionLost { .. }));
        session.spdy().close().await;
        server.await.expect("kubelet task");
    }

    #[tokio::test]
    async fn garbage_from_the_server_ends_the_session_with_an_error() {
        let (client_io, mut server_io) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            // Wait for the client's first SYN_STREAM, then answer nonsense:
            // a control frame of version 2 (spdystream would abort too).
            let _ = server_io.read(&mut buf).await;
            let _ = server_io
                .write_all(&[0x80, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1])
                .await;
            let _ = server_io.read(&mut buf).await;
        });
        let session = PairSession::new(SpdySession::start(client_io, KeepAlive::default()));
        let opened = session
            .open(80, Arc::new(Counters::default()), CancellationToken::new())
            .await;
        assert!(
            matches!(opened, Err(ForwardError::SessionLost { .. })),
            "{opened:?}"
        );
        assert!(session.spdy().closed().await.is_err());
        server.abort();
    }

    #[tokio::test]
    async fn a_server_that_stops_reading_holds_the_writer_back() {
        let (client_io, mut server_io) = tokio::io::duplex(1 << 20);
        // Accepts both streams, then never reads the socket again.
        let server = tokio::spawn(async move {
            let mut conn = Connection::new(Role::Server, Config::default(), Instant::now());
            let mut buf = vec![0u8; 64 * 1024];
            let mut opened = 0;
            while opened < 2 {
                match server_io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let _ = conn.handle_input(&buf[..n]);
                    }
                }
                while let Some(event) = conn.poll_event() {
                    if let Event::StreamOpened { id, .. } = event {
                        let _ = conn.reply(id, &Headers::new());
                        opened += 1;
                    }
                }
                while let Some(out) = conn.poll_transmit() {
                    let _ = server_io.write_all(&out).await;
                }
            }
            std::future::pending::<()>().await;
        });
        let session = PairSession::new(SpdySession::start(client_io, KeepAlive::default()));
        let mut stream = session
            .open(80, Arc::new(Counters::default()), CancellationToken::new())
            .await
            .expect("open");
        let chunk = vec![7u8; 64 * 1024];
        let mut accepted = 0usize;
        // Bounded loop: stop at the first write that cannot complete soon.
        for _ in 0..4096 {
            match tokio::time::timeout(Duration::from_millis(200), stream.write_all(&chunk)).await {
                Ok(Ok(())) => accepted += chunk.len(),
                Ok(Err(e)) => panic!("write failed: {e}"),
                Err(_) => break,
            }
        }
        // Everything in flight (pipe, driver queue, channels) stays bounded.
        assert!(
            accepted < 64 << 20,
            "{accepted} bytes buffered for a peer that reads nothing"
        );
        server.abort();
    }
}
