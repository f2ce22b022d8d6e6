//! Idle exec sessions: the memory each open `cat` session costs the client.
//! Library clients hold all sessions in one process (RSS growth / sessions);
//! CLI clients need one process per session (their mean RSS per process).

use std::collections::HashSet;
use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio::process::Child;

use super::series;
use crate::process::{wait_success, Lines};
use crate::procfs;
use crate::report::{Check, Sample, Table};
use crate::runner::{interleave, Ctx};

#[derive(Debug, Clone, Copy)]
enum Client {
    PodlinkLib,
    KubeRs,
    PodlinkCli,
    Kubectl,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::PodlinkLib => "podlink library",
            Client::KubeRs => "kube-rs",
            Client::PodlinkCli => "podlink (one CLI process per session)",
            Client::Kubectl => "kubectl (one process per session)",
        })
    }
}

const CLIENTS: [Client; 4] = [
    Client::PodlinkLib,
    Client::KubeRs,
    Client::PodlinkCli,
    Client::Kubectl,
];

/// Pids of the exec'd `cat` processes the sandbox currently runs (podlink
/// may wrap the command, e.g. `env PODLINK_SESSION=… cat`, so the last word
/// counts).
async fn remote_cats(ctx: &Ctx) -> Result<HashSet<u64>> {
    let items = crate::cluster::processes(&ctx.kube).await?;
    let is_cat = |p: &serde_json::Value| {
        p["command"]
            .as_array()
            .and_then(|c| c.last())
            .is_some_and(|w| w == "cat")
    };
    Ok(items
        .iter()
        .filter(|p| p["kind"] == "exec" && is_cat(p))
        .filter_map(|p| p["pid"].as_u64())
        .collect())
}

async fn library(ctx: &Ctx, client: Client, sessions: usize) -> Result<Sample> {
    let library = if let Client::KubeRs = client {
        "kube-rs"
    } else {
        "podlink"
    };
    let mut child = ctx
        .tools
        .helper()
        .args(["lib-idle", library, "--sessions", &sessions.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = Lines::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("stdout not piped"))?,
    );
    let line = lines
        .until(ctx.sizes.deadline, "RSS figures", |l| {
            l.split_whitespace().count() == 2
        })
        .await?;
    let figures: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [before, after] = figures[..] else {
        bail!("malformed RSS line {line:?}")
    };
    wait_success(&mut child, ctx.sizes.deadline, "lib-idle").await?;
    Ok(Sample {
        value: after.saturating_sub(before) as f64 / sessions as f64,
        peak_rss_kib: Some(after),
        ..Sample::default()
    })
}

async fn processes(ctx: &Ctx, client: Client, sessions: usize) -> Result<Sample> {
    // Cats left over from an earlier run may end meanwhile: count new pids.
    let base = remote_cats(ctx).await?;
    let mut children: Vec<Child> = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let mut command = if let Client::Kubectl = client {
            ctx.tools.kubectl()
        } else {
            ctx.tools.podlink()
        };
        command
            .args(["exec", "-i", "demo", "--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        children.push(command.spawn()?);
    }
    let started = tokio::time::Instant::now();
    while remote_cats(ctx).await?.difference(&base).count() < sessions {
        if started.elapsed() > ctx.sizes.deadline {
            bail!(
                "{sessions} sessions not open within {:?}",
                ctx.sizes.deadline
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut total = 0u64;
    for child in &children {
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("a session process exited early"))?;
        total += procfs::memory(&pid.to_string())?.rss_kib;
    }
    for child in &mut children {
        drop(child.stdin.take());
    }
    for child in &mut children {
        wait_success(child, ctx.sizes.deadline, &format!("{client} exec -i cat")).await?;
    }
    Ok(Sample {
        value: total as f64 / sessions as f64,
        ..Sample::default()
    })
}

/// The idle-sessions table.
pub async fn run(ctx: &Ctx) -> Result<Table> {
    let sessions = ctx.sizes.idle_sessions;
    let results = interleave("idle", &CLIENTS, ctx.repeats, async |client| match client {
        Client::PodlinkLib | Client::KubeRs => library(ctx, client, sessions).await,
        Client::PodlinkCli | Client::Kubectl => processes(ctx, client, sessions).await,
    })
    .await;
    let lingering = remote_cats(ctx)
        .await
        .map_or_else(|e| format!("unknown ({e:#})"), |n| n.len().to_string());
    Ok(Table {
        title: format!("{sessions} concurrent idle exec sessions (`cat`, stdin open)"),
        unit: "KiB/session",
        reference: "kube-rs",
        target: "podlink ≤ 256 KiB RSS per session",
        series: series(&CLIENTS, results),
        checks: vec![Check::AtMost { client: "podlink library", bound: 256.0 }],
        notes: vec![
            "Library clients: (RSS with all sessions open − RSS after one warm-up exec) / sessions, in one process; the peak RSS column is that process's RSS with all sessions open.".into(),
            "CLI clients: mean RSS of the per-session processes once the sandbox runs every `cat`.".into(),
            format!("Remote `cat` processes still running after the scenario: {lingering}."),
        ],
    })
}
