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
/// scan costs one process however many run). Arguments: the session id, then steps:
/// a signal name to send to every marked process, or `waitN` to wait up to
/// N tenths of a second for them all to be gone. Exit 0: none left; 1: some
/// left; 3: no `/proc`.
const REAPER: &str = r#"id=$1; shift
[ -r /proc/self/environ ] || exit 3
pids() {
  for f in $(grep -lF "PODLINK_SESSION=$id" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; echo "${p%/environ}"
  done
}
for step in "$@"; do
  case $step in
    wait*) n=${step#wait}; i=0
      while [ "$i" -lt "$n" ] && [ -n "$(pids)" ]; do sleep 0.1; i=$((i+1)); done ;;
    *) p=$(pids); [ -n "$p" ] && kill "-$step" $p 2>/dev/null ;;
  esac
done
[ -z "$(pids)" ]"#;

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
        match how {
            Reap::Terminate => argv.extend(["TERM".into(), wait.clone(), "KILL".into(), wait]),
            Reap::Kill => argv.extend(["KILL".into(), wait]),
        }
        let mut request = ExecRequest::new(self.pod.clone(), argv)
            .with_namespace(self.namespace.clone())
            .with_on_cancel(CancelPolicy::Detach);
        if let Some(container) = &self.container {
            request = request.with_container(container.clone());
        }
        // Boxed: `run` starts a session whose cancel may reap again.
        match Box::pin(self.client.run(request)).await {
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
        }
    }
}
