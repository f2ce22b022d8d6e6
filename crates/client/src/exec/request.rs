//! What to run and how: [`ExecRequest`] and its query string.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Error, Result};
use crate::keepalive::KeepAlive;

/// Which streaming protocol to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProtocolChoice {
    /// WebSocket (v5 first, then older), SPDY when the upgrade is refused.
    #[default]
    Auto,
    /// WebSocket only.
    WebSocket,
    /// SPDY/3.1 only.
    Spdy,
}

/// What cancelling a session does to the remote process (the protocol has no
/// signal, so podlink acts itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelPolicy {
    /// Send Ctrl-C over a terminal, otherwise close stdin.
    Interrupt,
    /// Interrupt; after a grace, TERM the remote process tree; after a
    /// second grace, KILL it.
    Terminate,
    /// KILL the remote process tree at once.
    Kill,
    /// Leave the process running.
    Detach,
}

/// What losing the connection does to the remote process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DisconnectPolicy {
    /// Leave it running (a real node keeps it).
    #[default]
    Detach,
    /// Reconnect once and terminate the remote process tree.
    Terminate,
}

/// Whether a request runs a new command or attaches to the container's
/// main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Exec(Vec<String>),
    Attach,
}

/// A command to run in a container (or an attach to its main process),
/// built with the `with_*` methods.
///
/// ```
/// use podlink_client::exec::ExecRequest;
/// let request = ExecRequest::new("demo", ["sh", "-c", "echo hi"]).with_container("main");
/// # let _ = request;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ExecRequest {
    pub(crate) pod: String,
    pub(crate) namespace: Option<String>,
    pub(crate) container: Option<String>,
    pub(crate) target: Target,
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) tty: bool,
    pub(crate) protocol: ProtocolChoice,
    pub(crate) keepalive: KeepAlive,
    pub(crate) on_cancel: CancelPolicy,
    pub(crate) on_disconnect: DisconnectPolicy,
    pub(crate) grace: Duration,
}

impl ExecRequest {
    /// Run `command` (argv, not a shell line) in pod `pod`: stdout and
    /// stderr on, stdin off, no terminal, cancel policy `Terminate`.
    pub fn new<I, S>(pod: impl Into<String>, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(
            pod.into(),
            Target::Exec(command.into_iter().map(Into::into).collect()),
        )
    }

    /// Attach to the main process of pod `pod` (stdout and stderr on; cancel
    /// policy `Detach`, as in kubectl).
    pub fn attach(pod: impl Into<String>) -> Self {
        let mut request = Self::with_target(pod.into(), Target::Attach);
        request.on_cancel = CancelPolicy::Detach;
        request
    }

    fn with_target(pod: String, target: Target) -> Self {
        Self {
            pod,
            namespace: None,
            container: None,
            target,
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
            protocol: ProtocolChoice::Auto,
            keepalive: KeepAlive::default(),
            on_cancel: CancelPolicy::Terminate,
            on_disconnect: DisconnectPolicy::Detach,
            grace: Duration::from_secs(2),
        }
    }

    /// The namespace (default: the client's).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The container (default: the server's choice, the pod's only one).
    pub fn with_container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Whether to open stdin.
    pub fn with_stdin(mut self, on: bool) -> Self {
        self.stdin = on;
        self
    }

    /// Whether to receive stdout.
    pub fn with_stdout(mut self, on: bool) -> Self {
        self.stdout = on;
        self
    }

    /// Whether to receive stderr (ignored with a terminal, whose output is
    /// all on stdout).
    pub fn with_stderr(mut self, on: bool) -> Self {
        self.stderr = on;
        self
    }

    /// Whether the remote side gets a terminal.
    pub fn with_tty(mut self, on: bool) -> Self {
        self.tty = on;
        self
    }

    /// Which protocol to use.
    pub fn with_protocol(mut self, protocol: ProtocolChoice) -> Self {
        self.protocol = protocol;
        self
    }

    /// Keepalive settings.
    pub fn with_keepalive(mut self, keepalive: KeepAlive) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// What cancelling (or dropping the handle) does to the remote process.
    pub fn with_on_cancel(mut self, policy: CancelPolicy) -> Self {
        self.on_cancel = policy;
        self
    }

    /// What losing the connection does to the remote process.
    pub fn with_on_disconnect(mut self, policy: DisconnectPolicy) -> Self {
        self.on_disconnect = policy;
        self
    }

    /// How long each step of a cancel waits for the process to end before
    /// escalating (default 2 s).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether stderr is really requested (a terminal merges it into stdout).
    pub(crate) fn wants_stderr(&self) -> bool {
        self.stderr && !self.tty
    }

    /// Whether the process tree can be found again for TERM/KILL: only a
    /// new command can carry the session marker.
    pub(crate) fn is_exec(&self) -> bool {
        matches!(self.target, Target::Exec(_))
    }

    /// `/api/v1/namespaces/NS/pods/POD/exec?…` with the query keys sorted as
    /// kubectl sends them; `command` is the argv actually run (with the
    /// session marker, if any).
    pub(crate) fn path(&self, namespace: &str, command: &[String]) -> Result<String> {
        if self.pod.is_empty() || namespace.is_empty() {
            return Err(Error::InvalidRequest(
                "pod and namespace must not be empty".into(),
            ));
        }
        if !(self.stdin || self.stdout || self.wants_stderr()) {
            return Err(Error::InvalidRequest(
                "at least one of stdin, stdout and stderr is required".into(),
            ));
        }
        let (verb, command) = match &self.target {
            Target::Exec(_) if command.is_empty() => {
                return Err(Error::InvalidRequest("the command is empty".into()))
            }
            Target::Exec(_) => ("exec", command),
            Target::Attach => ("attach", &[][..]),
        };
        let mut query: Vec<(&str, &str)> = command
            .iter()
            .map(|arg| ("command", arg.as_str()))
            .collect();
        if let Some(container) = &self.container {
            query.push(("container", container));
        }
        if self.wants_stderr() {
            query.push(("stderr", "true"));
        }
        if self.stdin {
            query.push(("stdin", "true"));
        }
        if self.stdout {
            query.push(("stdout", "true"));
        }
        if self.tty {
            query.push(("tty", "true"));
        }
        let query: Vec<String> = query
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        Ok(format!(
            "/api/v1/namespaces/{}/pods/{}/{verb}?{}",
            encode(namespace),
            encode(&self.pod),
            query.join("&")
        ))
    }
}

/// Form encoding as Go's `url.Values.Encode` does it: unreserved characters
/// stay, everything else is percent-encoded (we encode spaces as `%20`,
/// which every server decodes like `+`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, FORM).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_matches_kubectl_order_and_encoding() {
        let req = ExecRequest::new("demo", ["sh", "-c", "echo out; exit 3"]).with_container("main");
        let argv = ["sh", "-c", "echo out; exit 3"].map(String::from);
        assert_eq!(
            req.path("default", &argv).unwrap(),
            "/api/v1/namespaces/default/pods/demo/exec?command=sh&command=-c&command=echo%20out%3B%20exit%203&container=main&stderr=true&stdout=true"
        );
    }

    #[test]
    fn tty_drops_stderr_and_attach_has_no_command() {
        let req = ExecRequest::attach("demo").with_tty(true).with_stdin(true);
        assert_eq!(
            req.path("ns", &[]).unwrap(),
            "/api/v1/namespaces/ns/pods/demo/attach?stdin=true&stdout=true&tty=true"
        );
    }

    #[test]
    fn empty_requests_are_rejected() {
        let req = ExecRequest::new("demo", Vec::<String>::new());
        assert!(matches!(
            req.path("default", &[]),
            Err(Error::InvalidRequest(_))
        ));
        let req = ExecRequest::new("demo", ["true"])
            .with_stdout(false)
            .with_stderr(false);
        assert!(req.path("default", &["true".into()]).is_err());
    }
}
