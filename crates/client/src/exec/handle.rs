//! [`Exec`]: the caller's handle on a running session.

use tokio::sync::{mpsc, oneshot};

use super::cancel::{Cancelled, Reap, Target};
use super::io::{CallerIo, Control, Resizer, Stderr, Stdin, Stdout};
use super::request::{CancelPolicy, DisconnectPolicy};
use super::ExitStatus;
use crate::error::{Error, Result};

/// A running exec or attach session.
///
/// Take the streams you need ([`Exec::stdin`], [`Exec::stdout`],
/// [`Exec::stderr`], [`Exec::resizer`]) and then [`Exec::wait`] for the
/// status; streams you do not take are discarded, so you never have to read
/// everything to get the status. Once the status is returned, every byte of
/// stdout and stderr has been handed to the taken readers.
///
/// **Dropping** the handle before the session ended (for example when the
/// task holding it is aborted: async cancellation) cancels it with the
/// request's [`CancelPolicy`] on a background task.
///
/// ```no_run
/// # async fn demo(client: podlink_client::Client) -> podlink_client::Result<()> {
/// use podlink_client::exec::ExecRequest;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let mut exec = client.exec(ExecRequest::new("demo", ["cat"]).with_stdin(true)).await?;
/// let mut stdin = exec.stdin().expect("stdin was requested");
/// let mut stdout = exec.stdout().expect("stdout is on by default");
/// stdin.write_all(b"hello\n").await?;
/// stdin.shutdown().await?; // end-of-file reaches cat
/// let mut echoed = String::new();
/// stdout.read_to_string(&mut echoed).await?;
/// let status = exec.wait().await?;
/// assert!(status.is_success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Exec {
    stdin: Option<Stdin>,
    stdout: Option<Stdout>,
    stderr: Option<Stderr>,
    resizer: Option<Resizer>,
    protocol: String,
    /// `None` once the session's outcome is known (nothing left to cancel).
    session: Option<Session>,
    on_cancel: CancelPolicy,
    on_disconnect: DisconnectPolicy,
}

/// What cancelling needs: the driver's command channel and result, and the
/// way back to the process tree.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) control: mpsc::Sender<Control>,
    pub(crate) status: oneshot::Receiver<Result<ExitStatus>>,
    pub(crate) target: Target,
}

impl Exec {
    pub(crate) fn new(
        io: CallerIo,
        protocol: String,
        status: oneshot::Receiver<Result<ExitStatus>>,
        target: Target,
        on_cancel: CancelPolicy,
        on_disconnect: DisconnectPolicy,
    ) -> Self {
        Self {
            stdin: io.stdin,
            stdout: io.stdout,
            stderr: io.stderr,
            resizer: io.resizer,
            protocol,
            session: Some(Session {
                control: io.control,
                status,
                target,
            }),
            on_cancel,
            on_disconnect,
        }
    }

    /// The protocol in use: a WebSocket subprotocol such as
    /// `v5.channel.k8s.io`, or `SPDY/3.1+` and the agreed version.
    #[must_use]
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Take stdin (if requested). Shut it down to send end-of-file.
    pub fn stdin(&mut self) -> Option<Stdin> {
        self.stdin.take()
    }

    /// Take stdout (if requested).
    pub fn stdout(&mut self) -> Option<Stdout> {
        self.stdout.take()
    }

    /// Take stderr (if requested and there is no terminal).
    pub fn stderr(&mut self) -> Option<Stderr> {
        self.stderr.take()
    }

    /// Take the terminal resizer (sessions with a tty).
    pub fn resizer(&mut self) -> Option<Resizer> {
        self.resizer.take()
    }

    /// Wait for the remote process to end and return its status. Streams not
    /// taken yet are discarded first.
    ///
    /// Cancel-safe: dropping the returned future leaves the session running
    /// and the handle usable (to [`Exec::cancel`] it, or drop it).
    ///
    /// # Errors
    /// The connection was lost or the peer went silent before the process
    /// reported its end ([`Error::ConnectionLost`], [`Error::PeerDead`]), or
    /// the session was already waited for. With `DisconnectPolicy::Terminate`
    /// the process tree is stopped over a new connection before the error is
    /// returned.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| Error::ConnectionLost("the session is already over".into()))?;
        let outcome = (&mut session.status)
            .await
            .unwrap_or_else(|_| Err(Error::ConnectionLost("the session driver stopped".into())));
        let session = self.session.take();
        if let (Err(err), Some(session)) = (&outcome, session) {
            if is_lost(err) && self.on_disconnect == DisconnectPolicy::Terminate {
                if let Some(why) = session.target.reap(Reap::Terminate).await {
                    tracing::warn!("after losing the connection: the remote process may still be running: {why}");
                }
            }
        }
        outcome
    }

    /// Stop the session as `policy` says (see [`CancelPolicy`]) and report
    /// what became of the remote process. A session that already ended
    /// reports its status.
    ///
    /// # Errors
    /// Never fails: problems are reported as [`Cancelled::MayStillRun`].
    pub async fn cancel(mut self, policy: CancelPolicy) -> Result<Cancelled> {
        match self.session.take() {
            Some(session) => Ok(cancel(session, policy).await),
            None => Ok(Cancelled::Ended(ExitStatus::Missing)),
        }
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let policy = self.on_cancel;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let outcome = cancel(session, policy).await;
                    tracing::debug!(?outcome, "cancelled a dropped exec handle");
                });
            }
            Err(_) => tracing::warn!(
                "exec handle dropped outside a runtime: the remote process may still be running"
            ),
        }
    }
}

fn is_lost(err: &Error) -> bool {
    matches!(
        err,
        Error::ConnectionLost(_) | Error::PeerDead(_) | Error::WebSocket(_) | Error::Io(_)
    )
}

/// Wait up to the grace for the driver's outcome. `None`: still running (or
/// the connection failed without a status).
async fn ended(session: &mut Session) -> Option<ExitStatus> {
    let outcome = tokio::time::timeout(session.target.grace, &mut session.status)
        .await
        .ok()?;
    // The receiver is spent: polling it again (cancel waits twice) panics.
    // A closed one makes every later wait end at once with no status.
    session.status = oneshot::channel().1;
    outcome.ok()?.ok()
}

/// Apply `policy` to a live session.
async fn cancel(mut session: Session, policy: CancelPolicy) -> Cancelled {
    let reap = match policy {
        CancelPolicy::Detach => {
            let _ = session.control.send(Control::Abort).await;
            return Cancelled::Detached;
        }
        CancelPolicy::Kill => Some(Reap::Kill),
        CancelPolicy::Terminate => Some(Reap::Terminate),
        CancelPolicy::Interrupt => None,
    };
    if reap != Some(Reap::Kill) {
        let _ = session.control.send(Control::Interrupt).await;
        if let Some(status) = ended(&mut session).await {
            return Cancelled::Ended(status);
        }
    }
    let warning = match reap {
        Some(how) => session.target.reap(how).await,
        None => Some("it did not end after the interrupt".to_owned()),
    };
    let status = ended(&mut session).await;
    let _ = session.control.send(Control::Abort).await;
    match (warning, status) {
        (None, Some(status)) => Cancelled::Ended(status),
        (None, None) => Cancelled::Ended(ExitStatus::Missing),
        (Some(why), _) => Cancelled::MayStillRun(why),
    }
}
