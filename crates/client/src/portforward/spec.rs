//! `[LOCAL:]REMOTE` port specifications, as kubectl accepts them.

use std::fmt;
use std::str::FromStr;

use super::error::ForwardError;

/// The remote side of a port spec: a number, or a port name that the target
/// resolves (a service port name for `svc/…`, a container port name otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RemotePort {
    /// A port number (1–65535).
    Number(u16),
    /// A named port, resolved against the target.
    Name(String),
}

impl fmt::Display for RemotePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// What to do about the local port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalPort {
    /// Listen on exactly this port.
    Fixed(u16),
    /// `:REMOTE` or `0:REMOTE`: let the OS choose a free port.
    Any,
    /// No local part was written: use the same number as the remote port
    /// (for a named port, the number it resolves to, as kubectl does).
    SameAsRemote,
}

/// One `[LOCAL:]REMOTE` argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    /// The local side.
    pub local: LocalPort,
    /// The remote side.
    pub remote: RemotePort,
}

impl PortSpec {
    /// A spec that listens on `local` (0 = any free port) and forwards to the
    /// numbered `remote` port.
    #[must_use]
    pub fn new(local: u16, remote: u16) -> Self {
        let local = if local == 0 {
            LocalPort::Any
        } else {
            LocalPort::Fixed(local)
        };
        Self {
            local,
            remote: RemotePort::Number(remote),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.local {
            LocalPort::Fixed(l) => write!(f, "{l}:{}", self.remote),
            LocalPort::Any => write!(f, ":{}", self.remote),
            LocalPort::SameAsRemote => write!(f, "{}", self.remote),
        }
    }
}

/// Longest port name Kubernetes allows (an IANA service name).
const MAX_PORT_NAME: usize = 15;

fn parse_number(text: &str, spec: &str) -> Result<u16, ForwardError> {
    match text.parse::<u16>() {
        Ok(n) => Ok(n),
        Err(_) => Err(ForwardError::InvalidPortSpec {
            spec: spec.to_owned(),
            reason: format!("{text:?} is not a port number (0-65535)"),
        }),
    }
}

fn parse_remote(text: &str, spec: &str) -> Result<RemotePort, ForwardError> {
    let invalid = |reason: String| ForwardError::InvalidPortSpec {
        spec: spec.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(invalid("the remote port is missing".to_owned()));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match parse_number(text, spec)? {
            0 => Err(invalid("the remote port must be 1-65535".to_owned())),
            n => Ok(RemotePort::Number(n)),
        };
    }
    // IANA_SVC_NAME: lower-case alphanumerics and '-', at least one letter,
    // no leading/trailing or double '-'.
    let valid_name = text.len() <= MAX_PORT_NAME
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && text.bytes().any(|b| b.is_ascii_lowercase())
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--");
    if valid_name {
        Ok(RemotePort::Name(text.to_owned()))
    } else {
        Err(invalid(format!(
            "{text:?} is neither a port number nor a port name"
        )))
    }
}

impl FromStr for PortSpec {
    type Err = ForwardError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (local, remote) = match spec.split_once(':') {
            None => (LocalPort::SameAsRemote, spec),
            Some((local, remote)) => {
                let local = if local.is_empty() {
                    LocalPort::Any
                } else {
                    match parse_number(local, spec)? {
                        0 => LocalPort::Any,
                        n => LocalPort::Fixed(n),
                    }
                };
                (local, remote)
            }
        };
        Ok(Self {
            local,
            remote: parse_remote(remote, spec)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn forms_kubectl_accepts() {
        assert_eq!(parse("8080:80"), PortSpec::new(8080, 80));
        assert_eq!(parse(":9090"), PortSpec::new(0, 9090));
        assert_eq!(parse("0:9090"), PortSpec::new(0, 9090));
        assert_eq!(
            parse("5432"),
            PortSpec {
                local: LocalPort::SameAsRemote,
                remote: RemotePort::Number(5432)
            }
        );
        assert_eq!(
            parse("18081:http"),
            PortSpec {
                local: LocalPort::Fixed(18081),
                remote: RemotePort::Name("http".into())
            }
        );
        assert_eq!(parse("web-2").remote, RemotePort::Name("web-2".into()));
    }

    #[test]
    fn display_round_trips() {
        for s in ["8080:80", ":9090", "5432", "1:http"] {
            assert_eq!(parse(s).to_string(), s);
        }
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for s in [
            "",
            ":",
            "80:",
            "70000",
            "80:0",
            "0",
            "a:80",
            "80:HTTP",
            "80:-x",
            "80:x--y",
            "80:abcdefghijklmnop",
            "1:2:3",
            "80: 81",
            "८०",
        ] {
            assert!(
                matches!(
                    s.parse::<PortSpec>(),
                    Err(ForwardError::InvalidPortSpec { .. })
                ),
                "{s:?} should be rejected"
            );
        }
    }
}
