//! Turning an error into what a person can act on: what failed, the likely
//! cause, and the fix.

use std::fmt;

use crate::Error;

/// A failure explained: one line each for the problem, its likely cause and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// What went wrong, briefly.
    pub problem: String,
    /// The likely cause.
    pub cause: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (likely cause: {}; fix: {})",
            self.problem, self.cause, self.fix
        )
    }
}

impl Explanation {
    pub(crate) fn new(
        problem: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            problem: problem.into(),
            cause: cause.into(),
            fix: fix.into(),
        }
    }
}

/// The error and all its sources as one text, for recognising causes that
/// are only visible deep in the chain (rustls, io).
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        // Layers often repeat their source's text in their own.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = err.source();
    }
    None
}

/// The HTTP status of an API answer carried by `err`, if any.
fn http_code(err: &Error) -> Option<u16> {
    match err {
        Error::Upgrade { code, .. } => Some(*code),
        _ => err.status().map(|s| s.code),
    }
}

/// Explain `err`, met while talking to the cluster at `server`.
#[must_use]
pub fn explain(err: &Error, server: &str) -> Explanation {
    recognise(err, server).unwrap_or_else(|| {
        Explanation::new(
            chain_text(err),
            "an unexpected answer from the cluster",
            "run again with -vv to see the exchange",
        )
    })
}

/// Explain `err` when its cause is one podlink recognises (unreachable
/// server, certificate problems, rejected credentials, missing permission,
/// a cut connection); `None` otherwise, when the error's own text is the
/// best explanation.
#[must_use]
pub fn recognise(err: &Error, server: &str) -> Option<Explanation> {
    let problem = chain_text(err);
    let text = problem.to_ascii_lowercase();
    if let Some(code) = http_code(err) {
        match code {
            401 => {
                return Some(Explanation::new(
                    problem,
                    "the cluster rejected the credentials (an expired or wrong token or client certificate)",
                    "log in again or refresh the credentials of this kubeconfig user (`kubectl config view --minify` shows which)",
                ))
            }
            403 => {
                return Some(Explanation::new(
                    problem,
                    "the user lacks permission (RBAC)",
                    "ask for get/list on pods and create on pods/exec and pods/portforward in this namespace",
                ))
            }
            _ => {}
        }
    }
    if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
        // A CA with the right name but the wrong key fails as a bad signature.
        let (cause, fix) = if ["unknownissuer", "unknown issuer", "badsignature"]
            .iter()
            .any(|needle| text.contains(needle))
        {
            (
                "the server's certificate is not signed by the CA in the kubeconfig",
                "set the cluster's certificate-authority-data in the kubeconfig to the cluster's CA",
            )
        } else if text.contains("notvalidforname") || text.contains("not valid for name") {
            (
                "the server's certificate does not name the address in the kubeconfig",
                "use a server address the certificate names, or set tls-server-name for the cluster",
            )
        } else if text.contains("expired") || text.contains("notvalidyet") {
            (
                "the server's certificate has expired or is not valid yet",
                "renew the cluster's certificates, and check this machine's clock",
            )
        } else {
            (
                "the TLS handshake failed",
                "check the cluster's CA and client certificate settings in the kubeconfig",
            )
        };
        return Some(Explanation::new(problem, cause, fix));
    }
    Some(match io_kind(err) {
        Some(std::io::ErrorKind::ConnectionRefused) => Explanation::new(
            problem,
            format!("nothing listens at {server}"),
            "check the server address in the kubeconfig, and that the cluster (or its tunnel or VPN) is up",
        ),
        Some(std::io::ErrorKind::TimedOut) => Explanation::new(
            problem,
            format!("no answer from {server}"),
            "check the address, firewalls and VPN between this machine and the cluster",
        ),
        _ if text.contains("dns") || text.contains("lookup") || text.contains("resolve") => Explanation::new(
            problem,
            format!("the server name in {server} does not resolve"),
            "check the server address in the kubeconfig and this machine's DNS",
        ),
        _ => match err {
            Error::PeerDead(_) | Error::ConnectionLost(_) | Error::WebSocket(_) => Explanation::new(
                problem,
                "something on the path (a proxy or load balancer) cut or stalled the connection",
                "keep podlink's pings on (--ping-interval) and raise the proxy's idle timeout",
            ),
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_refused_names_the_server() {
        let err = Error::Connect {
            url: "127.0.0.1:1".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let explained = explain(&err, "https://127.0.0.1:1");
        assert!(
            explained
                .cause
                .contains("nothing listens at https://127.0.0.1:1"),
            "{explained}"
        );
    }

    #[test]
    fn refusals_by_code() {
        let err = Error::Upgrade {
            code: 403,
            status: None,
            body: "forbidden".into(),
        };
        assert!(explain(&err, "x").cause.contains("permission"));
        let err = Error::Upgrade {
            code: 401,
            status: None,
            body: String::new(),
        };
        assert!(explain(&err, "x").cause.contains("credentials"));
    }
}
