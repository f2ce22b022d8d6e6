//! The port-forward load generator, in a process of its own so that the
//! direct-connection reference can run inside the pod's network namespace
//! (`nsenter --net`) exactly as the forwarded runs do outside it.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::pod_server::{HTTP_REQUEST, HTTP_RESPONSE};
use crate::stats::percentile;

/// How long the target may take to accept a first connection.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Waits until `port` accepts, then runs the bulk or request load and
/// prints `SECONDS P99_MS` (P99 is `-` in bulk mode).
pub async fn run(
    port: u16,
    bulk_bytes: Option<u64>,
    requests: usize,
    connections: usize,
) -> Result<()> {
    wait_ready(port).await?;
    let started = Instant::now();
    let p99 = match bulk_bytes {
        Some(bytes) => {
            download(port, bytes).await?;
            None
        }
        None => {
            let connections = connections.max(1);
            let tasks: Vec<_> = (0..connections)
                .map(|i| {
                    let share = requests / connections + usize::from(i < requests % connections);
                    tokio::spawn(request_loop(port, share))
                })
                .collect();
            let mut latencies = Vec::with_capacity(requests);
            for task in futures::future::join_all(tasks).await {
                latencies.extend(task??);
            }
            percentile(&latencies, 99.0)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{seconds} {}",
        p99.map_or("-".to_owned(), |p| p.to_string())
    );
    Ok(())
}

async fn wait_ready(port: u16) -> Result<()> {
    let started = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > READY_DEADLINE => bail!("port {port} not accepting: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Receives exactly `bytes` bytes through one connection.
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
