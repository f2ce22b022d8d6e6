//! Moving archive bytes between the exec session's async streams and the
//! blocking tar code (which runs on a blocking thread), hashing and counting
//! every byte on the way: the local half of the checksum comparison.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::progress::Progress;

/// Bytes per chunk handed across.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Chunks in flight between the two sides.
pub(crate) const DEPTH: usize = 16;

/// SHA-256 and length of a stream, reported to a progress observer as it
/// grows.
pub(crate) struct Tally {
    hasher: Sha256,
    bytes: u64,
    progress: Option<Arc<dyn Progress>>,
}

impl Tally {
    pub(crate) fn new(progress: Option<Arc<dyn Progress>>) -> Self {
        Self {
            hasher: Sha256::new(),
            bytes: 0,
            progress,
        }
    }

    fn add(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        if let Some(progress) = &self.progress {
            progress.advance(chunk.len() as u64);
        }
    }

    /// The hex SHA-256 and the byte count.
    pub(crate) fn finish(self) -> (String, u64) {
        let digest = self.hasher.finalize();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (hex, self.bytes)
    }
}

/// Read `source` to its end, tallying every byte and passing chunks to `tx`
/// for as long as its receiver listens (a tar reader stops at the archive's
/// end marker; the padding after it still counts for the checksum).
pub(crate) async fn pump_from(
    mut source: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Bytes>,
    mut tally: Tally,
) -> io::Result<Tally> {
    let mut tx = Some(tx);
    let mut buf = BytesMut::with_capacity(CHUNK);
    loop {
        buf.reserve(CHUNK);
        if source.read_buf(&mut buf).await? == 0 {
            return Ok(tally);
        }
        let chunk = buf.split().freeze();
        tally.add(&chunk);
        if let Some(sender) = &tx {
            if sender.send(chunk).await.is_err() {
                tx = None;
            }
        }
    }
}

/// Write every chunk from `rx` to `sink`, tallying them, until the sender
/// is gone; hand `sink` back so the caller decides whether the remote side
/// gets end-of-file.
pub(crate) async fn pump_to<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Bytes>,
    mut sink: W,
    mut tally: Tally,
) -> io::Result<(Tally, W)> {
    while let Some(chunk) = rx.recv().await {
        tally.add(&chunk);
        sink.write_all(&chunk).await?;
    }
    sink.flush().await?;
    Ok((tally, sink))
}

/// The blocking side's reader: chunks from an async task.
pub(crate) struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChunkReader {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The blocking side's writer: chunks to an async task. Wrap it in a
/// `BufWriter` of [`CHUNK`] bytes so chunks are not tiny.
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
}

impl ChunkWriter {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> Self {
        Self { tx }
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stream closed"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tally_hashes_everything_even_after_the_reader_stops() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (tx, rx) = mpsc::channel(DEPTH);
        let reader = tokio::task::spawn_blocking(move || {
            let mut reader = ChunkReader::new(rx);
            let mut first = vec![0; 1000];
            reader.read_exact(&mut first).map(|()| first)
        });
        let tally = pump_from(&data[..], tx, Tally::new(None)).await.unwrap();
        let first = reader.await.unwrap().unwrap();
        assert_eq!(first, data[..1000]);
        let (hex, bytes) = tally.finish();
        assert_eq!(bytes, data.len() as u64);
        let expected: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }
}
