//! port-forward scenarios: one bulk download, and many small HTTP requests
//! over concurrent connections; each against a direct loopback connection
//! to the pod's port as the reference ceiling.

use std::fmt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

use super::{mb_per_s, series, size};
use crate::helpers::pod_server::{HTTP_REQUEST, HTTP_RESPONSE};
use crate::process::Lines;
use crate::report::{Check, Sample, Table};
use crate::runner::{interleave, Ctx};
use crate::stats::percentile;

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

/// The pod server's two ports, chosen free on loopback.
struct PodPorts {
    bulk: u16,
    http: u16,
}

async fn pod_server(ctx: &Ctx, name: &str) -> Result<PodPorts> {
    let free = || -> Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let ports = PodPorts {
        bulk: free()?,
        http: free()?,
    };
    crate::cluster::start_pod_server(&ctx.kube, name, &ctx.tools.me, ports.bulk, ports.http)
        .await?;
    Ok(ports)
}

/// A running forwarder process (killed on drop) and its local port.
struct Forwarder {
    _child: Option<Child>,
    port: u16,
}

async fn forward(ctx: &Ctx, client: Client, pod: &str, remote: u16) -> Result<Forwarder> {
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
        .args(["port-forward", &format!("pod/{pod}"), &format!(":{remote}")])
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

/// Receives exactly `bytes` bytes through one connection to `port`.
async fn download(port: u16, bytes: u64) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    stream.write_all(&bytes.to_be_bytes()).await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < bytes {
        let want = (bytes - got).min(buf.len() as u64) as usize;
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            bail!("connection ended after {got} of {bytes} bytes");
        }
        got += n as u64;
    }
    Ok(())
}

/// 1 GiB through one forwarded connection.
pub async fn bulk(ctx: &Ctx) -> Result<Table> {
    let bytes = ctx.sizes.pf_bytes;
    let ports = pod_server(ctx, "bench-pf-bulk").await?;
    let results = interleave("pf-bulk", &CLIENTS, ctx.repeats, async |client| {
        let forwarder = forward(ctx, client, "bench-pf-bulk", ports.bulk).await?;
        let probe = ctx.sandbox.cpu_probe();
        tokio::time::timeout(ctx.sizes.deadline, download(forwarder.port, bytes))
            .await
            .map_err(|_| anyhow!("download timed out"))??;
        let span = probe.finish();
        Ok(Sample {
            value: mb_per_s(bytes, span.wall),
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
            "Timed from connect to the last byte, forwarder already listening; the pod is this harness serving zeros on loopback.".into(),
            "direct connection: plain TCP from the harness to the pod's port, no TLS or API server (so no sandbox CPU).".into(),
        ],
    })
}

/// One connection's share of the requests; returns each latency in ms.
async fn request_loop(port: u16, requests: usize) -> Result<Vec<f64>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let mut answer = vec![0u8; HTTP_RESPONSE.len()];
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        stream.write_all(HTTP_REQUEST).await?;
        stream.read_exact(&mut answer).await?;
        if answer != HTTP_RESPONSE {
            bail!("unexpected response {:?}", String::from_utf8_lossy(&answer));
        }
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(latencies)
}

/// Small HTTP requests over concurrent forwarded connections.
pub async fn requests(ctx: &Ctx) -> Result<Table> {
    let (total, connections) = (ctx.sizes.pf_requests, ctx.sizes.pf_connections);
    let ports = pod_server(ctx, "bench-pf-http").await?;
    let results = interleave("pf-requests", &CLIENTS, ctx.repeats, async |client| {
        let forwarder = forward(ctx, client, "bench-pf-http", ports.http).await?;
        let probe = ctx.sandbox.cpu_probe();
        let tasks: Vec<_> = (0..connections)
            .map(|i| {
                let share = total / connections + usize::from(i < total % connections);
                tokio::spawn(request_loop(forwarder.port, share))
            })
            .collect();
        let all = tokio::time::timeout(ctx.sizes.deadline, futures::future::join_all(tasks))
            .await
            .map_err(|_| anyhow!("requests timed out"))?;
        let span = probe.finish();
        let mut latencies = Vec::with_capacity(total);
        for task in all {
            latencies.extend(task??);
        }
        Ok(Sample {
            value: total as f64 / span.wall.as_secs_f64(),
            p99_ms: percentile(&latencies, 99.0),
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
        notes: vec!["Keep-alive connections, one request in flight per connection; timed from the first connect to the last response.".into()],
    })
}
