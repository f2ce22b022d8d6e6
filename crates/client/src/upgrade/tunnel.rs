//! The proxy hops of a streaming connection: an HTTP `CONNECT` tunnel (what
//! client-go does through an `http://` or `https://` proxy) or a SOCKS5
//! handshake (hyper-util's, the same code kube uses for ordinary requests).
//!
//! Credentials come from the proxy URL's userinfo and never appear in an
//! error or a log line: [`ProxyHop`] shows itself as `scheme://host:port`.

use std::io;

use base64::Engine;
use http::Uri;
use hyper_util::client::legacy::connect::proxy::SocksV5;
use hyper_util::client::legacy::connect::HttpConnector;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Most bytes of a proxy's answer to `CONNECT` we read before giving up.
const MAX_CONNECT_ANSWER: usize = 16 * 1024;

/// The proxy a [`Dialer`](super::dial::Dialer) goes through.
pub(crate) struct ProxyHop {
    uri: Uri,
    kind: Kind,
    /// `user:password`, percent-decoded.
    credentials: Option<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Https,
    Socks5,
}

impl std::fmt::Display for ProxyHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        write!(f, "{scheme}://{}:{}", self.host(), self.port())
    }
}

impl ProxyHop {
    /// A hop through `uri`, one of the schemes `proxy::select` accepts.
    pub(crate) fn new(uri: &Uri) -> io::Result<Self> {
        let kind = match uri.scheme_str() {
            Some("http") => Kind::Http,
            Some("https") => Kind::Https,
            Some("socks5") => Kind::Socks5,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "unsupported proxy scheme (use http, https or socks5)",
                ))
            }
        };
        let credentials = uri
            .authority()
            .and_then(|a| a.as_str().rsplit_once('@'))
            .map(|(userinfo, _)| {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
                (decode(user), decode(password))
            });
        Ok(Self {
            uri: uri.clone(),
            kind,
            credentials,
        })
    }

    /// True when the hop itself speaks TLS (an `https://` proxy).
    pub(crate) fn is_tls(&self) -> bool {
        self.kind == Kind::Https
    }

    /// The proxy's host name, for dialling it and for its TLS name.
    pub(crate) fn host(&self) -> &str {
        self.uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    fn port(&self) -> u16 {
        self.uri.port_u16().unwrap_or(match self.kind {
            Kind::Http => 80,
            Kind::Https => 443,
            Kind::Socks5 => 1080,
        })
    }

    /// Open TCP to the proxy itself (HTTP kinds; SOCKS dials in [`socks5`]).
    ///
    /// [`socks5`]: ProxyHop::socks5
    pub(crate) async fn dial_proxy(&self) -> io::Result<TcpStream> {
        TcpStream::connect((self.host(), self.port()))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("proxy {self}: {e}")))
    }

    /// True for a SOCKS5 hop.
    pub(crate) fn is_socks(&self) -> bool {
        self.kind == Kind::Socks5
    }

    /// A TCP stream to `host:port` through this SOCKS5 proxy; the proxy
    /// resolves the name, as client-go's SOCKS dialer lets it.
    pub(crate) async fn socks5(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        let target = format!("socks5://{}:{port}", bracket(host))
            .parse::<Uri>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        let proxy = format!("http://{}:{}", bracket(self.host()), self.port())
            .parse::<Uri>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut socks = SocksV5::new(proxy, connector);
        if let Some((user, password)) = &self.credentials {
            socks = socks.with_auth(user.clone(), password.clone());
        }
        let io = socks
            .oneshot(target)
            .await
            .map_err(|e| io::Error::other(format!("proxy {self}: SOCKS5: {e}")))?;
        Ok(io.into_inner())
    }

    /// Ask the HTTP proxy on `io` for a tunnel to `authority` and check that
    /// it agreed. Reads the answer byte by byte so that nothing of the
    /// server's own bytes is consumed.
    pub(crate) async fn connect<S>(&self, io: &mut S, authority: &str) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some((user, password)) = &self.credentials {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        io.write_all(request.as_bytes()).await?;
        io.flush().await?;

        let mut answer = Vec::with_capacity(256);
        while !answer.ends_with(b"\r\n\r\n") {
            if answer.len() >= MAX_CONNECT_ANSWER {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("proxy {self}: answer to CONNECT too long"),
                ));
            }
            let byte = io.read_u8().await.map_err(|e| {
                io::Error::new(e.kind(), format!("proxy {self} closed during CONNECT: {e}"))
            })?;
            answer.push(byte);
        }
        let status_line = answer
            .split(|b| *b == b'\n')
            .next()
            .map(|line| String::from_utf8_lossy(line).trim().to_owned())
            .unwrap_or_default();
        let code = status_line.split_whitespace().nth(1).unwrap_or_default();
        if status_line.starts_with("HTTP/1.") && code.len() == 3 && code.starts_with('2') {
            Ok(())
        } else {
            let shown: String = status_line.chars().take(200).collect();
            Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("proxy {self} refused CONNECT {authority}: {shown}"),
            ))
        }
    }
}

/// `host`, bracketed when it is an IPv6 address.
pub(crate) fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_hides_credentials() {
        let hop =
            ProxyHop::new(&"http://al%40ice:s3cr%3At@proxy.local:3128".parse().unwrap()).unwrap();
        assert_eq!(hop.to_string(), "http://proxy.local:3128");
        assert_eq!(
            hop.credentials,
            Some(("al@ice".to_owned(), "s3cr:t".to_owned()))
        );
    }

    #[tokio::test]
    async fn connect_sends_basic_auth_and_accepts_2xx() {
        let hop = ProxyHop::new(&"http://u:p@proxy:1".parse().unwrap()).unwrap();
        let (mut client, mut server) = tokio::io::duplex(4096);
        let proxy = tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            let n = server.read(&mut buf).await.unwrap();
            server
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\nTLS")
                .await
                .unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        });
        hop.connect(&mut client, "api:6443").await.unwrap();
        let sent = proxy.await.unwrap();
        assert!(sent.starts_with("CONNECT api:6443 HTTP/1.1\r\nHost: api:6443\r\n"));
        assert!(
            sent.contains("Proxy-Authorization: Basic dTpw\r\n"),
            "{sent}"
        );
        // The bytes after the answer's head are left for the TLS handshake.
        let mut rest = [0; 3];
        client.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"TLS");
    }

    #[tokio::test]
    async fn refusal_and_garbage_are_errors_without_credentials() {
        for answer in [
            &b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200",
        ] {
            let hop = ProxyHop::new(&"http://u:secret@proxy:1".parse().unwrap()).unwrap();
            let (mut client, mut server) = tokio::io::duplex(4096);
            let answer = answer.to_vec();
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let _ = server.read(&mut buf).await;
                let _ = server.write_all(&answer).await;
            });
            let err = hop.connect(&mut client, "api:6443").await.unwrap_err();
            assert!(!err.to_string().contains("secret"), "{err}");
            assert!(err.to_string().contains("proxy http://proxy:1"), "{err}");
        }
    }
}
