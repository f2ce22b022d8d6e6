//! temporary measurement, deleted after use
mod stream_support;
use stream_support::{Env, TRANSPORTS};
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench() {
    let env = Env::start().await;
    for ws in TRANSPORTS {
        let t = std::time::Instant::now();
        let out = env.run(ws, &["exec", "demo", "--", "head", "-c", "268435456", "/dev/zero"], None).await;
        eprintln!("BENCH ws={ws} stdout 256MiB len={} in {:?}", out.stdout.len(), t.elapsed());
        let data = vec![7u8; 256 << 20];
        let t = std::time::Instant::now();
        let out = env.run(ws, &["exec", "-i", "demo", "--", "wc", "-c"], Some(&data)).await;
        eprintln!("BENCH ws={ws} stdin 256MiB {} in {:?}", String::from_utf8_lossy(&out.stdout).trim(), t.elapsed());
    }
    env.sandbox.shutdown().await;
}
