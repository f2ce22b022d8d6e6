//! The server inside the port-forward scenarios' pod: a bulk source and a
//! tiny HTTP/1.1 keep-alive server, both on loopback.

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What every load-generator request looks like.
pub const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
/// The server's answer to each request.
pub const HTTP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
/// Largest request head the server buffers before giving up on a client.
const MAX_HEAD: usize = 64 * 1024;
/// Bulk write size.
const CHUNK: usize = 256 * 1024;

/// Serves both ports until killed.
pub async fn serve(bulk_port: u16, http_port: u16) -> Result<()> {
    let bulk = TcpListener::bind(("127.0.0.1", bulk_port)).await?;
    let http = TcpListener::bind(("127.0.0.1", http_port)).await?;
    tokio::try_join!(accept(bulk, send_bulk), accept(http, answer_http))?;
    Ok(())
}

async fn accept<F, Fut>(listener: TcpListener, handle: F) -> Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let conn = handle(stream);
        tokio::spawn(async move {
            // A client that goes away mid-stream is normal in a benchmark.
            let _ = conn.await;
        });
    }
}

/// Reads a big-endian u64 N, writes N zero bytes, closes.
async fn send_bulk(mut stream: TcpStream) -> std::io::Result<()> {
    let mut left = stream.read_u64().await?;
    let zeros = vec![0u8; CHUNK];
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        stream.write_all(&zeros[..n]).await?;
        left -= n as u64;
    }
    stream.shutdown().await
}

/// Answers every request head (ended by an empty line) with [`HTTP_RESPONSE`].
async fn answer_http(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut answers = 0;
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            answers += 1;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        if answers > 0 {
            stream.write_all(&HTTP_RESPONSE.repeat(answers)).await?;
        }
    }
}
