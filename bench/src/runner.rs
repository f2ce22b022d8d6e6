//! One benchmark run: start the sandbox, run the chosen scenarios with
//! interleaved repeats, print (and optionally write) the report.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::args::{RunArgs, Scenario};
use crate::report::Table;
use crate::sandbox::SandboxProcess;
use crate::scenarios;
use crate::tools::{podlink_binary, Tools};

/// Sizes of a run: the issue's, or small ones for `--quick`.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Bytes through exec stdout / stdin.
    pub exec_bytes: u64,
    /// Sequential `true` processes per repeat.
    pub latency_count: usize,
    /// Bytes through one forwarded connection.
    pub pf_bytes: u64,
    /// Small HTTP requests per repeat.
    pub pf_requests: usize,
    /// Concurrent forwarded connections carrying them.
    pub pf_connections: usize,
    /// Pods listed by the watch scenario.
    pub watch_pods: usize,
    /// Concurrent idle exec sessions.
    pub idle_sessions: usize,
    /// Bound on any single measurement.
    pub deadline: Duration,
}

impl Sizes {
    /// Issue #10's sizes.
    pub const FULL: Sizes = Sizes {
        exec_bytes: 1 << 30,
        latency_count: 200,
        pf_bytes: 1 << 30,
        pf_requests: 20_000,
        pf_connections: 50,
        watch_pods: 100_000,
        idle_sessions: 100,
        deadline: Duration::from_secs(300),
    };
    /// Seconds-long sizes that only prove the harness works.
    pub const QUICK: Sizes = Sizes {
        exec_bytes: 4 << 20,
        latency_count: 3,
        pf_bytes: 4 << 20,
        pf_requests: 200,
        pf_connections: 4,
        watch_pods: 200,
        idle_sessions: 3,
        deadline: Duration::from_secs(60),
    };
}

/// Everything a scenario needs.
pub struct Ctx {
    /// Programs under test.
    pub tools: Tools,
    /// The sandbox process.
    pub sandbox: SandboxProcess,
    /// The harness's own kube-rs client (setup, not measured).
    pub kube: kube::Client,
    /// Sizes of this run.
    pub sizes: Sizes,
    /// Repeats per client.
    pub repeats: usize,
    /// A scratch folder removed at the end.
    pub dir: std::path::PathBuf,
}

/// Runs `once` for every client, `repeats` times, interleaved: repeat r
/// runs every client once, starting with a different client each repeat.
/// Returns each client's results in `clients` order.
pub async fn interleave<C: Copy + std::fmt::Display, T: std::fmt::Debug>(
    scenario: &str,
    clients: &[C],
    repeats: usize,
    mut once: impl AsyncFnMut(C) -> Result<T>,
) -> Vec<Vec<Result<T>>> {
    let mut results: Vec<Vec<Result<T>>> = clients.iter().map(|_| Vec::new()).collect();
    for repeat in 0..repeats {
        for k in 0..clients.len() {
            let i = (k + repeat) % clients.len();
            let result = once(clients[i]).await;
            match &result {
                Ok(value) => eprintln!(
                    "[{scenario}] repeat {}/{repeats} {}: {value:?}",
                    repeat + 1,
                    clients[i]
                ),
                Err(e) => eprintln!(
                    "[{scenario}] repeat {}/{repeats} {}: FAILED {e:#}",
                    repeat + 1,
                    clients[i]
                ),
            }
            results[i].push(result);
        }
    }
    results
}

/// The whole run.
pub async fn run(args: RunArgs) -> Result<()> {
    let sizes = if args.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };
    let repeats = args
        .repeats
        .unwrap_or(if args.quick { 2 } else { 3 })
        .max(1);
    let chosen: Vec<Scenario> = if args.only.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.only.clone()
    };
    let podlink = podlink_binary(args.podlink.as_deref())?;
    let scratch = tempfile::Builder::new()
        .prefix("podlink-bench-")
        .tempdir()?;
    let sandbox = SandboxProcess::start(&podlink, scratch.path()).await?;
    eprintln!(
        "sandbox at {} ({})",
        sandbox.url(),
        sandbox.kubeconfig().display()
    );
    let js = match crate::tools::js_client() {
        Ok(script) => Some(script),
        Err(e) => {
            eprintln!("JavaScript client skipped: {e:#}");
            None
        }
    };
    let tools = Tools {
        js,
        podlink,
        kubectl: args.kubectl.clone(),
        me: std::env::current_exe()?,
        kubeconfig: sandbox.kubeconfig().to_path_buf(),
        kube_cache: scratch.path().join("kube-cache"),
    };
    let kube = crate::cluster::client(sandbox.kubeconfig()).await?;
    let ctx = Ctx {
        tools,
        sandbox,
        kube,
        sizes,
        repeats,
        dir: scratch.path().to_path_buf(),
    };

    let mut tables: Vec<Table> = Vec::new();
    for scenario in chosen {
        match scenarios::run(&ctx, scenario).await {
            Ok(mut t) => tables.append(&mut t),
            Err(e) => eprintln!("scenario {scenario:?} could not run: {e:#}"),
        }
    }
    let report = render(&ctx, &args, &tables).await;
    println!("{report}");
    if let Some(path) = &args.output {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    drop(ctx);
    scratch.close()?;
    Ok(())
}

async fn render(ctx: &Ctx, args: &RunArgs, tables: &[Table]) -> String {
    let mut out = String::new();
    let mode = if args.quick {
        "quick (small sizes: proves the harness, not figures)"
    } else {
        "full"
    };
    let _ = writeln!(
        out,
        "## podlink-bench results ({mode}, {} repeats, interleaved)\n",
        ctx.repeats
    );
    let _ = writeln!(out, "{}", machine(&ctx.tools).await);
    for table in tables {
        let _ = writeln!(out, "{}", table.render());
    }
    out
}

/// The machine the run happened on.
async fn machine(tools: &Tools) -> String {
    let sh = |script: &'static str| async move {
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", script]);
        crate::process::output(command, Duration::from_secs(20), script)
            .await
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    };
    let kubectl = {
        let mut command = tools.kubectl();
        command.args(["version", "--client", "-o", "json"]);
        crate::process::output(command, Duration::from_secs(20), "kubectl version")
            .await
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| {
                v.pointer("/clientVersion/gitVersion")
                    .and_then(|g| g.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| "unknown".to_owned())
    };
    format!(
        "| machine | |\n|---|---|\n| date | {} |\n| cpus (nproc) | {} |\n| cpu model | {} |\n| memory | {} |\n| kernel | {} |\n| kubectl | {} (client; sandbox serves exec over WebSocket v5 and SPDY) |\n| podlink commit | {} |\n",
        sh("date -u '+%Y-%m-%d %H:%M UTC'").await,
        sh("nproc").await,
        sh("lscpu | sed -n 's/^Model name: *//p' | head -1").await,
        sh("free -h | awk '/^Mem:/ {print $2}'").await,
        sh("uname -sr").await,
        kubectl,
        sh("git rev-parse --short HEAD").await,
    )
}
