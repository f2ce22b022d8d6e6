//! Opening a fresh TCP (+TLS) connection to the API server for one upgrade.
//!
//! Upgrades never share the pooled connections of ordinary requests, and the
//! TLS handshake offers no ALPN, as kubectl does (PROTOCOLS.md §1): a server
//! that would pick `h2` could not answer an HTTP/1.1 upgrade.
//!
//! When the configuration names a proxy (see `proxy::select`), the TCP
//! stream goes through it first and TLS to the API server runs inside the
//! tunnel, as for kube's ordinary requests.

use std::sync::Arc;
use std::time::Duration;

use kube::client::ConfigExt;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::tunnel::{bracket, ProxyHop};
use crate::error::{Error, Result};

/// A byte stream to the server: TLS, or plain TCP for `http://` clusters.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Where and how to dial; built once per [`Client`](crate::Client).
pub(crate) struct Dialer {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    proxy: Option<Proxied>,
    connect_timeout: Duration,
}

/// A proxy hop, and for an `https://` proxy the TLS settings to reach it
/// (the cluster's, as kube uses for its proxy connection).
struct Proxied {
    hop: ProxyHop,
    tls: Option<(TlsConnector, ServerName<'static>)>,
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
        let tls = if https {
            let name = config
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host.clone());
            Some(tls_to(config, name)?)
        } else {
            None
        };
        let proxy = match &config.proxy_url {
            Some(uri) => {
                let hop = ProxyHop::new(uri).map_err(|e| Error::InvalidRequest(e.to_string()))?;
                let tls = if hop.is_tls() {
                    Some(tls_to(config, hop.host().to_owned())?)
                } else {
                    None
                };
                tracing::debug!(proxy = %hop, "streaming connections go through a proxy");
                Some(Proxied { hop, tls })
            }
            None => None,
        };
        Ok(Self {
            host,
            port,
            tls,
            proxy,
            connect_timeout: config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        })
    }

    /// The `Host` header value for requests on this connection.
    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", bracket(&self.host), self.port)
    }

    /// Open a new connection.
    pub(crate) async fn dial(&self) -> Result<Box<dyn Io>> {
        let connect = async {
            let stream = self.stream().await?;
            match &self.tls {
                Some((connector, name)) => {
                    let tls = connector.connect(name.clone(), stream).await?;
                    Ok::<Box<dyn Io>, std::io::Error>(Box::new(tls))
                }
                None => Ok(stream),
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

    /// The byte stream to the server before its TLS: direct TCP, or a
    /// tunnel through the proxy.
    async fn stream(&self) -> std::io::Result<Box<dyn Io>> {
        let Some(Proxied { hop, tls }) = &self.proxy else {
            return Ok(Box::new(nodelay(
                TcpStream::connect((self.host.as_str(), self.port)).await?,
            )?));
        };
        if hop.is_socks() {
            return Ok(Box::new(nodelay(hop.socks5(&self.host, self.port).await?)?));
        }
        let tcp = nodelay(hop.dial_proxy().await?)?;
        match tls {
            Some((connector, name)) => {
                let mut io = connector.connect(name.clone(), tcp).await?;
                hop.connect(&mut io, &self.authority()).await?;
                Ok(Box::new(io))
            }
            None => {
                let mut io = tcp;
                hop.connect(&mut io, &self.authority()).await?;
                Ok(Box::new(io))
            }
        }
    }
}

/// Interactive traffic: small frames must not wait for Nagle.
fn nodelay(tcp: TcpStream) -> std::io::Result<TcpStream> {
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// A TLS connector with the cluster's settings, offering no ALPN, for `name`.
fn tls_to(config: &kube::Config, name: String) -> Result<(TlsConnector, ServerName<'static>)> {
    let mut tls = config.rustls_client_config().map_err(Error::Settings)?;
    tls.alpn_protocols.clear();
    let name = ServerName::try_from(name)
        .map_err(|e| Error::InvalidRequest(format!("TLS server name: {e}")))?;
    Ok((TlsConnector::from(Arc::new(tls)), name))
}
