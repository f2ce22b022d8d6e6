//! exec scenarios: stdout throughput (with the raw TLS ceiling), stdin
//! throughput, and latency of whole `true` processes.

use std::fmt;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{count_bytes, mb_per_s, series, size};
use crate::process::wait_success;
use crate::raw::RawServer;
use crate::report::{Check, Sample, Table};
use crate::runner::{interleave, Ctx};
use crate::stats::{median, percentile};

/// The pod every exec scenario runs in (exists from sandbox start).
const POD: &str = "demo";

#[derive(Debug, Clone, Copy)]
enum Client {
    Podlink,
    Kubectl,
    KubeRs,
    NodeJs,
    RawCeiling,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::Podlink => "podlink",
            Client::Kubectl => "kubectl",
            Client::KubeRs => "kube-rs",
            Client::NodeJs => "client-node (JS)",
            Client::RawCeiling => "raw TLS ceiling",
        })
    }
}

/// `CLIENT exec [-i] demo -- ARGV` (kube-rs: the helper with `helper`
/// arguments; client-node: its driver with `js` arguments).
fn command(
    ctx: &Ctx,
    client: Client,
    stdin: bool,
    argv: &[&str],
    helper: &[&str],
    js: &[&str],
) -> Result<Command> {
    let mut command = match client {
        Client::Podlink => ctx.tools.podlink(),
        Client::Kubectl => ctx.tools.kubectl(),
        Client::KubeRs => {
            let mut command = ctx.tools.helper();
            command.arg("kube-exec").args(helper);
            return Ok(command);
        }
        Client::NodeJs => {
            let mut command = ctx
                .tools
                .js()
                .ok_or_else(|| anyhow!("no JavaScript client"))?;
            command.args(js);
            return Ok(command);
        }
        Client::RawCeiling => bail!("the raw ceiling is not a command"),
    };
    command.arg("exec");
    if stdin {
        command.arg("-i");
    }
    command.arg(POD).arg("--").args(argv);
    Ok(command)
}

/// `head -c N /dev/zero` read through exec.
pub async fn stdout(ctx: &Ctx) -> Result<Table> {
    let bytes = ctx.sizes.exec_bytes;
    let raw = RawServer::start(&ctx.tools, &ctx.dir).await?;
    let mut clients = vec![
        Client::Podlink,
        Client::Kubectl,
        Client::KubeRs,
        Client::RawCeiling,
    ];
    if ctx.tools.js.is_some() {
        clients.insert(3, Client::NodeJs);
    }
    let results = interleave("exec-stdout", &clients, ctx.repeats, async |client| {
        if let Client::RawCeiling = client {
            let probe = crate::sandbox::CpuProbe::start(raw.pid());
            let got = tokio::time::timeout(ctx.sizes.deadline, raw.download(bytes))
                .await
                .map_err(|_| anyhow!("raw download timed out"))??;
            let span = probe.finish();
            if got != bytes {
                bail!("raw ceiling received {got} of {bytes} bytes");
            }
            return Ok(Sample {
                value: mb_per_s(bytes, span.wall),
                server_cpu: Some(span.share),
                ..Sample::default()
            });
        }
        let count = bytes.to_string();
        let mut command = command(
            ctx,
            client,
            false,
            &["head", "-c", &count, "/dev/zero"],
            &["stdout", "--bytes", &count],
            &["exec-stdout", &count],
        )?;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let probe = ctx.sandbox.cpu_probe();
        let mut child = command.spawn()?;
        let pipe = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("stdout not piped"))?;
        let counter = tokio::spawn(count_bytes(pipe));
        wait_success(&mut child, ctx.sizes.deadline, &format!("{client} exec")).await?;
        let got = counter.await??;
        let span = probe.finish();
        // The kube-rs and client-node drivers count (and check) the bytes themselves.
        if matches!(client, Client::Podlink | Client::Kubectl) && got != bytes {
            bail!("{client} delivered {got} of {bytes} bytes");
        }
        Ok(Sample {
            value: mb_per_s(bytes, span.wall),
            server_cpu: Some(span.share),
            ..Sample::default()
        })
    })
    .await;
    Ok(Table {
        title: format!("exec stdout: `head -c {}` of /dev/zero, discarded", size(bytes)),
        unit: "MB/s",
        reference: "kubectl",
        target: "podlink ≥ 3× kubectl and ≥ 70% of the raw ceiling",
        series: series(&clients, results),
        checks: vec![
            Check::AtLeastTimes { client: "podlink", of: "kubectl", factor: 3.0 },
            Check::AtLeastTimes { client: "podlink", of: "raw TLS ceiling", factor: 0.7 },
        ],
        notes: vec![
            "Whole client processes, timed from spawn to exit; the harness counts the bytes from the client's stdout pipe.".into(),
            "client-node (JS): @kubernetes/client-node 1.4.0 `Exec` (WebSocket) driven by bench/js/client.mjs, counting stdout itself.".into(),
            "raw TLS ceiling: the same `head -c` output copied into one rustls TLS 1.3 connection on loopback by a separate server process, no Kubernetes framing; its server CPU is that server's.".into(),
        ],
    })
}

/// 1 GiB piped into `cat > /dev/null` through exec.
pub async fn stdin(ctx: &Ctx) -> Table {
    let bytes = ctx.sizes.exec_bytes;
    let clients = [Client::Podlink, Client::Kubectl, Client::KubeRs];
    let results = interleave("exec-stdin", &clients, ctx.repeats, async |client| {
        let mut command = command(
            ctx,
            client,
            true,
            &["sh", "-c", "cat > /dev/null"],
            &["stdin"],
            &[],
        )?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let probe = ctx.sandbox.cpu_probe();
        let mut child = command.spawn()?;
        let mut pipe = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("stdin not piped"))?;
        let feeder = tokio::spawn(async move {
            let zeros = vec![0u8; 256 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                pipe.write_all(&zeros[..n]).await?;
                left -= n as u64;
            }
            pipe.shutdown().await
        });
        wait_success(&mut child, ctx.sizes.deadline, &format!("{client} exec -i")).await?;
        feeder.await??;
        let span = probe.finish();
        Ok(Sample {
            value: mb_per_s(bytes, span.wall),
            server_cpu: Some(span.share),
            ..Sample::default()
        })
    })
    .await;
    Table {
        title: format!("exec stdin: {} piped into `cat > /dev/null`", size(bytes)),
        unit: "MB/s",
        reference: "kubectl",
        target: "podlink ≥ 3× kubectl",
        series: series(&clients, results),
        checks: vec![Check::AtLeastTimes { client: "podlink", of: "kubectl", factor: 3.0 }],
        notes: vec!["Timed from spawn until the client exits with the remote `cat`'s success status (all bytes consumed).".into()],
    }
}

/// Sequential `exec demo -- true`, each a whole client process.
pub async fn latency(ctx: &Ctx) -> Table {
    let count = ctx.sizes.latency_count;
    let clients = [Client::Podlink, Client::Kubectl, Client::KubeRs];
    let results = interleave("exec-latency", &clients, ctx.repeats, async |client| {
        let probe = ctx.sandbox.cpu_probe();
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let mut command = command(ctx, client, false, &["true"], &["true"], &[])?;
            command.stdout(Stdio::null()).stderr(Stdio::piped());
            let started = Instant::now();
            let mut child = command.spawn()?;
            wait_success(
                &mut child,
                ctx.sizes.deadline,
                &format!("{client} exec true"),
            )
            .await?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let span = probe.finish();
        Ok(Sample {
            value: median(&times).unwrap_or(f64::NAN),
            p99_ms: percentile(&times, 99.0),
            server_cpu: Some(span.share),
            ..Sample::default()
        })
    })
    .await;
    Table {
        title: format!("exec latency: {count} sequential `true`, whole processes"),
        unit: "ms",
        reference: "kubectl",
        target: "podlink median ≤ 0.5× kubectl",
        series: series(&clients, results),
        checks: vec![Check::AtMostTimes { client: "podlink", of: "kubectl", factor: 0.5 }],
        notes: vec![
            "Each repeat's figure is the median of its processes; the table shows the median over repeats.".into(),
            "kube-rs runs as this harness re-executed (`podlink-bench kube-exec true`): its figure includes building a kube::Client from the kubeconfig.".into(),
        ],
    }
}
