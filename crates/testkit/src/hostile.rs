//! [`HostileServer`]: a TLS API server on loopback that misbehaves on purpose,
//! one [`Scenario`] per server, so that tests can check that the client
//! answers every kind of abuse with a typed error, in bounded time and
//! memory, and never panics.
//!
//! It speaks just enough HTTP/1.1 for the client: `GET` of pod `demo`
//! (Running), an empty pod list, and the upgrade and watch endpoints, which
//! misbehave as the scenario says. Every byte it sends is written here by
//! hand, because a well-behaved library would refuse to send most of them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use podlink_proto::spdy::SPDY3_DICTIONARY_ADLER32;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How the server misbehaves on its upgrade and watch endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Answers an upgrade with 101 but names no subprotocol.
    NoProtocol,
    /// Answers an upgrade with 101 naming a subprotocol nobody offered.
    WrongProtocol,
    /// Upgrades properly, then sends bytes that are no valid frame and keeps
    /// the connection open (so only the parser can end the session).
    GarbageFrames,
    /// Upgrades properly, then sends a frame header announcing far more than
    /// follows, and closes the connection.
    TruncatedFrame,
    /// SPDY: upgrades properly, then sends a `SYN_STREAM` whose header block
    /// inflates to [`BOMB_INFLATED`] bytes, and keeps the connection open.
    ZlibBomb,
    /// SPDY: upgrades properly, then sends a `SYN_STREAM` whose header block
    /// announces `u32::MAX` headers, and keeps the connection open.
    EndlessHeaders,
    /// WebSocket v5: upgrades properly, then reports an exit code no integer
    /// type holds, and closes the session.
    AbsurdExitCode,
    /// Watch: answers 200 and sends a line that is not JSON, then holds.
    WatchGarbage,
    /// Watch: answers 200 and starts an event that never ends: up to
    /// [`GIGANTIC_EVENT`] bytes without a newline, then holds.
    WatchGigantic,
}

/// What the zlib bomb inflates to: 1 GiB of zeros.
pub const BOMB_INFLATED: usize = 1 << 30;

/// How much of the never-ending watch event is sent at most (64 MiB).
pub const GIGANTIC_EVENT: usize = 64 << 20;

/// How long a connection is held open after misbehaving; longer than any
/// test waits, so that an error cannot come from the connection ending.
const HOLD: Duration = Duration::from_secs(120);

/// The most a request head may take.
const MAX_HEAD: usize = 16 * 1024;

/// Starting the server failed (certificates, bind, kubeconfig).
#[derive(Debug, thiserror::Error)]
#[error("starting the hostile server: {0}")]
pub struct StartError(String);

fn start_error(e: impl std::fmt::Display) -> StartError {
    StartError(e.to_string())
}

/// A hostile API server on `127.0.0.1:0`; dropping it stops it, closes its
/// connections and removes its kubeconfig.
#[derive(Debug)]
pub struct HostileServer {
    url: String,
    dir: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl HostileServer {
    /// Starts a server playing `scenario` on the current tokio runtime and
    /// writes a kubeconfig for it (context `hostile`, namespace `default`).
    ///
    /// # Errors
    /// Generating the certificates, binding or writing files failed.
    pub async fn start(scenario: Scenario) -> Result<Self, StartError> {
        let (ca_pem, tls) = tls_config()?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(start_error)?;
        let port = listener.local_addr().map_err(start_error)?.port();
        let url = format!("https://127.0.0.1:{port}");
        let dir = tempfile::tempdir().map_err(start_error)?;
        write_kubeconfig(dir.path(), &url, &ca_pem)?;
        if scenario == Scenario::ZlibBomb {
            // Writing 4 million symbols takes a moment: before any client waits.
            tokio::task::spawn_blocking(bomb_frame)
                .await
                .map_err(start_error)?;
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let task = tokio::spawn(async move {
            // Aborting this task drops the set, which aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                connections.spawn(serve(acceptor, tcp, scenario));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self { url, dir, task })
    }

    /// The server's base URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Path of the kubeconfig pointing at this server.
    #[must_use]
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA and a leaf for `127.0.0.1`; the CA in PEM for the kubeconfig.
fn tls_config() -> Result<(String, Arc<rustls::ServerConfig>), StartError> {
    let ca_key = KeyPair::generate().map_err(start_error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(start_error)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(start_error)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().map_err(start_error)?;
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .and_then(|params| params.signed_by(&leaf_key, &issuer))
        .map_err(start_error)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(start_error)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .map_err(start_error)?;
    // HTTP/1.1 only: every answer here is hand-written HTTP/1.1.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca_cert.pem(), Arc::new(server)))
}

fn write_kubeconfig(dir: &Path, url: &str, ca_pem: &str) -> Result<(), StartError> {
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, ca_pem).map_err(start_error)?;
    let mut file = std::fs::File::create(dir.join("kubeconfig")).map_err(start_error)?;
    write!(
        file,
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: hostile\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\n\
         users:\n- name: hostile\n  user:\n    token: hostile\n\
         contexts:\n- name: hostile\n  context:\n    cluster: hostile\n    user: hostile\n    namespace: default\n\
         current-context: hostile\n",
        ca = ca.display()
    )
    .map_err(start_error)
}

/// The parts of a request head the server looks at.
struct Request {
    path: String,
    upgrade: Option<String>,
    ws_key: Option<String>,
    /// Subprotocols offered, in order, from either protocol header.
    offered: Vec<String>,
}

async fn serve(acceptor: tokio_rustls::TlsAcceptor, tcp: TcpStream, scenario: Scenario) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Some(request) = read_head(&mut tls).await else {
        return;
    };
    // Write errors only mean the client gave up, which is what tests expect.
    let _ = respond(&mut tls, &request, scenario).await;
}

/// Reads one request head (bounded by [`MAX_HEAD`]) and parses it.
async fn read_head(io: &mut (impl AsyncRead + Unpin)) -> Option<Request> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return None;
        }
        // One byte at a time past the first read would be slow; a client
        // sends nothing after the head before our answer, so reading in
        // chunks cannot swallow a body we would need.
        let n = io.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let mut request = Request {
        path,
        upgrade: None,
        ws_key: None,
        offered: Vec::new(),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => request.upgrade = Some(value.to_owned()),
            "sec-websocket-key" => request.ws_key = Some(value.to_owned()),
            "sec-websocket-protocol" => request
                .offered
                .extend(value.split(',').map(|p| p.trim().to_owned())),
            "x-stream-protocol-version" => request.offered.push(value.to_owned()),
            _ => {}
        }
    }
    Some(request)
}

async fn respond(
    io: &mut (impl AsyncRead + AsyncWrite + Unpin),
    request: &Request,
    scenario: Scenario,
) -> std::io::Result<()> {
    let websocket = match request.upgrade.as_deref() {
        Some(u) if u.eq_ignore_ascii_case("websocket") => true,
        Some(_) => false,
        None if request.path.contains("watch=") => return watch(io, scenario).await,
        None if request
            .path
            .starts_with("/api/v1/namespaces/default/pods/demo") =>
        {
            return json(io, &pod_json()).await
        }
        None if request.path.starts_with("/api/v1/namespaces/default/pods") => {
            let list = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#;
            return json(io, list).await;
        }
        None => {
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            io.write_all(head.as_bytes()).await?;
            io.write_all(body.as_bytes()).await?;
            return io.shutdown().await;
        }
    };
    let chosen = match scenario {
        Scenario::NoProtocol => None,
        Scenario::WrongProtocol => Some("v99.hostile.k8s.io".to_owned()),
        _ => request.offered.first().cloned(),
    };
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n");
    if websocket {
        let key = request.ws_key.as_deref().unwrap_or_default();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        head.push_str(&format!(
            "Upgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n"
        ));
        if let Some(p) = &chosen {
            head.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
    } else {
        head.push_str("Upgrade: SPDY/3.1\r\n");
        if let Some(p) = &chosen {
            head.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
        }
    }
    head.push_str("\r\n");
    io.write_all(head.as_bytes()).await?;
    io.flush().await?;
    let (mut reader, mut writer) = tokio::io::split(io);
    // Drain whatever the client sends so that its writes never block; the
    // misbehaviour is ours alone. Both halves are bounded by HOLD.
    let drain = async {
        let mut sink = vec![0u8; 16 * 1024];
        while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let misbehave = async {
        match (scenario, websocket) {
            (Scenario::GarbageFrames, true) => {
                // Opcode 0x3 is reserved: no WebSocket endpoint may accept it.
                writer.write_all(&[0x83, 0x02, 0xde, 0xad]).await?;
            }
            (Scenario::GarbageFrames, false) => {
                // A SYN_STREAM control frame two bytes long: too short for its fields.
                writer
                    .write_all(&[0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0xde, 0xad])
                    .await?;
            }
            (Scenario::TruncatedFrame, true) => {
                // A binary message announcing 65535 bytes, then ten and EOF.
                writer.write_all(&[0x82, 0x7e, 0xff, 0xff]).await?;
                writer.write_all(&[1; 10]).await?;
                return writer.shutdown().await;
            }
            (Scenario::TruncatedFrame, false) => {
                // A data frame for stream 1 announcing 1 MiB, then ten and EOF.
                writer
                    .write_all(&[0, 0, 0, 1, 0x00, 0x10, 0x00, 0x00])
                    .await?;
                writer.write_all(&[1; 10]).await?;
                return writer.shutdown().await;
            }
            (Scenario::ZlibBomb, false) => writer.write_all(bomb_frame()).await?,
            (Scenario::EndlessHeaders, false) => {
                writer.write_all(&endless_headers_frame()).await?;
            }
            (Scenario::AbsurdExitCode, true) => {
                let status = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: 184467440737095516160000","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"184467440737095516160000"}]}}"#;
                let mut frame = vec![0x82, 0x7e];
                let len = u16::try_from(status.len() + 1).unwrap_or(u16::MAX);
                frame.extend_from_slice(&len.to_be_bytes());
                frame.push(3); // the error channel
                frame.extend_from_slice(status.as_bytes());
                // Close frame, code 1000.
                frame.extend_from_slice(&[0x88, 0x02, 0x03, 0xe8]);
                writer.write_all(&frame).await?;
            }
            // The negotiation scenarios did their harm in the head; others
            // do not apply to this transport and simply hold.
            _ => {}
        }
        writer.flush().await?;
        tokio::time::sleep(HOLD).await;
        Ok(())
    };
    let (_, result) = tokio::join!(tokio::time::timeout(HOLD, drain), misbehave);
    result
}

async fn json(io: &mut (impl AsyncWrite + Unpin), body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    io.write_all(head.as_bytes()).await?;
    io.write_all(body.as_bytes()).await?;
    io.shutdown().await
}

fn pod_json() -> String {
    serde_json::json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "demo", "namespace": "default", "resourceVersion": "1", "uid": "hostile-demo"},
        "spec": {"containers": [{"name": "main", "image": "hostile"}]},
        "status": {"phase": "Running"},
    })
    .to_string()
}

/// A chunked 200 watch answer that misbehaves, then holds the connection.
async fn watch(io: &mut (impl AsyncWrite + Unpin), scenario: Scenario) -> std::io::Result<()> {
    io.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await?;
    match scenario {
        Scenario::WatchGarbage => chunk(io, b"this is {not json\n").await?,
        Scenario::WatchGigantic => {
            chunk(
                io,
                br#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x","annotations":{"a":""#,
            )
            .await?;
            let filler = vec![b'a'; 64 * 1024];
            for _ in 0..GIGANTIC_EVENT / filler.len() {
                chunk(io, &filler).await?;
            }
        }
        _ => {}
    }
    io.flush().await?;
    tokio::time::sleep(HOLD).await;
    Ok(())
}

async fn chunk(io: &mut (impl AsyncWrite + Unpin), data: &[u8]) -> std::io::Result<()> {
    io.write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    io.write_all(data).await?;
    io.write_all(b"\r\n").await
}

/// A SPDY/3 `SYN_STREAM` (stream 2, as a server would open) whose header
/// block inflates to [`BOMB_INFLATED`] zero bytes. Built once per test binary.
fn bomb_frame() -> &'static [u8] {
    static FRAME: OnceLock<Vec<u8>> = OnceLock::new();
    FRAME.get_or_init(|| syn_stream(&bomb_block()))
}

/// A SPDY/3 `SYN_STREAM` for stream 2 carrying `block` as its header block.
fn syn_stream(block: &[u8]) -> Vec<u8> {
    let length = u32::try_from(block.len() + 10).unwrap_or(u32::MAX) & 0x00ff_ffff;
    let mut frame = vec![0x80, 0x03, 0x00, 0x01]; // control, version 3, SYN_STREAM
    frame.extend_from_slice(&length.to_be_bytes()); // flags 0, 24-bit length
    frame.extend_from_slice(&2u32.to_be_bytes()); // stream id
    frame.extend_from_slice(&0u32.to_be_bytes()); // associated stream
    frame.extend_from_slice(&[0, 0]); // priority, slot
    frame.extend_from_slice(block);
    frame
}

/// A header block announcing `u32::MAX` name/value pairs and carrying one:
/// an endless header list that must be refused by its count, not read on.
fn endless_headers_frame() -> Vec<u8> {
    let mut layout = u32::MAX.to_be_bytes().to_vec();
    for field in [b"name", b"text"] {
        layout.extend_from_slice(&4u32.to_be_bytes());
        layout.extend_from_slice(field);
    }
    let mut bits = zlib_writer();
    bits.put(0, 3); // BFINAL = 0, BTYPE = stored
    bits.flush();
    let len = u16::try_from(layout.len()).unwrap_or(u16::MAX);
    bits.out.extend_from_slice(&len.to_le_bytes());
    bits.out.extend_from_slice(&(!len).to_le_bytes());
    bits.out.extend_from_slice(&layout);
    syn_stream(&bits.out)
}

/// A zlib stream header naming the SPDY/3 dictionary, as a real peer's.
fn zlib_writer() -> BitWriter {
    let mut out = vec![0x78, 0xf9];
    out.extend_from_slice(&SPDY3_DICTIONARY_ADLER32.to_be_bytes());
    BitWriter {
        out,
        acc: 0,
        used: 0,
    }
}

/// The bomb's zlib stream, written symbol by symbol rather than deflated
/// (deflating 1 GiB takes minutes in a debug build): the SPDY/3 dictionary
/// header as a real peer's, one fixed-Huffman block holding a literal zero
/// and then length-258, distance-1 copies of it, and a sync flush. About
/// 6.5 MiB, inside the 16 MiB frame limit, so only the header-block limit
/// stands between the client and 1 GiB.
fn bomb_block() -> Vec<u8> {
    let mut bits = zlib_writer();
    bits.put(0, 1); // BFINAL = 0
    bits.put(1, 2); // BTYPE = fixed Huffman
    bits.put_code(0x30, 8); // literal 0
    for _ in 0..(BOMB_INFLATED - 1) / 258 {
        bits.put_code(0xc5, 8); // length symbol 285 = 258 bytes
        bits.put_code(0, 5); // distance code 0 = 1 byte back
    }
    bits.put_code(0, 7); // end of block (symbol 256)
    bits.put(0, 3); // an empty stored block: the sync flush marker
    bits.flush();
    bits.out.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    bits.out
}

/// Deflate's bit order: fields least significant bit first, Huffman codes
/// most significant bit first.
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    used: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.acc |= ((value >> i) & 1) << self.used;
            self.used += 1;
            if self.used == 8 {
                self.flush();
            }
        }
    }

    fn put_code(&mut self, code: u32, count: u32) {
        self.put(code.reverse_bits() >> (32 - count), count);
    }

    /// Writes out a partial byte, zero-padded.
    fn flush(&mut self) {
        if self.used > 0 {
            self.out.push(self.acc.to_le_bytes()[0]);
            self.acc = 0;
            self.used = 0;
        }
    }
}
