//! Fuzzing entry point for the sandbox's request handling, shared by the
//! cargo-fuzz target in `fuzz/` and `tests/fuzz_corpus.rs`. Not a stable API.
//!
//! [`request`] turns its input into one HTTP/1.1 request (see [`parse`]) and
//! sends it, in process over an in-memory pipe, to the same hyper connection
//! and router a real client reaches, against one sandbox per thread (started
//! on first use, without the demo pod). The invariant: the sandbox answers
//! within [`ANSWER_LIMIT`] without panicking, and every error answer is a
//! JSON `Status` whose `code` is the HTTP status.
//!
//! Requests that could start host processes are skipped, since the input
//! would choose the command: writes to pods and deployments, the streaming
//! subresources (exec, attach, port-forward) and fault injection.

use std::cell::RefCell;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use podlink_proto::fuzzing::{with_harness, Slot};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::api::parse_target;
use crate::resource::Resource;
use crate::{router, Sandbox, SandboxConfig};

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target's name and function, for the replay test.
pub const TARGETS: &[(&str, Target)] = &[("sandbox_request", request)];

/// The bound on the whole exchange of one request.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// How long to wait for more of a body that has not ended (a watch).
const STREAM_WAIT: Duration = Duration::from_millis(20);

/// Most bytes of an answer's body we read.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The request methods the first byte picks from (low three bits).
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "WATCH",
];

/// Most headers taken from the input (hyper's server accepts 100 in all).
const MAX_HEADERS: usize = 64;

/// First-byte flag: send no `Authorization` header.
pub const NO_AUTH: u8 = 1 << 3;

thread_local! {
    /// One sandbox and its runtime per thread; dropped (processes stopped,
    /// state removed) when the thread ends.
    static HARNESS: Slot<Sandbox> = const { RefCell::new(None) };
}

/// The sandbox every request of a thread goes to.
fn start_sandbox(runtime: &Runtime) -> Sandbox {
    let config = SandboxConfig::new()
        .with_demo(false)
        .with_network_namespaces(false);
    runtime.block_on(Sandbox::start(config)).expect("a sandbox")
}

/// Sends one request built from `data` (see [`parse`]) to the sandbox.
pub fn request(data: &[u8]) {
    with_harness(&HARNESS, start_sandbox, |harness| {
        let sandbox = &harness.state;
        let Some(request) = parse(data, sandbox.token()) else {
            return;
        };
        if may_start_processes(request.method(), request.uri().path()) {
            return;
        }
        let summary = format!("{} {}", request.method(), request.uri());
        let state = sandbox.state().clone();
        let answered = harness
            .runtime
            .block_on(async { tokio::time::timeout(ANSWER_LIMIT, exchange(state, request)).await });
        let answer =
            answered.unwrap_or_else(|_| panic!("no answer to {summary} within {ANSWER_LIMIT:?}"));
        if let Some((status, body)) = answer {
            check(&summary, status, body.as_ref());
        }
    });
}

/// The request in `data`: byte 0 picks the method (`METHODS`) and flags
/// ([`NO_AUTH`]); then a line with the path and query; then header lines
/// `name: value` up to an empty line (at most `MAX_HEADERS`); the rest is
/// the body. `None` when the
/// target is not a valid origin-form URI; invalid headers are left out.
pub fn parse(data: &[u8], token: &str) -> Option<Request<Full<Bytes>>> {
    let (&first, rest) = data.split_first()?;
    let (target, mut rest) = line(rest);
    let target = std::str::from_utf8(target).ok()?;
    if !target.starts_with('/') {
        return None;
    }
    let method = Method::from_bytes(METHODS[usize::from(first & 0b111)].as_bytes()).ok()?;
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .header(header::HOST, "sandbox");
    if first & NO_AUTH == 0 {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for _ in 0..MAX_HEADERS {
        let (header, tail) = line(rest);
        rest = tail;
        if header.is_empty() {
            break;
        }
        let Some(at) = header.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&header[..at]);
        let value = HeaderValue::from_bytes(header[at + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            // Framing is hyper's business: a fuzzed length would only
            // make the pipe wait for bytes that never come.
            if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                builder = builder.header(name, value);
            }
        }
    }
    builder.body(Full::new(Bytes::copy_from_slice(rest))).ok()
}

/// Up to the next `\n` (excluded, as is a `\r` before it), and the rest.
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

/// True for requests the harness must not send (module docs). Segments are
/// decoded as the router decodes them.
fn may_start_processes(method: &Method, path: &str) -> bool {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let streaming_or_fault = segs
        .iter()
        .any(|s| matches!(s.as_str(), "exec" | "attach" | "portforward" | "faults"));
    if streaming_or_fault {
        return true;
    }
    if method == Method::GET || method == Method::HEAD {
        return false;
    }
    let target = match segs.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["api", "v1", ..] => parse_target("", &segs[2..]),
        ["apis", "apps", "v1", ..] => parse_target("apps", &segs[3..]),
        _ => return false,
    };
    target.is_ok_and(|t| !matches!(t.resource, Resource::Namespaces | Resource::Services))
}

/// Serve one connection with the real router and send `request` on it;
/// the answer's status and body (`None` when the body did not end), or
/// `None` when hyper itself refused the request (its own framing limits).
async fn exchange(
    state: std::sync::Arc<crate::state::State>,
    request: Request<Full<Bytes>>,
) -> Option<(StatusCode, Option<Bytes>)> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let io = state.conns.wrap(server_io);
    let conn = io.state();
    let service = service_fn(move |req| {
        let (state, conn) = (state.clone(), conn.clone());
        async move { Ok::<_, Infallible>(router::route(state, conn, req).await) }
    });
    let server = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let (mut sender, client) = hyper::client::conn::http1::handshake(TokioIo::new(client_io))
        .await
        .expect("an in-memory HTTP/1.1 handshake");
    let ask = async move {
        let response = sender.send_request(request).await.ok()?;
        let status = response.status();
        Some((status, read_body(response.into_body()).await))
    };
    // One future, so a panic in the router unwinds through this call.
    let (_, _, answer) = tokio::join!(server, client, ask);
    answer
}

/// The whole body if it ends soon (bounded), else `None`.
async fn read_body(mut body: hyper::body::Incoming) -> Option<Bytes> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(STREAM_WAIT, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                    if out.len() > MAX_BODY {
                        return None;
                    }
                }
            }
            Ok(None) => return Some(Bytes::from(out)),
            Ok(Some(Err(_))) | Err(_) => return None,
        }
    }
}

/// Every complete error answer is a JSON `Status` carrying its code.
fn check(summary: &str, status: StatusCode, body: Option<&Bytes>) {
    let Some(body) = body else {
        return;
    };
    if !(status.is_client_error() || status.is_server_error()) || summary.starts_with("HEAD ") {
        return;
    }
    let json: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{summary}: {status} with a body that is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(json["kind"], "Status", "{summary}: {status} {json}");
    assert_eq!(json["status"], "Failure", "{summary}: {status} {json}");
    assert_eq!(
        json["code"].as_u64(),
        Some(u64::from(status.as_u16())),
        "{summary}: {status} {json}"
    );
}
