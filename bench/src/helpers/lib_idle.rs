//! Idle exec sessions held by one library client in a process of its own:
//! prints `RSS_BEFORE_KIB RSS_AFTER_KIB` (after a warm-up exec, and with all
//! sessions open), then closes every session's stdin and waits for them.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncWriteExt;

use crate::args::Library;
use crate::procfs;

/// Lets allocator and tasks settle before reading RSS.
const SETTLE: Duration = Duration::from_millis(500);
/// Bound on closing all sessions.
const CLOSE_DEADLINE: Duration = Duration::from_secs(60);

/// Opens `sessions` `cat` sessions in `pod` with `library`.
pub async fn run(library: Library, sessions: usize, pod: &str) -> Result<()> {
    match library {
        Library::Podlink => podlink(sessions, pod).await,
        Library::KubeRs => kube_rs(sessions, pod).await,
    }
}

fn rss() -> Result<u64> {
    Ok(procfs::memory("self")?.rss_kib)
}

async fn podlink(sessions: usize, pod: &str) -> Result<()> {
    use podlink_client::exec::ExecRequest;

    let client = podlink_client::Client::try_default()
        .await
        .context("podlink client")?;
    client
        .run(ExecRequest::new(pod, ["true"]))
        .await
        .context("warm-up exec")?;
    tokio::time::sleep(SETTLE).await;
    let before = rss()?;
    let mut open = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let mut exec = client
            .exec(ExecRequest::new(pod, ["cat"]).with_stdin(true))
            .await?;
        let stdin = exec.stdin().ok_or_else(|| anyhow!("no stdin"))?;
        open.push((exec, stdin));
    }
    tokio::time::sleep(SETTLE).await;
    println!("{before} {}", rss()?);
    tokio::time::timeout(CLOSE_DEADLINE, async {
        for (mut exec, stdin) in open {
            drop(stdin);
            exec.wait().await?;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("sessions did not end after closing stdin"))?
}

async fn kube_rs(sessions: usize, pod: &str) -> Result<()> {
    let client = kube::Client::try_default().await?;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let mut warm = pods.exec(pod, ["true"], &AttachParams::default()).await?;
    if let Some(status) = warm.take_status() {
        status.await;
    }
    tokio::time::sleep(SETTLE).await;
    let before = rss()?;
    let params = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let mut open = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        open.push(pods.exec(pod, ["cat"], &params).await?);
    }
    tokio::time::sleep(SETTLE).await;
    println!("{before} {}", rss()?);
    tokio::time::timeout(CLOSE_DEADLINE, async {
        for mut process in open {
            if let Some(mut stdin) = process.stdin() {
                stdin.shutdown().await?;
            }
            process.abort();
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("sessions did not close"))?
}
