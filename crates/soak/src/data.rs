//! Checksummed traffic: pseudo-random bytes generated and hashed as they
//! are written, and hashed as they are read, so no payload is ever held
//! whole in memory (the soak watches its own RSS).

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Size of one generated or read chunk.
const CHUNK: usize = 64 * 1024;

/// A SHA-256 digest.
pub type Digest256 = [u8; 32];

/// Writes `len` pseudo-random bytes derived from `seed`, returning their
/// digest. Does not shut the writer down.
pub async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    len: u64,
    seed: u64,
) -> std::io::Result<Digest256> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        rng.fill_bytes(&mut buf[..n]);
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    writer.flush().await?;
    Ok(hasher.finalize().into())
}

/// Reads to end of stream, but no more than `limit + 1` bytes (a stream
/// longer than expected is detected without reading it all); returns how
/// many bytes were read and their digest.
pub async fn receive<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: u64,
) -> std::io::Result<(u64, Digest256)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut bounded = reader.take(limit.saturating_add(1));
    loop {
        let n = bounded.read(&mut buf).await?;
        if n == 0 {
            return Ok((total, hasher.finalize().into()));
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// The lowercase hex form of a digest, as `sha256sum` prints it.
pub fn hex(digest: &Digest256) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A size between 0 and `max`, spread evenly over the powers of two so
/// that tiny, medium and large transfers all occur.
pub fn random_size(rng: &mut impl Rng, max: u64) -> u64 {
    let bits = 64 - max.leading_zeros();
    let top = 1u64 << rng.random_range(0..=bits).min(63);
    rng.random_range(0..=top.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_is_sent_is_what_is_received() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            let digest = send(&mut a, 300_001, 7).await.expect("send");
            drop(a);
            digest
        });
        let (len, got) = receive(&mut b, 300_001).await.expect("receive");
        let sent = writer.await.expect("writer");
        assert_eq!(len, 300_001);
        assert_eq!(got, sent);
        assert_eq!(hex(&sent).len(), 64);
    }

    #[test]
    fn sizes_stay_in_range() {
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..1000 {
            assert!(random_size(&mut rng, 1 << 20) <= 1 << 20);
        }
    }
}
