//! What a streaming request asks for, read from its query string the way the
//! apiserver and kubelet read it (PROTOCOLS.md §2, §6.3).

use super::error::StreamError;

/// The stdio an exec or attach session wants, after the kubelet's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamOptions {
    /// argv for exec; empty for attach.
    pub(crate) command: Vec<String>,
    /// The `container` parameter, if given.
    pub(crate) container: Option<String>,
    /// Whether the client sends stdin.
    pub(crate) stdin: bool,
    /// Whether the client wants stdout.
    pub(crate) stdout: bool,
    /// Whether the client wants stderr (always false with a TTY).
    pub(crate) stderr: bool,
    /// Whether the process runs under a pseudo-terminal.
    pub(crate) tty: bool,
}

/// Longest argv the sandbox accepts: a bound on what one request allocates.
const MAX_COMMAND_ARGS: usize = 4096;
/// Most ports one legacy port-forward request may name.
const MAX_PORTS: usize = 64;

impl StreamOptions {
    /// Reads exec (`is_exec`) or attach options from a raw query string.
    pub(crate) fn from_query(query: &str, is_exec: bool) -> Result<Self, StreamError> {
        let mut options = Self {
            command: Vec::new(),
            container: None,
            stdin: false,
            stdout: false,
            stderr: false,
            tty: false,
        };
        for (key, value) in pairs(query) {
            match key.as_str() {
                "command" if is_exec => {
                    if options.command.len() == MAX_COMMAND_ARGS {
                        return Err(StreamError::BadRequest(format!(
                            "too many command arguments (limit {MAX_COMMAND_ARGS})"
                        )));
                    }
                    options.command.push(value);
                }
                "container" => options.container = Some(value).filter(|c| !c.is_empty()),
                // The kubelet's own names are accepted too, as the apiserver
                // forwards either form.
                "stdin" | "input" => options.stdin = flag(&value),
                "stdout" | "output" => options.stdout = flag(&value),
                "stderr" | "error" => options.stderr = flag(&value),
                "tty" => options.tty = flag(&value),
                _ => {}
            }
        }
        if is_exec && options.command.is_empty() {
            return Err(StreamError::BadRequest(
                "you must specify at least one command for the container".into(),
            ));
        }
        if !(options.stdin || options.stdout || options.stderr) {
            return Err(StreamError::BadRequest(
                "you must specify at least 1 of stdin, stdout, stderr".into(),
            ));
        }
        // The kubelet merges stderr into the terminal.
        if options.tty {
            options.stderr = false;
        }
        Ok(options)
    }
}

/// The `ports` of a legacy WebSocket port-forward (`?ports=80&ports=90` or
/// `?ports=80,90`); empty when the request names none.
pub(crate) fn ports_from_query(query: &str) -> Result<Vec<u16>, StreamError> {
    let mut ports = Vec::new();
    for (key, value) in pairs(query) {
        if key != "ports" && key != "port" {
            continue;
        }
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let port = part
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| StreamError::BadRequest(format!("invalid port {part:?}")))?;
            if ports.len() == MAX_PORTS {
                return Err(StreamError::BadRequest(format!(
                    "too many ports (limit {MAX_PORTS})"
                )));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The apiserver's boolean rule: false only when `0` or `false` (any case);
/// anything else, even empty, is true.
fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

/// Decoded `key=value` pairs in order (`+` is a space, `%XX` escapes).
fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (decode(key), decode(value))
        })
}

fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubectl_exec_query() {
        let options = StreamOptions::from_query(
            "command=sh&command=-c&command=echo+out%3B+exit+3&container=main&stderr=true&stdout=true",
            true,
        )
        .unwrap();
        assert_eq!(options.command, ["sh", "-c", "echo out; exit 3"]);
        assert_eq!(options.container.as_deref(), Some("main"));
        assert!(options.stdout && options.stderr && !options.stdin && !options.tty);
    }

    #[test]
    fn tty_drops_stderr_and_flags_follow_the_apiserver() {
        let options =
            StreamOptions::from_query("command=sh&stdin=&stderr=1&tty=TRUE&stdout=False", true)
                .unwrap();
        assert!(options.stdin && options.tty && !options.stderr && !options.stdout);
    }

    #[test]
    fn rejects_missing_command_and_missing_streams() {
        assert!(StreamOptions::from_query("stdout=true", true).is_err());
        assert!(StreamOptions::from_query("command=ls", true).is_err());
        assert!(StreamOptions::from_query("stdout=true", false).is_ok());
    }

    #[test]
    fn reads_legacy_ports() {
        assert_eq!(
            ports_from_query("ports=8080&ports=90,91").unwrap(),
            [8080, 90, 91]
        );
        assert!(ports_from_query("ports=0").is_err());
        assert!(ports_from_query("ports=70000").is_err());
        assert!(ports_from_query("").unwrap().is_empty());
    }
}
