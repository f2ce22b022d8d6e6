//! Exec and attach: run a command in a container (or attach to its main
//! process) with stdin, stdout, stderr and a terminal, over WebSocket
//! (`v5.channel.k8s.io` first) or SPDY/3.1.
//!
//! - [`Client::exec`] starts a session and returns an [`Exec`] handle.
//! - [`Client::run`] runs a command to completion and collects its output.
//!
//! ```no_run
//! # async fn demo() -> podlink_client::Result<()> {
//! use podlink_client::{exec::ExecRequest, Client};
//!
//! let client = Client::try_default().await?;
//! let output = client.run(ExecRequest::new("demo", ["uname", "-a"])).await?;
//! println!("{} -> {:?}", String::from_utf8_lossy(&output.stdout), output.status);
//! # Ok(()) }
//! ```
//!
//! **Transport choice.** `Auto` offers WebSocket first and falls back to SPDY
//! only when the upgrade is refused (PROTOCOLS.md §7). When stdin is open
//! without a terminal its end-of-file must reach the process, which only v5
//! (of the WebSocket protocols) can say; then only v5 is offered, so an older
//! server leads to SPDY rather than to a command waiting forever for input.
//!
//! **Cancellation.** See [`CancelPolicy`] and [`Exec::cancel`]: commands run
//! under a session marker so that their whole process tree can be stopped.

mod cancel;
mod handle;
mod io;
mod request;
mod spdy;
mod websocket;
mod wire;

use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

pub use cancel::{Cancelled, SESSION_VAR};
pub use handle::Exec;
pub use io::{Resizer, Stderr, Stdin, Stdout, TerminalSize};
pub use podlink_proto::status::ExitStatus;
pub use request::{CancelPolicy, DisconnectPolicy, ExecRequest, ProtocolChoice};

use crate::error::{Error, Result};
use crate::Client;
use request::Target;

/// What [`Client::run`] collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the command ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// The most output [`Client::run`] collects per stream.
pub const MAX_COLLECTED: u64 = 64 * 1024 * 1024;

/// An upgraded connection and the framing agreed on it.
enum Transport {
    WebSocket(Box<crate::upgrade::WebSocket>, wire::WsCodec),
    Spdy(crate::upgrade::UpgradedIo, podlink_proto::channel::Protocol),
}

impl Client {
    /// Start an exec (or, for [`ExecRequest::attach`], an attach) session.
    ///
    /// # Errors
    /// The request is invalid, the pod or container does not exist (an
    /// [`Error::Upgrade`] carrying the server's `Status`), or no connection
    /// could be made.
    pub async fn exec(&self, request: ExecRequest) -> Result<Exec> {
        let namespace = request
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace().to_owned());
        let mut session = cancel::needs_marker(&request).then(cancel::session_id);
        let argv = match &request.target {
            Target::Exec(argv) => {
                match session.as_deref().and_then(|id| cancel::marked(id, argv)) {
                    Some(marked) => marked,
                    None => {
                        session = None;
                        argv.clone()
                    }
                }
            }
            Target::Attach => Vec::new(),
        };
        let path = request.path(&namespace, &argv)?;
        let (transport, protocol) = self.open(&request, &path).await?;
        let (caller, driver) = io::pipes(
            request.stdin,
            request.stdout,
            request.wants_stderr(),
            request.tty,
        );
        let (status_tx, mut status_rx) = oneshot::channel();
        let (set_up_tx, set_up_rx) = oneshot::channel();
        let keepalive = request.keepalive;
        let tty = request.tty;
        tokio::spawn(async move {
            let outcome = match transport {
                Transport::WebSocket(ws, codec) => {
                    // The server starts the process right after its 101.
                    let _ = set_up_tx.send(());
                    websocket::drive(*ws, codec, driver, keepalive, tty).await
                }
                Transport::Spdy(io, protocol) => {
                    spdy::drive(io, protocol, driver, keepalive, tty, set_up_tx).await
                }
            };
            tracing::debug!(?outcome, "session ended");
            let _ = status_tx.send(outcome);
        });
        // Returning before the server has the whole session would let a
        // cancel look for a process that starts only afterwards, and leave it.
        if set_up_rx.await.is_err() {
            let outcome = (&mut status_rx).await.unwrap_or_else(|_| {
                Err(Error::ConnectionLost("the session driver stopped".into()))
            });
            return Err(outcome.err().unwrap_or_else(|| {
                Error::ConnectionLost("the session ended before it was set up".into())
            }));
        }
        let target = cancel::Target {
            client: self.clone(),
            namespace,
            pod: request.pod.clone(),
            container: request.container.clone(),
            session,
            grace: request.grace,
            keepalive,
        };
        Ok(Exec::new(
            caller,
            protocol,
            status_rx,
            target,
            request.on_cancel,
            request.on_disconnect,
        ))
    }

    /// Run a command to completion and collect its output (up to
    /// [`MAX_COLLECTED`] bytes per stream) and status. Stdin is not used.
    ///
    /// # Errors
    /// As [`Client::exec`] and [`Exec::wait`]; output past the limit is an
    /// [`Error::Io`].
    pub async fn run(&self, request: ExecRequest) -> Result<Output> {
        let mut exec = self.exec(request.with_stdin(false)).await?;
        let stdout = exec.stdout();
        let stderr = exec.stderr();
        let (stdout, stderr) = tokio::try_join!(collect(stdout), collect(stderr))?;
        let status = exec.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Upgrade with the requested protocol, falling back from WebSocket to
    /// SPDY only on an upgrade refusal.
    async fn open(&self, request: &ExecRequest, path: &str) -> Result<(Transport, String)> {
        let websocket = || async {
            let offer = wire::offer(request.stdin && !request.tty);
            let (ws, chosen) = self.upgrader().websocket(path, &offer, None).await?;
            let codec = wire::WsCodec::new(&chosen).ok_or_else(|| Error::Negotiate {
                offered: offer.iter().map(|p| (*p).to_owned()).collect(),
                chosen: Some(chosen.clone()),
            })?;
            Ok::<_, Error>((Transport::WebSocket(Box::new(ws), codec), chosen))
        };
        let spdy = || async {
            let (io, chosen) = self.upgrader().spdy(path, &spdy::offer()).await?;
            let protocol = spdy::agreed(chosen.as_deref());
            Ok::<_, Error>((
                Transport::Spdy(io, protocol),
                format!("SPDY/3.1+{protocol}"),
            ))
        };
        match request.protocol {
            ProtocolChoice::WebSocket => websocket().await,
            ProtocolChoice::Spdy => spdy().await,
            ProtocolChoice::Auto => match websocket().await {
                Err(err) if err.is_upgrade_refusal() => {
                    tracing::debug!(error = %err, "WebSocket upgrade refused; trying SPDY");
                    spdy().await
                }
                other => other,
            },
        }
    }
}

async fn collect<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(reader) = reader {
        reader.take(MAX_COLLECTED + 1).read_to_end(&mut out).await?;
        if out.len() as u64 > MAX_COLLECTED {
            return Err(Error::Io(std::io::Error::other(format!(
                "output larger than {MAX_COLLECTED} bytes"
            ))));
        }
    }
    Ok(out)
}
