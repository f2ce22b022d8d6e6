//! kube-rs `Api::<Pod>::exec` (WebSocket) as a whole process, for the exec
//! scenarios: stdout counted, own stdin forwarded, or `true`.

use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::ExecMode;

/// Copy chunk for stdin and stdout.
const CHUNK: usize = 256 * 1024;

/// Runs `mode` in `pod` and fails unless the remote command succeeded
/// (and, for stdout, delivered exactly `bytes` bytes).
pub async fn run(mode: ExecMode, pod: &str, bytes: u64) -> Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("kube-rs client from $KUBECONFIG")?;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let mut process = match mode {
        ExecMode::Stdout => {
            let count = bytes.to_string();
            let params = AttachParams::default().stdout(true).stderr(false);
            let mut process = pods
                .exec(pod, ["head", "-c", count.as_str(), "/dev/zero"], &params)
                .await?;
            let mut stdout = process.stdout().ok_or_else(|| anyhow!("no stdout"))?;
            let mut buf = vec![0u8; CHUNK];
            let mut total = 0u64;
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            if total != bytes {
                bail!("received {total} bytes, expected {bytes}");
            }
            process
        }
        ExecMode::Stdin => {
            let params = AttachParams::default()
                .stdin(true)
                .stdout(false)
                .stderr(false);
            let mut process = pods
                .exec(pod, ["sh", "-c", "cat > /dev/null"], &params)
                .await?;
            let mut remote = process.stdin().ok_or_else(|| anyhow!("no stdin"))?;
            let mut local = tokio::io::stdin();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = local.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                remote.write_all(&buf[..n]).await?;
            }
            remote.shutdown().await?;
            drop(remote);
            process
        }
        ExecMode::True => {
            let params = AttachParams::default().stdout(true).stderr(true);
            pods.exec(pod, ["true"], &params).await?
        }
    };
    check_status(&mut process).await
}

async fn check_status(process: &mut AttachedProcess) -> Result<()> {
    let status = process
        .take_status()
        .ok_or_else(|| anyhow!("no status channel"))?
        .await;
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
        other => bail!("remote command failed: {other:?}"),
    }
}
