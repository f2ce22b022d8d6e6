//! Opening a fresh TCP (+TLS) connection to the API server for one upgrade.
//!
//! Upgrades never share the pooled connections of ordinary requests, and the
//! TLS handshake offers no ALPN, as kubectl does (PROTOCOLS.md §1): a server
//! that would pick `h2` could not answer an HTTP/1.1 upgrade.

use std::sync::Arc;
use std::time::Duration;

use kube::client::ConfigExt;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// A byte stream to the server: TLS, or plain TCP for `http://` clusters.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Where and how to dial; built once per [`Client`](crate::Client).
pub(crate) struct Dialer {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
}

/// Bound on TCP connect + TLS handshake when the config sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Dialer {
    pub(crate) fn new(config: &kube::Config) -> Result<Self> {
        let url = &config.cluster_url;
        let https = match url.scheme_str() {
            Some("https") | None => true,
            Some("http") => false,
            Some(other) => {
                return Err(Error::InvalidRequest(format!(
                    "unsupported cluster URL scheme {other:?}"
                )))
            }
        };
        let host = url
            .host()
            .ok_or_else(|| Error::InvalidRequest(format!("cluster URL {url} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        if config.proxy_url.is_some() {
            tracing::warn!("the kubeconfig names a proxy; streaming connections go direct");
        }
        let tls = if https {
            let mut tls = config.rustls_client_config().map_err(Error::Settings)?;
            tls.alpn_protocols.clear();
            let name = config
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host.clone());
            let name = ServerName::try_from(name)
                .map_err(|e| Error::InvalidRequest(format!("TLS server name: {e}")))?;
            Some((TlsConnector::from(Arc::new(tls)), name))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            tls,
            connect_timeout: config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        })
    }

    /// The `Host` header value for requests on this connection.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Open a new connection.
    pub(crate) async fn dial(&self) -> Result<Box<dyn Io>> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            // Interactive traffic: small frames must not wait for Nagle.
            tcp.set_nodelay(true)?;
            match &self.tls {
                Some((connector, name)) => {
                    let tls = connector.connect(name.clone(), tcp).await?;
                    Ok::<Box<dyn Io>, std::io::Error>(Box::new(tls))
                }
                None => Ok(Box::new(tcp) as Box<dyn Io>),
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(io)) => Ok(io),
            Ok(Err(source)) => Err(Error::Connect {
                url: self.authority(),
                source,
            }),
            Err(_) => Err(Error::Connect {
                url: self.authority(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.connect_timeout),
                ),
            }),
        }
    }
}
