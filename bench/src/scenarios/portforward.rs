//! port-forward scenarios: one bulk download, and many small HTTP requests
//! over concurrent connections. The reference ceiling is a direct loopback
//! connection to the pod's port: the same load generator entered into the
//! pod's network namespace with `nsenter --net`.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::process::Child;

use super::{mb_per_s, series, size};
use crate::process::{wait_success, Lines};
use crate::report::{Check, Sample, Table};
use crate::runner::{interleave, Ctx};

/// How long a forwarder may take to print its listening line.
const LISTEN_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Client {
    Podlink,
    Kubectl,
    Direct,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::Podlink => "podlink",
            Client::Kubectl => "kubectl",
            Client::Direct => "direct connection",
        })
    }
}

const CLIENTS: [Client; 3] = [Client::Podlink, Client::Kubectl, Client::Direct];

/// The pod server: its ports, and its network namespace when it has its own.
struct PodServer {
    name: &'static str,
    bulk: u16,
    http: u16,
    netns: Option<PathBuf>,
}

async fn pod_server(ctx: &Ctx, name: &'static str) -> Result<PodServer> {
    let free = || -> Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (bulk, http) = (free()?, free()?);
    let pid = crate::cluster::start_pod_server(&ctx.kube, name, &ctx.tools.me, bulk, http).await?;
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let own = std::fs::read_link("/proc/self/ns/net")?;
    let netns = (std::fs::read_link(&netns)? != own).then_some(netns);
    Ok(PodServer {
        name,
        bulk,
        http,
        netns,
    })
}

/// A running forwarder process (killed on drop) and its local port.
struct Forwarder {
    _child: Option<Child>,
    port: u16,
}

async fn forward(ctx: &Ctx, client: Client, server: &PodServer, remote: u16) -> Result<Forwarder> {
    let mut command = match client {
        Client::Direct => {
            return Ok(Forwarder {
                _child: None,
                port: remote,
            })
        }
        Client::Podlink => ctx.tools.podlink(),
        Client::Kubectl => ctx.tools.kubectl(),
    };
    command
        .args([
            "port-forward",
            &format!("pod/{}", server.name),
            &format!(":{remote}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {client} port-forward"))?;
    let mut lines = Lines::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("stdout not piped"))?,
    );
    let line = lines
        .until(LISTEN_DEADLINE, "`Forwarding from 127.0.0.1:PORT`", |l| {
            l.starts_with("Forwarding from 127.0.0.1:")
        })
        .await?;
    let port = line
        .trim_start_matches("Forwarding from 127.0.0.1:")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("malformed line {line:?}"))?;
    // kubectl prints a line per connection: keep its pipe drained.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next(Duration::MAX).await {} });
    Ok(Forwarder {
        _child: Some(child),
        port,
    })
}

/// Runs the `pf-load` helper against `port` (inside the pod's network
/// namespace for the direct reference); returns its seconds and p99 ms.
async fn load(
    ctx: &Ctx,
    client: Client,
    server: &PodServer,
    port: u16,
    args: &[String],
) -> Result<(f64, Option<f64>)> {
    let mut command = match (&server.netns, client) {
        (Some(netns), Client::Direct) => {
            let mut command = ctx.tools.command(std::path::Path::new("nsenter"));
            command
                .arg(format!("--net={}", netns.display()))
                .arg(&ctx.tools.me);
            command
        }
        _ => ctx.tools.helper(),
    };
    command
        .args(["pf-load", "--port", &port.to_string()])
        .args(args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let mut lines = Lines::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("stdout not piped"))?,
    );
    let line = lines
        .until(ctx.sizes.deadline, "pf-load result", |_| true)
        .await;
    wait_success(&mut child, ctx.sizes.deadline, "pf-load").await?;
    let line = line?;
    let mut fields = line.split_whitespace();
    let seconds = fields
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed {line:?}"))?;
    Ok((seconds, fields.next().and_then(|p| p.parse().ok())))
}

/// 1 GiB through one forwarded connection.
pub async fn bulk(ctx: &Ctx) -> Result<Table> {
    let bytes = ctx.sizes.pf_bytes;
    let server = pod_server(ctx, "bench-pf-bulk").await?;
    let args = vec!["--bulk-bytes".to_owned(), bytes.to_string()];
    let results = interleave("pf-bulk", &CLIENTS, ctx.repeats, async |client| {
        let forwarder = forward(ctx, client, &server, server.bulk).await?;
        let probe = ctx.sandbox.cpu_probe();
        let (seconds, _) = load(ctx, client, &server, forwarder.port, &args).await?;
        let span = probe.finish();
        Ok(Sample {
            value: mb_per_s(bytes, Duration::from_secs_f64(seconds)),
            server_cpu: Some(span.share),
            ..Sample::default()
        })
    })
    .await;
    Ok(Table {
        title: format!("port-forward bulk: {} through one connection (pod → client)", size(bytes)),
        unit: "MB/s",
        reference: "kubectl",
        target: "podlink ≥ 2× kubectl and ≥ 60% of a direct connection",
        series: series(&CLIENTS, results),
        checks: vec![
            Check::AtLeastTimes { client: "podlink", of: "kubectl", factor: 2.0 },
            Check::AtLeastTimes { client: "podlink", of: "direct connection", factor: 0.6 },
        ],
        notes: vec![
            "Timed by the load process from connect to the last byte, after the forwarder accepted a first probe connection; the pod is this harness serving zeros.".into(),
            "direct connection: plain TCP to the pod's port from inside its network namespace (nsenter), no TLS or API server; server CPU is the sandbox's (idle).".into(),
        ],
    })
}

/// Small HTTP requests over concurrent forwarded connections.
pub async fn requests(ctx: &Ctx) -> Result<Table> {
    let (total, connections) = (ctx.sizes.pf_requests, ctx.sizes.pf_connections);
    let server = pod_server(ctx, "bench-pf-http").await?;
    let args = vec![
        "--requests".to_owned(),
        total.to_string(),
        "--connections".to_owned(),
        connections.to_string(),
    ];
    let results = interleave("pf-requests", &CLIENTS, ctx.repeats, async |client| {
        let forwarder = forward(ctx, client, &server, server.http).await?;
        let probe = ctx.sandbox.cpu_probe();
        let (seconds, p99_ms) = load(ctx, client, &server, forwarder.port, &args).await?;
        let span = probe.finish();
        Ok(Sample {
            value: total as f64 / seconds,
            p99_ms,
            server_cpu: Some(span.share),
            ..Sample::default()
        })
    })
    .await;
    Ok(Table {
        title: format!("port-forward requests: {total} small HTTP/1.1 requests over {connections} concurrent connections"),
        unit: "req/s",
        reference: "kubectl",
        target: "podlink ≥ 2× kubectl (req/s)",
        series: series(&CLIENTS, results),
        checks: vec![Check::AtLeastTimes { client: "podlink", of: "kubectl", factor: 2.0 }],
        notes: vec!["Keep-alive connections, one request in flight per connection; timed by the load process from the first connect to the last response.".into()],
    })
}
