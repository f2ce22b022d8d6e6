//! Which proxy, if any, carries the connections to one API server, decided as
//! kubectl (client-go) decides:
//!
//! 1. the kubeconfig cluster's `proxy-url`, for every request;
//! 2. else Go's `http.ProxyFromEnvironment`: `HTTPS_PROXY`/`https_proxy` for an
//!    `https://` server (`HTTP_PROXY`/`http_proxy` for `http://`), unless the
//!    server is `localhost` or a loopback IP, or `NO_PROXY`/`no_proxy` names
//!    it (`*`, a host and its subdomains, `.suffix`, an IP, a CIDR; entries
//!    may carry a `:port`).
//!
//! kube reads the same variables but matches `NO_PROXY` against the proxy's
//! own address and proxies loopback, so podlink decides here and hands kube
//! the result; the upgrade dialer uses the same answer.

use std::net::IpAddr;

use http::Uri;

use crate::error::{Error, Result};

/// The proxy schemes podlink can dial through (kube's `http-proxy` and
/// `socks5` features cover the same set for ordinary requests).
const SCHEMES: [&str; 3] = ["http", "https", "socks5"];

/// Where the proxy named in a loaded configuration came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loaded<'a> {
    /// Read from the kubeconfig cluster's `proxy-url` itself (`None`: it
    /// names none).
    Kubeconfig(Option<&'a Uri>),
    /// kube's `Config::proxy_url`, which folds the kubeconfig's `proxy-url`
    /// and `HTTPS_PROXY` together: a value unlike what the environment names
    /// can only be the kubeconfig's. (A `proxy-url` spelled exactly like
    /// `HTTPS_PROXY` is then subject to `NO_PROXY`, and one that kube
    /// dropped for `NO_PROXY` is lost: use `Kubeconfig` where possible.)
    Folded(Option<&'a Uri>),
}

/// The proxy for `cluster_url`, given what the configuration named and the
/// process environment (`env`, injectable for tests).
pub(crate) fn select(
    cluster_url: &Uri,
    loaded: Loaded<'_>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Uri>> {
    let https = cluster_url.scheme_str() != Some("http");
    let names = if https {
        ["HTTPS_PROXY", "https_proxy"]
    } else {
        ["HTTP_PROXY", "http_proxy"]
    };
    let raw = first_set(&env, &names);
    let from_kubeconfig = match loaded {
        Loaded::Kubeconfig(named) => named,
        // kube parses the variable as is; compare with that spelling.
        Loaded::Folded(named) => named.filter(|named| {
            raw.as_deref()
                .and_then(|v| v.trim().parse::<Uri>().ok())
                .as_ref()
                != Some(*named)
        }),
    };
    if let Some(named) = from_kubeconfig {
        return check_scheme(named.clone()).map(Some);
    }
    let Some(proxy) = raw.map(|v| parse(&v)).transpose()? else {
        return Ok(None);
    };
    let host = cluster_url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = cluster_url
        .port_u16()
        .unwrap_or(if https { 443 } else { 80 });
    let no_proxy = first_set(&env, &["NO_PROXY", "no_proxy"]).unwrap_or_default();
    if bypass(&host, port, &no_proxy) {
        tracing::debug!(%host, "NO_PROXY or loopback: connecting directly");
        Ok(None)
    } else {
        Ok(Some(proxy))
    }
}

/// The first variable in `names` that is set and non-empty, as Go's
/// `getEnvAny`.
fn first_set(env: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
}

/// Parse a proxy address as Go does: a value without a scheme is an
/// `http://` proxy (`HTTPS_PROXY=proxy:3128`).
fn parse(value: &str) -> Result<Uri> {
    let value = value.trim();
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let uri = with_scheme.parse::<Uri>().map_err(|_| {
        Error::InvalidRequest("the proxy URL in the environment is not a URL".into())
    })?;
    check_scheme(uri)
}

fn check_scheme(uri: Uri) -> Result<Uri> {
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    if !SCHEMES.contains(&scheme.as_str()) {
        return Err(Error::InvalidRequest(format!(
            "unsupported proxy scheme {scheme:?} (use http, https or socks5)"
        )));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(Error::InvalidRequest("the proxy URL names no host".into()));
    }
    Ok(uri)
}

/// Go's `useProxy`, negated: true when `host:port` must be dialled directly.
fn bypass(host: &str, port: u16, no_proxy: &str) -> bool {
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    no_proxy
        .split(',')
        .map(|entry| entry.trim().to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| entry == "*" || matches_entry(&entry, host, ip, port))
}

/// One `NO_PROXY` entry against the server's host (and IP, when it is one).
fn matches_entry(entry: &str, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
    if let Some((net, bits)) = entry.split_once('/') {
        return match (ip, net.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Some(ip), Ok(net), Ok(bits)) => in_cidr(ip, net, bits),
            _ => false,
        };
    }
    let (name, entry_port) = split_port(entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Ok(entry_ip) = name.parse::<IpAddr>() {
        return ip == Some(entry_ip);
    }
    if ip.is_some() {
        // Go matches domain entries against names only, never IPs.
        return false;
    }
    let name = name.strip_prefix('*').unwrap_or(name);
    match name.strip_prefix('.') {
        // ".example.com": subdomains only.
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        // "example.com": the host itself and its subdomains.
        None => host == name || host.ends_with(&format!(".{name}")),
    }
}

/// `host:port`, `[v6]:port`, a bare v6 address or a bare name.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((addr, tail)) = rest.split_once(']') {
            return (addr, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, port.parse().ok()),
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn pick(cluster: &str, loaded: Option<&str>, vars: &[(&str, &str)]) -> Option<String> {
        let loaded = loaded.map(|l| l.parse::<Uri>().unwrap());
        select(
            &cluster.parse().unwrap(),
            Loaded::Folded(loaded.as_ref()),
            env(vars),
        )
        .unwrap()
        .map(|u| u.to_string())
    }

    const PROXY: (&str, &str) = ("HTTPS_PROXY", "http://127.0.0.1:3128");

    #[test]
    fn https_proxy_applies_to_https_servers_only() {
        assert_eq!(
            pick("https://api.example.com", None, &[PROXY]).as_deref(),
            Some("http://127.0.0.1:3128/")
        );
        assert_eq!(pick("http://api.example.com", None, &[PROXY]), None);
        assert_eq!(
            pick("http://api.example.com", None, &[("http_proxy", "p:8080")]).as_deref(),
            Some("http://p:8080/")
        );
    }

    #[test]
    fn upper_case_wins_and_empty_is_unset() {
        let vars = [("HTTPS_PROXY", ""), ("https_proxy", "http://lower:1")];
        assert_eq!(
            pick("https://a.b", None, &vars).as_deref(),
            Some("http://lower:1/")
        );
    }

    #[test]
    fn loopback_is_never_proxied_from_the_environment() {
        for server in [
            "https://localhost:6443",
            "https://127.0.0.1:6443",
            "https://[::1]:6443",
        ] {
            assert_eq!(pick(server, None, &[PROXY]), None, "{server}");
        }
    }

    #[test]
    fn kubeconfig_proxy_url_wins_even_for_loopback_and_no_proxy() {
        let vars = [PROXY, ("NO_PROXY", "*")];
        assert_eq!(
            pick(
                "https://127.0.0.1:6443",
                Some("socks5://10.0.0.1:1080"),
                &vars
            )
            .as_deref(),
            Some("socks5://10.0.0.1:1080/")
        );
    }

    #[test]
    fn a_known_kubeconfig_proxy_wins_even_when_spelled_like_the_environment() {
        let named = "http://127.0.0.1:3128".parse::<Uri>().unwrap();
        let vars = [PROXY, ("NO_PROXY", "*")];
        let got = select(
            &"https://api.example.com".parse().unwrap(),
            Loaded::Kubeconfig(Some(&named)),
            env(&vars),
        )
        .unwrap();
        assert_eq!(got, Some(named));
    }

    #[test]
    fn no_proxy_entries_match_as_go_does() {
        let cases = [
            ("*", "https://x.example.com", true),
            ("example.com", "https://example.com", true),
            ("example.com", "https://x.example.com", true),
            ("example.com", "https://notexample.com", false),
            (".example.com", "https://example.com", false),
            (".example.com", "https://x.example.com", true),
            ("*.example.com", "https://x.example.com", true),
            ("EXAMPLE.com", "https://x.Example.COM", true),
            ("example.com:6443", "https://example.com:6443", true),
            ("example.com:6443", "https://example.com", false),
            ("10.0.0.0/8", "https://10.1.2.3", true),
            ("10.0.0.0/8", "https://11.1.2.3", false),
            ("10.1.2.3", "https://10.1.2.3:443", true),
            ("10.1.2.3", "https://10.1.2.4", false),
            ("fd00::/8", "https://[fd00::1]", true),
            ("example.com", "https://10.1.2.3", false),
            (" a.b , example.com ", "https://example.com", true),
            ("10.0.0.0/99", "https://10.1.2.3", false),
        ];
        for (no_proxy, server, bypassed) in cases {
            let got = pick(server, None, &[PROXY, ("no_proxy", no_proxy)]);
            assert_eq!(got.is_none(), bypassed, "NO_PROXY={no_proxy:?} {server}");
        }
    }

    #[test]
    fn bad_proxy_values_are_errors_not_panics() {
        for value in ["http://", "ftp://proxy:21", "http://exa mple:1"] {
            let err = select(
                &"https://a.b".parse().unwrap(),
                Loaded::Kubeconfig(None),
                env(&[("HTTPS_PROXY", value)]),
            );
            assert!(err.is_err(), "{value}");
        }
    }
}
