//! The streaming server against raw clients (podlink-proto's SPDY machine in
//! the client role, tungstenite): behaviour kubectl cannot show, such as a
//! refused port failing only its own pair, and bad input ending only the
//! offending stream or session while others keep working.

mod stream_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use podlink_proto::spdy::{Config, Connection, Event, Headers, Role, StreamId};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use stream_support::{show, Env, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A TLS connection to the sandbox, trusting only its CA.
async fn tls(env: &Env) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(env.sandbox.ca_pem().as_bytes()).expect("CA PEM");
    roots.add(ca).expect("CA added");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(env.sandbox.addr())
        .await
        .expect("connect");
    let name = ServerName::IpAddress(env.sandbox.addr().ip().into());
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// POSTs a SPDY upgrade and returns the connection after the 101 head.
async fn spdy_upgrade(env: &Env, path: &str, protocol: &str) -> TlsStream<TcpStream> {
    let mut io = tls(env).await;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\n\
         Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n",
        env.sandbox.addr(),
        env.sandbox.token()
    );
    io.write_all(request.as_bytes())
        .await
        .expect("send request");
    // The server sends nothing after the head until the client's first
    // frame, so reading byte by byte cannot swallow SPDY bytes.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 8192, "response head too long");
        head.push(io.read_u8().await.expect("read response head"));
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&protocol.to_ascii_lowercase()),
        "{head}"
    );
    io
}

/// A SPDY client session in the test, driven by hand.
struct Spdy {
    conn: Connection,
    io: TlsStream<TcpStream>,
    events: Vec<Event>,
    closed: bool,
}

impl Spdy {
    fn new(io: TlsStream<TcpStream>) -> Self {
        Self {
            conn: Connection::new(Role::Client, Config::default(), std::time::Instant::now()),
            io,
            events: Vec::new(),
            closed: false,
        }
    }

    async fn flush(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit() {
            self.io.write_all(&bytes).await.expect("write");
        }
        self.io.flush().await.expect("flush");
    }

    /// Reads until `done` holds over the events seen so far (bounded).
    async fn until(&mut self, done: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        let mut buf = vec![0u8; 65536];
        while !done(&self.events) {
            self.flush().await;
            assert!(!self.closed, "session closed early: {:?}", self.events);
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.io.read(&mut buf))
                .await
                .expect("server answers in time")
                .unwrap_or(0);
            if n == 0 {
                self.closed = true;
                continue;
            }
            self.conn
                .handle_input(&buf[..n])
                .expect("valid SPDY from server");
            while let Some(event) = self.conn.poll_event() {
                self.events.push(event);
            }
        }
    }

    fn open(&mut self, headers: Headers) -> StreamId {
        self.conn.open_stream(&headers, false).expect("open stream")
    }

    fn data_of(&self, id: StreamId) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Data { id: i, bytes } if *i == id => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

fn ended(events: &[Event], id: StreamId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Finished { id: i } | Event::Reset { id: i, .. } if *i == id))
}

fn pf_headers(kind: &str, port: u16, request: u32) -> Headers {
    Headers::new()
        .with("streamtype", kind)
        .with("port", port.to_string())
        .with("requestid", request.to_string())
}

async fn web_pod(env: &Env) {
    env.create_pod(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{
            "name": "web",
            "image": "python",
            "command": ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"],
        }]},
    }))
    .await;
    let probe = "import socket; socket.create_connection(('127.0.0.1', 8080)).close()";
    for _ in 0..300 {
        let out = env
            .run(true, &["exec", "web", "--", "python3", "-c", probe], None)
            .await;
        if out.status.success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("web never listened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_port_fails_only_its_own_pair() {
    let env = Env::start().await;
    web_pod(&env).await;
    let io = spdy_upgrade(
        &env,
        "/api/v1/namespaces/default/pods/web/portforward",
        "portforward.k8s.io",
    )
    .await;
    let mut spdy = Spdy::new(io);

    // A pair to a closed port: error text on its error stream, its data
    // stream ends, and the session stays up.
    let bad_error = spdy.open(pf_headers("error", 9999, 0));
    spdy.conn.close(bad_error).expect("half-close error stream");
    let bad_data = spdy.open(pf_headers("data", 9999, 0));
    spdy.until(|e| ended(e, bad_error) && ended(e, bad_data))
        .await;
    let text = String::from_utf8_lossy(&spdy.data_of(bad_error)).to_string();
    assert!(
        text.starts_with("error forwarding port 9999 to pod "),
        "{text}"
    );

    // The next pair on the same session works.
    let good_error = spdy.open(pf_headers("error", 8080, 1));
    spdy.conn
        .close(good_error)
        .expect("half-close error stream");
    let good_data = spdy.open(pf_headers("data", 8080, 1));
    spdy.conn
        .send_data(
            good_data,
            Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n"),
            true,
        )
        .expect("send request");
    spdy.until(|e| ended(e, good_data) && ended(e, good_error))
        .await;
    let response = String::from_utf8_lossy(&spdy.data_of(good_data)).to_string();
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(spdy.data_of(good_error).is_empty());

    // A stream without a valid port is reset alone.
    let invalid = spdy.open(Headers::new().with("streamtype", "data").with("port", "0"));
    spdy.until(|e| ended(e, invalid)).await;

    // Pings are answered.
    spdy.conn.ping(std::time::Instant::now()).expect("ping");
    spdy.until(|e| e.iter().any(|e| matches!(e, Event::Pong { .. })))
        .await;
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_spdy_ends_only_that_session() {
    let env = Env::start().await;
    let path = "/api/v1/namespaces/default/pods/demo/exec?command=cat&stdin=true&stdout=true";
    // A SYN_STREAM whose header block is not zlib: the server goes away.
    let mut io = spdy_upgrade(&env, path, "v4.channel.k8s.io").await;
    let garbage = [
        0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, // SYN_STREAM, length 14
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ids, priority
        0xde, 0xad, 0xbe, 0xef, // not a zlib stream
    ];
    io.write_all(&garbage).await.expect("send garbage");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, io.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "server kept a corrupt session open");

    // A frame announcing a length past the limit: same.
    let mut io = spdy_upgrade(&env, path, "v4.channel.k8s.io").await;
    io.write_all(&[0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff, 0x00])
        .await
        .expect("send bad length");
    io.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, io.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "server kept a truncated session open");

    // Other sessions are unaffected.
    for ws in [true, false] {
        let out = env
            .run(ws, &["exec", "demo", "--", "echo", "still"], None)
            .await;
        assert_eq!(out.stdout, b"still\n", "{}", show(&out));
    }
    env.sandbox.shutdown().await;
}

async fn ws_connect(
    env: &Env,
    path: &str,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>> {
    let url = format!("wss://{}{path}", env.sandbox.addr());
    let mut request = url.into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert(
        "authorization",
        format!("Bearer {}", env.sandbox.token())
            .parse()
            .expect("header"),
    );
    headers.insert("sec-websocket-protocol", protocol.parse().expect("header"));
    let io = tls(env).await;
    let (ws, response) = tokio_tungstenite::client_async(request, io)
        .await
        .expect("websocket upgrade");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        protocol,
        "negotiated"
    );
    ws
}

/// Reads channel messages until the server's close; returns (stdout, status).
async fn ws_collect(
    ws: &mut tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>,
) -> (Vec<u8>, Vec<u8>) {
    let (mut stdout, mut status) = (Vec::new(), Vec::new());
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("server answers in time");
        match message {
            Some(Ok(Message::Binary(bytes))) => match bytes.first() {
                Some(1) => stdout.extend_from_slice(&bytes[1..]),
                Some(3) => status.extend_from_slice(&bytes[1..]),
                _ => {}
            },
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("websocket error: {error}"),
            None => break,
        }
    }
    (stdout, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_bad_input_is_ignored_or_ends_with_a_status() {
    let env = Env::start().await;
    let path =
        "/api/v1/namespaces/default/pods/demo/exec?command=cat&stdin=true&stdout=true&tty=false";

    // Unknown channels, empty messages and an oversized resize are ignored;
    // stdin still flows and the half-close ends the command normally.
    let mut ws = ws_connect(&env, path, "v5.channel.k8s.io").await;
    let mut huge_resize = vec![4u8];
    huge_resize.extend(std::iter::repeat_n(b'{', 10_000));
    for message in [
        vec![9u8, 1, 2, 3],
        vec![],
        huge_resize,
        vec![1u8, b'x'],
        b"\x00abc".to_vec(),
        vec![0xff, 0x00],
        b"\x00after-close".to_vec(),
    ] {
        ws.send(Message::Binary(Bytes::from(message)))
            .await
            .expect("send");
    }
    let (stdout, status) = ws_collect(&mut ws).await;
    assert_eq!(stdout, b"abc");
    assert_eq!(status, br#"{"metadata":{},"status":"Success"}"#.to_vec());

    // A malformed close message ends the session with a Status.
    let mut ws = ws_connect(&env, path, "v5.channel.k8s.io").await;
    ws.send(Message::Binary(Bytes::from_static(&[0xff, 0x00, 0x00])))
        .await
        .expect("send");
    let (_, status) = ws_collect(&mut ws).await;
    let status: serde_json::Value = serde_json::from_slice(&status).expect("status JSON");
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["code"], 400, "{status}");

    // Bad base64 on a base64 protocol: the same.
    let mut ws = ws_connect(&env, path, "v4.base64.channel.k8s.io").await;
    ws.send(Message::text("0!!!")).await.expect("send");
    let mut saw_failure = false;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(DEADLINE, ws.next()).await {
        if let Message::Text(text) = message {
            saw_failure |= text.starts_with('3');
        }
    }
    assert!(saw_failure, "no status after bad base64");

    // A client that never reads: the server blocks that session only.
    let flood =
        "/api/v1/namespaces/default/pods/demo/exec?command=cat&command=/dev/zero&stdout=true";
    let stalled = ws_connect(&env, flood, "v5.channel.k8s.io").await;
    for ws in [true, false] {
        let out = env
            .run(ws, &["exec", "demo", "--", "echo", "still"], None)
            .await;
        assert_eq!(out.stdout, b"still\n", "{}", show(&out));
    }
    drop(stalled);
    env.sandbox.shutdown().await;
}

/// Sends one request with upgrade headers and reads the whole refusal.
async fn refusal(env: &Env, path: &str, upgrade: &str) -> String {
    let mut io = tls(env).await;
    let extra = if upgrade == "websocket" {
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
    } else {
        "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\n{extra}\r\n",
        env.sandbox.addr(),
        env.sandbox.token()
    );
    io.write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // The refusal is a complete response; read until its JSON body ends.
    while !response.ends_with(b"}") {
        let n = tokio::time::timeout(DEADLINE, io.read(&mut buf))
            .await
            .expect("server answers in time")
            .expect("read");
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_selection_errors_before_the_upgrade() {
    let env = Env::start().await;
    env.create_pod(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "two"},
        "spec": {"containers": [
            {"name": "a", "image": "busybox", "command": ["sleep", "3600"]},
            {"name": "b", "image": "busybox", "command": ["sleep", "3600"]},
        ]},
    }))
    .await;
    for upgrade in ["websocket", "spdy"] {
        let ambiguous = refusal(
            &env,
            "/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true",
            upgrade,
        )
        .await;
        assert!(ambiguous.starts_with("HTTP/1.1 400"), "{ambiguous}");
        assert!(
            ambiguous
                .contains("a container name must be specified for pod two, choose one of: [a b]"),
            "{ambiguous}"
        );
        let wrong = refusal(
            &env,
            "/api/v1/namespaces/default/pods/two/attach?container=c&stdout=true",
            upgrade,
        )
        .await;
        assert!(wrong.starts_with("HTTP/1.1 400"), "{wrong}");
        assert!(
            wrong.contains("container c is not valid for pod two"),
            "{wrong}"
        );
        let missing = refusal(
            &env,
            "/api/v1/namespaces/default/pods/nope/exec?command=true&stdout=true",
            upgrade,
        )
        .await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    }
    // kubectl shows the server's message (after falling back to SPDY).
    for ws in [true, false] {
        let out = env
            .run(ws, &["exec", "two", "-c", "c", "--", "true"], None)
            .await;
        assert!(!out.status.success(), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("container c is not valid for pod two"),
            "{}",
            show(&out)
        );
    }
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy_exec_status_per_protocol_version() {
    let env = Env::start().await;
    let path = "/api/v1/namespaces/default/pods/demo/exec?command=sh&command=-c&command=echo+out%3B+exit+3&stdout=true";
    for (protocol, json_status) in [
        ("v4.channel.k8s.io", true),
        ("v3.channel.k8s.io", false),
        ("v2.channel.k8s.io", false),
        ("channel.k8s.io", false),
    ] {
        let io = spdy_upgrade(&env, path, protocol).await;
        let mut spdy = Spdy::new(io);
        // The client's order: error first, then stdout; each is replied at once.
        let error = spdy.open(Headers::new().with("streamtype", "error"));
        spdy.until(|e| {
            e.iter()
                .any(|e| matches!(e, Event::Replied { id, .. } if *id == error))
        })
        .await;
        let stdout = spdy.open(Headers::new().with("streamtype", "stdout"));
        spdy.until(|e| ended(e, error) && ended(e, stdout)).await;
        assert_eq!(spdy.data_of(stdout), b"out\n", "{protocol}");
        let status = String::from_utf8_lossy(&spdy.data_of(error)).to_string();
        if json_status {
            let status: serde_json::Value = serde_json::from_str(&status).expect("JSON status");
            assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
            assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");
        } else {
            assert!(
                status.starts_with("command terminated with non-zero exit code")
                    && status.ends_with('3'),
                "{protocol}: {status}"
            );
        }
    }
    env.sandbox.shutdown().await;
}
