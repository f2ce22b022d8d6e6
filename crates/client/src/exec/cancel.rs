//! Stopping a remote process the protocol cannot signal.
//!
//! Every command podlink execs (unless the policy is `Detach` or
//! `Interrupt`) runs as `env PODLINK_SESSION=<random id> CMD ARGS…`; its
//! children inherit the variable. To stop the tree, a second exec in the same
//! container scans `/proc/*/environ` for that exact entry and signals every
//! match: TERM, then KILL after a grace. The user's argv, stdin, output and
//! exit status are otherwise untouched.

use std::time::Duration;

use rand::Rng;

use super::request::{CancelPolicy, DisconnectPolicy, ExecRequest};
use super::ExitStatus;
use crate::keepalive::KeepAlive;
use crate::Client;

/// The environment variable that marks a session's processes.
pub const SESSION_VAR: &str = "PODLINK_SESSION";

/// How a cancelled session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cancelled {
    /// The remote process ended; this is what the server reported.
    Ended(ExitStatus),
    /// The process was left running, as asked.
    Detached,
    /// podlink could not confirm the process stopped (no shell or `/proc`
    /// in the container, or the cluster was unreachable); the text says why.
    MayStillRun(String),
}

/// A fresh session id: 64 random bits, hex.
pub(crate) fn session_id() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// The argv to run so the process tree carries the marker, or `None` when
/// it cannot be marked safely (`env` would read a first word containing
/// `=` as another assignment).
pub(crate) fn marked(id: &str, argv: &[String]) -> Option<Vec<String>> {
    let first = argv.first()?;
    if first.contains('=') {
        return None;
    }
    let mut out = vec!["env".to_owned(), format!("{SESSION_VAR}={id}")];
    out.extend(argv.iter().cloned());
    Some(out)
}

/// Whether a request's policies ever need to find the process tree again.
pub(crate) fn needs_marker(request: &ExecRequest) -> bool {
    request.is_exec()
        && (matches!(
            request.on_cancel,
            CancelPolicy::Terminate | CancelPolicy::Kill
        ) || request.on_disconnect == DisconnectPolicy::Terminate)
}

/// The reaper, a POSIX shell script (one `grep` over every `environ`, so a
/// scan costs one process however many run). A scan of every process takes
/// a while, and a listed process may end meanwhile and its pid go to someone
/// else's new process (pids wrap quickly on a busy node): so each pid is
/// checked again just before it is signalled. Arguments: the session id, then steps:
/// a signal name to send to every marked process, `waitN` to wait up to
/// N tenths of a second for them all to be gone, or `appearN` to wait as long
/// for at least one to exist. Exit 0: none left; 1: some left; 3: no `/proc`.
const REAPER: &str = r#"mark="PODLINK_SESSION=$1"; shift
[ -r /proc/self/environ ] || exit 3
pids() {
  for f in $(grep -lF "$mark" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; echo "${p%/environ}"
  done
}
for step in "$@"; do
  case $step in
    wait*) n=${step#wait}; i=0
      while [ "$i" -lt "$n" ] && [ -n "$(pids)" ]; do sleep 0.1; i=$((i+1)); done ;;
    appear*) n=${step#appear}; i=0
      while [ "$i" -lt "$n" ] && [ -z "$(pids)" ]; do sleep 0.1; i=$((i+1)); done ;;
    *) for p in $(pids); do
         grep -qF "$mark" "/proc/$p/environ" 2>/dev/null && kill "-$step" "$p" 2>/dev/null
       done ;;
  esac
done
[ -z "$(pids)" ]"#;

/// How long the reaper waits for a tree that is not there yet.
const APPEAR_WAIT: Duration = Duration::from_secs(2);
/// How long a clean-up that the network keeps cutting is retried: a cancel
/// is usually a reaction to a bad network, and giving up leaves a process.
const REAP_BUDGET: Duration = Duration::from_secs(30);
/// At most this many clean-up execs per cancel, whatever the budget says.
const REAP_ATTEMPTS: u32 = 12;
/// Pause before the second attempt; it doubles up to [`REAP_PAUSE_MAX`].
const REAP_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between attempts.
const REAP_PAUSE_MAX: Duration = Duration::from_secs(4);

/// A failure of the connection, not of the clean-up shell: worth a retry.
fn is_transient(err: &crate::Error) -> bool {
    use crate::Error;
    match err {
        Error::ConnectionLost(_)
        | Error::PeerDead(_)
        | Error::WebSocket(_)
        | Error::Io(_)
        | Error::Connect { .. }
        | Error::Http(_) => true,
        Error::Upgrade { code, .. } => *code >= 500,
        _ => false,
    }
}

/// Which signals the reaper sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reap {
    /// TERM, a grace, then KILL.
    Terminate,
    /// KILL at once.
    Kill,
}

/// Where the session runs, and its marker: what a reaper needs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) client: Client,
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) container: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) grace: Duration,
    /// The session's keepalive: the network that needed it carries the
    /// clean-up exec too.
    pub(crate) keepalive: KeepAlive,
}

impl Target {
    /// Signal the marked tree on a new connection. Returns a warning when the
    /// tree could not be confirmed gone.
    pub(crate) async fn reap(&self, how: Reap) -> Option<String> {
        let Some(id) = &self.session else {
            return Some("the command carries no session marker".to_owned());
        };
        let wait = format!("wait{}", (self.grace.as_millis() / 100).max(1));
        let mut argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            REAPER.into(),
            "podlink-reap".into(),
            id.clone(),
        ];
        // A server starts the process only once the session is set up, and
        // a cut or stalled connection can delay that past the cancel: give
        // the tree a moment to appear rather than find nothing and leave it
        // to start afterwards.
        argv.push(format!("appear{}", APPEAR_WAIT.as_millis() / 100));
        match how {
            Reap::Terminate => argv.extend(["TERM".into(), wait.clone(), "KILL".into(), wait]),
            Reap::Kill => argv.extend(["KILL".into(), wait]),
        }
        let mut request = ExecRequest::new(self.pod.clone(), argv)
            .with_namespace(self.namespace.clone())
            .with_on_cancel(CancelPolicy::Detach)
            .with_keepalive(self.keepalive);
        if let Some(container) = &self.container {
            request = request.with_container(container.clone());
        }
        // Boxed: `run` starts a session whose cancel may reap again. The
        // reaper only sends signals, so it is run again, within a budget,
        // when the network cut it (the usual reason to cancel) or when
        // processes remained (a tree that started after its first scan).
        let started = tokio::time::Instant::now();
        let mut pause = REAP_PAUSE;
        let mut outcome = Box::pin(self.client.run(request.clone())).await;
        for attempt in 1..REAP_ATTEMPTS {
            let again = match &outcome {
                Err(err) => is_transient(err),
                Ok(output) => output.status == ExitStatus::Exited { code: 1 },
            };
            if !again || started.elapsed() + pause > REAP_BUDGET {
                break;
            }
            tracing::debug!(attempt, "the clean-up exec did not finish the job; again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(REAP_PAUSE_MAX);
            outcome = Box::pin(self.client.run(request.clone())).await;
        }
        let why = match outcome {
            Ok(output) => match output.status {
                ExitStatus::Success => None,
                ExitStatus::Exited { code: 1 } => {
                    Some("some remote processes survived KILL".to_owned())
                }
                ExitStatus::Exited { code: 3 } => {
                    Some("the container has no readable /proc".to_owned())
                }
                other => Some(format!(
                    "the container cannot run the clean-up shell ({other:?}): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )),
            },
            Err(err) => Some(format!("the clean-up exec failed: {err}")),
        };
        // Name the marker, so that whoever reads the warning can find the
        // processes themselves.
        why.map(|why| format!("{why} (its processes carry {SESSION_VAR}={id})"))
    }
}
