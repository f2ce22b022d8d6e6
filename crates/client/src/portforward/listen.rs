//! Local listeners: every requested address for every port, IPv4 and IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};

use super::error::ForwardError;

/// Backlog for each listener: bursts of hundreds of connections are normal
/// for a forward in front of a load test.
const BACKLOG: u32 = 1024;

/// The addresses behind one `--address` value.
fn expand(address: &str) -> Result<Vec<IpAddr>, ForwardError> {
    if address.eq_ignore_ascii_case("localhost") {
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    let trimmed = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    trimmed
        .parse::<IpAddr>()
        .map(|ip| vec![ip])
        .map_err(|_| ForwardError::InvalidAddress {
            address: address.to_owned(),
        })
}

/// Parsed `--address` values. `localhost` means 127.0.0.1 and ::1, and is
/// satisfied when either binds (hosts without IPv6 are common), as in kubectl;
/// an explicit IP must bind.
#[derive(Debug, Clone)]
pub(crate) struct ListenAddresses {
    addrs: Vec<(IpAddr, bool)>,
}

impl ListenAddresses {
    /// Parses `--address` values; an empty list means `localhost`.
    pub(crate) fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, ForwardError> {
        let mut addrs: Vec<(IpAddr, bool)> = Vec::new();
        let values: Vec<&str> = if values.is_empty() {
            vec!["localhost"]
        } else {
            values.iter().map(AsRef::as_ref).collect()
        };
        for value in values {
            // One flag may also carry a comma-separated list, as kubectl allows.
            for part in value.split(',').map(str::trim) {
                let required = !part.eq_ignore_ascii_case("localhost");
                for ip in expand(part)? {
                    match addrs.iter_mut().find(|(a, _)| *a == ip) {
                        Some(entry) => entry.1 |= required,
                        None => addrs.push((ip, required)),
                    }
                }
            }
        }
        Ok(Self { addrs })
    }

    /// Binds `port` (0 = a free one) on every address. With 0, the first
    /// bound address picks the number and the others reuse it, so that all
    /// of them print the same local port.
    pub(crate) fn bind(&self, port: u16) -> Result<Vec<TcpListener>, ForwardError> {
        let mut listeners = Vec::with_capacity(self.addrs.len());
        let mut port = port;
        for &(ip, required) in &self.addrs {
            let addr = SocketAddr::new(ip, port);
            match bind_one(addr) {
                Ok(listener) => {
                    if port == 0 {
                        port = listener.local_addr()?.port();
                    }
                    listeners.push(listener);
                }
                Err(source) if required => return Err(ForwardError::Bind { addr, source }),
                Err(source) => {
                    tracing::debug!(%addr, error = %source, "skipping optional listen address");
                }
            }
        }
        if listeners.is_empty() {
            return Err(ForwardError::NoListener { port });
        }
        Ok(listeners)
    }
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Restarting a forward must not fail on the previous run's TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_binds_both_families_on_one_free_port() {
        let addrs = ListenAddresses::parse::<&str>(&[]).expect("localhost");
        let listeners = addrs.bind(0).expect("bind");
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        assert!(!ports.is_empty());
        assert!(ports.iter().all(|p| *p == ports[0] && *p != 0));
    }

    #[test]
    fn explicit_addresses_parse() {
        let a = ListenAddresses::parse(&["127.0.0.1,::1", "[::1]"]).expect("parse");
        assert_eq!(a.addrs.len(), 2);
        assert!(a.addrs.iter().all(|(_, required)| *required));
        assert!(matches!(
            ListenAddresses::parse(&["example.com"]),
            Err(ForwardError::InvalidAddress { .. })
        ));
    }

    #[tokio::test]
    async fn a_taken_required_port_is_a_bind_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let a = ListenAddresses::parse(&["127.0.0.1"]).expect("parse");
        assert!(matches!(a.bind(port), Err(ForwardError::Bind { .. })));
    }
}
