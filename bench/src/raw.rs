//! The raw ceiling: the bytes of the exec stdout scenario (`head -c N
//! /dev/zero` in a process) sent over one plain TLS connection on loopback
//! with no Kubernetes framing. The server is this harness re-executed
//! (`raw-server`), so its CPU share is measured like the sandbox's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;

use crate::process::Lines;
use crate::tools::Tools;

/// Copy chunk: large, as the sandbox reads pipes in large chunks.
const CHUNK: usize = 256 * 1024;

/// A running raw-ceiling server process; killed on drop.
pub struct RawServer {
    child: Child,
    port: u16,
    cert: CertificateDer<'static>,
}

impl RawServer {
    /// Writes a fresh self-signed certificate under `dir` and starts the server.
    pub async fn start(tools: &Tools, dir: &Path) -> Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let cert_path = dir.join("raw-cert.der");
        let key_path = dir.join("raw-key.der");
        std::fs::write(&cert_path, certified.cert.der())?;
        std::fs::write(&key_path, certified.signing_key.serialize_der())?;
        let mut child = tools
            .helper()
            .arg("raw-server")
            .arg("--cert")
            .arg(&cert_path)
            .arg("--key")
            .arg(&key_path)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting raw-server")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("raw-server stdout not piped"))?;
        let line = Lines::new(stdout)
            .until(Duration::from_secs(10), "raw-server port", |l| {
                l.starts_with("listening ")
            })
            .await?;
        let port = line.trim_start_matches("listening ").trim().parse()?;
        Ok(Self {
            child,
            port,
            cert: certified.cert.der().clone(),
        })
    }

    /// The server's pid (for its CPU share).
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Receives `bytes` bytes of zeros over one TLS connection; returns the
    /// count received (the caller checks it).
    pub async fn download(&self, bytes: u64) -> Result<u64> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        tls.write_all(&bytes.to_be_bytes()).await?;
        tls.flush().await?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match tls.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                // The server may close without close_notify once done.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(total)
    }
}

/// The `raw-server` helper: prints `listening PORT`, then for each TLS
/// connection reads a big-endian u64 N and streams `head -c N /dev/zero`.
pub async fn serve(cert: PathBuf, key: PathBuf) -> Result<()> {
    let cert = CertificateDer::from(std::fs::read(cert)?);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(key)?));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(e) = stream_zeros(acceptor, tcp).await {
                eprintln!("raw-server: {e:#}");
            }
        });
    }
}

async fn stream_zeros(acceptor: tokio_rustls::TlsAcceptor, tcp: TcpStream) -> Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    let bytes = tls.read_u64().await?;
    let mut head = tokio::process::Command::new("head")
        .args(["-c", &bytes.to_string(), "/dev/zero"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut pipe = head
        .stdout
        .take()
        .ok_or_else(|| anyhow!("head stdout not piped"))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        tls.write_all(&buf[..n]).await?;
    }
    tls.shutdown().await?;
    if !head.wait().await?.success() {
        bail!("head failed");
    }
    Ok(())
}
