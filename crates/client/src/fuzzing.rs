//! Fuzzing entry points for the client's handling of server input, shared by
//! the cargo-fuzz target in `fuzz/` and `tests/fuzz_corpus.rs`, so that both
//! run the same code. Not a stable API.
//!
//! A run plays a scripted server on a loopback port against the real public
//! client paths ([`Client::run`] for exec, [`reflector`] over [`ApiSource`]
//! for watch). The input's first byte ([`Flags`]) picks what the client does
//! and how the server ends; the rest is what the server sends, cut into
//! connections by [`NEXT_CONNECTION`] and, within a connection, into writes
//! by [`NEXT_WRITE`]. Each write after the first waits until the client has
//! sent something (or a short pause), so replies can follow the requests
//! they answer (SPDY `SYN_REPLY` after `SYN_STREAM`). The literal [`ACCEPT`]
//! becomes the `Sec-WebSocket-Accept` value for the client's random key, or
//! no input could ever reach a WebSocket session.
//!
//! The invariant: every run ends in `Ok` or a typed [`Error`](crate::Error)
//! without panicking, and within [`RUN_LIMIT`] once the server has said all
//! it has to say and closed its side.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use podlink_proto::fuzzing::{with_harness, Slot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::exec::{CancelPolicy, ExecRequest, Output, ProtocolChoice};
use crate::watch::{reflector, ApiSource, BackoffConfig, InitialList, WatchConfig};
use crate::{Client, KeepAlive, Result};

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target's name and function, for the replay test.
pub const TARGETS: &[(&str, Target)] = &[("client_server_input", server_input)];

/// Separates the connections of a script.
pub const NEXT_CONNECTION: &[u8] = b"\0CONN\0";

/// Separates the writes of one connection.
pub const NEXT_WRITE: &[u8] = b"\0NEXT\0";

/// Replaced by the `Sec-WebSocket-Accept` value for the client's key.
pub const ACCEPT: &[u8] = b"$ACCEPT";

/// The bound on a run whose server closed its side after the script.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// How long a run with a server that keeps its side open may take before
/// it is cut (the client may legitimately wait out its own timeouts).
const HOLD_LIMIT: Duration = Duration::from_secs(1);

/// How long the server waits for client bytes before its next write.
const PACE: Duration = Duration::from_millis(5);

/// Most bytes of a request head the server reads.
const MAX_HEAD: usize = 64 * 1024;

/// Short liveness settings, so that silent servers end runs quickly.
const KEEPALIVE: KeepAlive = KeepAlive {
    interval: Duration::from_millis(20),
    timeout: Duration::from_millis(100),
};

/// The input's first byte.
#[derive(Debug, Clone, Copy)]
pub struct Flags(pub u8);

/// What the client does in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ExecWebSocket,
    ExecSpdy,
    ExecAuto,
    Watch,
}

impl Flags {
    /// Exec over WebSocket (0), SPDY (1), WebSocket falling back to SPDY
    /// (2), or a list-watch of pods (3).
    pub const MODE: u8 = 0b11;
    /// Exec with a terminal.
    pub const TTY: u8 = 1 << 2;
    /// The server keeps its side open after the script.
    pub const HOLD: u8 = 1 << 3;
    /// Watch: start with a streaming list (else a paged list of 2 items).
    pub const STREAMING: u8 = 1 << 4;

    fn mode(self) -> Mode {
        match self.0 & Self::MODE {
            0 => Mode::ExecWebSocket,
            1 => Mode::ExecSpdy,
            2 => Mode::ExecAuto,
            _ => Mode::Watch,
        }
    }

    fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

/// How a run ended, for tests that check the harness reaches the sessions.
#[derive(Debug)]
pub enum Outcome {
    /// What [`Client::run`] returned.
    Exec(Result<Output>),
    /// The names of the objects in the reflector's store at the end, sorted.
    Watch(Vec<String>),
    /// The server held its side open and the run was cut at the limit.
    Cut,
}

/// The client side of every run in a thread: the loopback listener the
/// scripted server answers on, and a client pointed at it.
struct Served {
    listener: Arc<TcpListener>,
    client: Client,
}

thread_local! {
    static HARNESS: Slot<Served> = const { RefCell::new(None) };
}

impl Served {
    fn start(runtime: &Runtime) -> Self {
        runtime.block_on(async {
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .expect("a loopback port");
            let port = listener.local_addr().expect("a bound address").port();
            let url = format!("http://127.0.0.1:{port}")
                .parse()
                .expect("a valid URL");
            let client = Client::from_config(kube::Config::new(url)).expect("a client");
            Self {
                listener: Arc::new(listener),
                client,
            }
        })
    }

    /// Plays one script and runs the client against it.
    fn run(&self, runtime: &Runtime, flags: Flags, script: Vec<Vec<Vec<u8>>>) -> Outcome {
        let hold = flags.has(Flags::HOLD);
        runtime.block_on(async {
            let (exhausted_tx, exhausted) = oneshot::channel();
            let server = tokio::spawn(serve(self.listener.clone(), script, hold, exhausted_tx));
            let client = async {
                match flags.mode() {
                    Mode::Watch => watch(&self.client, flags, exhausted).await,
                    mode => exec(&self.client, flags, mode).await,
                }
            };
            let limit = if hold { HOLD_LIMIT } else { RUN_LIMIT };
            let ended = tokio::time::timeout(limit, client).await;
            server.abort();
            assert!(
                hold || ended.is_ok(),
                "the client still ran {RUN_LIMIT:?} after the server closed"
            );
            ended.unwrap_or(Outcome::Cut)
        })
    }
}

/// The client's handling of arbitrary server bytes: see the module docs.
pub fn server_input(data: &[u8]) {
    let outcome = play(data);
    tracing::trace!(?outcome, "fuzz run ended");
}

/// Runs one input (see the module docs); `None` for empty input.
pub fn play(data: &[u8]) -> Option<Outcome> {
    let (&flags, rest) = data.split_first()?;
    let script = split(rest, NEXT_CONNECTION)
        .map(|conn| split(conn, NEXT_WRITE).map(<[u8]>::to_vec).collect())
        .collect();
    Some(with_harness(&HARNESS, Served::start, |harness| {
        harness.state.run(&harness.runtime, Flags(flags), script)
    }))
}

/// The parts of `data` between occurrences of `separator`.
fn split<'a>(data: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest?;
        match find(data, separator) {
            Some(at) => {
                rest = Some(&data[at + separator.len()..]);
                Some(&data[..at])
            }
            None => rest.take(),
        }
    })
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

/// Exec `true` and collect its output; any outcome is fine.
async fn exec(client: &Client, flags: Flags, mode: Mode) -> Outcome {
    let protocol = match mode {
        Mode::ExecWebSocket => ProtocolChoice::WebSocket,
        Mode::ExecSpdy => ProtocolChoice::Spdy,
        _ => ProtocolChoice::Auto,
    };
    let request = ExecRequest::new("fuzz", ["true"])
        .with_protocol(protocol)
        .with_tty(flags.has(Flags::TTY))
        .with_keepalive(KEEPALIVE)
        // A cancelled run must not start another exec to stop it.
        .with_on_cancel(CancelPolicy::Detach);
    Outcome::Exec(client.run(request).await)
}

/// Run a reflector over pods until the script is used up (the client then
/// connects once more) or the reflector ends with a fatal error.
async fn watch(client: &Client, flags: Flags, exhausted: oneshot::Receiver<()>) -> Outcome {
    let initial = match flags.has(Flags::STREAMING) {
        true => InitialList::Streaming,
        false => InitialList::Paged,
    };
    let backoff = BackoffConfig::default()
        .initial(Duration::from_millis(1))
        .max(Duration::from_millis(2))
        .jitter(0.0);
    let config = WatchConfig::default()
        .initial(initial)
        .page_size(2)
        .stall_timeout(Duration::from_millis(100))
        .list_timeout(Duration::from_millis(100))
        .watch_timeout(Duration::from_millis(200))
        .backoff(backoff);
    let source = ApiSource::<Pod>::namespaced(client.kube().clone(), "default");
    let (store, mut changes) = reflector(source, config);
    let mut exhausted = std::pin::pin!(exhausted);
    loop {
        tokio::select! {
            change = changes.next() => match change {
                Some(change) => tracing::trace!(?change, "fuzz watch change"),
                None => break,
            },
            _ = &mut exhausted => break,
        }
    }
    let mut names: Vec<String> = store
        .list()
        .iter()
        .map(|pod| pod.metadata.name.clone().unwrap_or_default())
        .collect();
    names.sort();
    Outcome::Watch(names)
}

/// The scripted server: one connection per script entry, in order; then
/// every further connection is closed at once, and the first one reports
/// that the script is used up.
async fn serve(
    listener: Arc<TcpListener>,
    script: Vec<Vec<Vec<u8>>>,
    hold: bool,
    exhausted: oneshot::Sender<()>,
) {
    // Dropped (and so aborted) with this task when the run ends.
    let mut connections = JoinSet::new();
    for writes in script {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        connections.spawn(answer(tcp, writes, hold));
    }
    if listener.accept().await.is_ok() {
        let _ = exhausted.send(());
    }
    while listener.accept().await.is_ok() {}
}

/// Answer one connection: read the request head, send the writes, then
/// close our side (unless holding) and read until the client closes.
async fn answer(mut tcp: TcpStream, writes: Vec<Vec<u8>>, hold: bool) {
    let _ = tcp.set_nodelay(true);
    let Some(head) = read_head(&mut tcp).await else {
        return;
    };
    let accept = websocket_key(&head).map(|key| derive_accept_key(key.as_bytes()));
    let mut buf = vec![0_u8; 16 * 1024];
    for (i, write) in writes.iter().enumerate() {
        if i > 0 {
            // Let the client's reaction to the last write arrive first.
            let _ = tokio::time::timeout(PACE, tcp.read(&mut buf)).await;
        }
        let write = match &accept {
            Some(accept) => replace(write, ACCEPT, accept.as_bytes()),
            None => write.clone(),
        };
        if tcp.write_all(&write).await.is_err() {
            return;
        }
    }
    if !hold {
        let _ = tcp.shutdown().await;
    }
    // Keep reading: closing with unread bytes would reset the connection
    // and could discard what we sent before the client read it.
    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// The request head, up to the blank line (bounded).
async fn read_head(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0_u8; 4096];
    while find(&head, b"\r\n\r\n").is_none() {
        let n = tcp.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return None;
        }
    }
    Some(head)
}

fn websocket_key(head: &[u8]) -> Option<String> {
    let head = std::str::from_utf8(head).ok()?;
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    })
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut parts = split(data, from).peekable();
    while let Some(part) = parts.next() {
        out.extend_from_slice(part);
        if parts.peek().is_some() {
            out.extend_from_slice(to);
        }
    }
    out
}
