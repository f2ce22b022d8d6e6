//! watch scenarios: the initial sync of many pods (time and peak RSS), then
//! the rate at which the same watcher handles one DELETED event per pod
//! (one deletecollection request makes the sandbox emit them in a burst).

use std::fmt;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::Child;

use super::series;
use crate::cluster;
use crate::process::Lines;
use crate::procfs;
use crate::report::{Check, Sample, Table};
use crate::runner::{interleave, Ctx};

/// Namespace holding the watched pods (nothing else lives there).
const NAMESPACE: &str = "bench-watch";

#[derive(Debug, Clone, Copy)]
enum Client {
    PodlinkCli,
    PodlinkLib,
    PodlinkLibTyped,
    KubeRs,
    Kubectl,
    NodeJs,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::PodlinkCli => "podlink watch (CLI)",
            Client::PodlinkLib => "podlink library",
            Client::PodlinkLibTyped => "podlink library (typed Pod)",
            Client::KubeRs => "kube-rs watcher",
            Client::Kubectl => "kubectl get -w",
            Client::NodeJs => "client-node informer (JS)",
        })
    }
}

/// Sync and event-rate samples of one watcher run.
#[derive(Debug)]
struct Run {
    sync: Sample,
    events: Sample,
}

/// Makes sure exactly `count` watch pods exist (recreating after a run
/// deleted them); not timed.
async fn populate(ctx: &Ctx, count: usize) -> Result<()> {
    let existing = cluster::count_pods(&ctx.kube, NAMESPACE).await?;
    if existing == count {
        return Ok(());
    }
    if existing > 0 {
        cluster::delete_pods(&ctx.kube, NAMESPACE).await?;
    }
    let started = Instant::now();
    cluster::create_pods(&ctx.kube, NAMESPACE, count).await?;
    eprintln!(
        "[watch] created {count} pods in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn spawn(ctx: &Ctx, client: Client, pods: usize) -> Result<Child> {
    let expect = pods.to_string();
    let mut command = match client {
        Client::PodlinkCli => {
            let mut command = ctx.tools.podlink();
            command.args(["-n", NAMESPACE, "watch", "pods", "-o", "jsonl"]);
            command
        }
        Client::Kubectl => {
            // One `pod/NAME` line per object of the initial list, then one
            // per event (jsonpath would see each list page as one object).
            let mut command = ctx.tools.kubectl();
            command.args(["-n", NAMESPACE, "get", "pods", "--watch", "-o", "name"]);
            command
        }
        Client::PodlinkLib | Client::PodlinkLibTyped | Client::KubeRs => {
            let library = match client {
                Client::KubeRs => "kube-rs",
                _ => "podlink",
            };
            let mut command = ctx.tools.helper();
            command.args([
                "lib-watch",
                library,
                "--namespace",
                NAMESPACE,
                "--expect-deletes",
                &expect,
            ]);
            if matches!(client, Client::PodlinkLibTyped) {
                command.arg("--typed");
            }
            command
        }
        Client::NodeJs => {
            let mut command = ctx
                .tools
                .js()
                .ok_or_else(|| anyhow!("no JavaScript client"))?;
            command.args(["watch", NAMESPACE, &expect]);
            command
        }
    };
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    Ok(command.spawn()?)
}

/// Reads the watcher's output until `pods` events of the phase were seen.
/// The CLIs print one line per change; the helpers print one summary line.
async fn until_phase<R: tokio::io::AsyncRead + Unpin>(
    ctx: &Ctx,
    client: Client,
    lines: &mut Lines<R>,
    pods: usize,
    kind: &str,
    summary: &str,
) -> Result<()> {
    let started = Instant::now();
    match client {
        Client::PodlinkCli | Client::Kubectl => {
            let mut seen = 0;
            while seen < pods {
                let left = ctx.sizes.deadline.saturating_sub(started.elapsed());
                let line = lines
                    .next(left)
                    .await?
                    .ok_or_else(|| anyhow!("watch output ended after {seen} {kind}"))?;
                // kubectl's lines carry no type: its phases come in order
                // and only DELETED events follow the initial list.
                let head = &line[..line.len().min(40)];
                if matches!(client, Client::Kubectl)
                    || head.windows(kind.len()).any(|w| w == kind.as_bytes())
                {
                    seen += 1;
                }
            }
        }
        Client::PodlinkLib | Client::PodlinkLibTyped | Client::KubeRs | Client::NodeJs => {
            let want = format!("{summary} {pods}");
            let line = lines
                .until(ctx.sizes.deadline, &want, |l| l.starts_with(summary))
                .await?;
            if line.trim() != want {
                bail!("helper said {line:?}, expected {want:?}");
            }
        }
    }
    Ok(())
}

async fn once(ctx: &Ctx, client: Client) -> Result<Run> {
    let pods = ctx.sizes.watch_pods;
    populate(ctx, pods).await?;
    let probe = ctx.sandbox.cpu_probe();
    let mut child = spawn(ctx, client, pods)?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("watcher exited at once"))?;
    let mut lines = Lines::new(
        child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("stdout not piped"))?,
    );
    until_phase(ctx, client, &mut lines, pods, "ADDED", "synced")
        .await
        .context("initial sync")?;
    let span = probe.finish();
    let sync_peak = procfs::memory(&pid.to_string())?.peak_kib;
    let sync = Sample {
        value: span.wall.as_secs_f64(),
        peak_rss_kib: Some(sync_peak),
        server_cpu: Some(span.share),
        ..Sample::default()
    };

    let probe = ctx.sandbox.cpu_probe();
    let kube = ctx.kube.clone();
    let deleting = tokio::spawn(async move { cluster::delete_pods(&kube, NAMESPACE).await });
    until_phase(ctx, client, &mut lines, pods, "DELETED", "deleted")
        .await
        .context("deletions")?;
    let span = probe.finish();
    let peak = procfs::memory(&pid.to_string())?.peak_kib;
    let _ = child.kill().await;
    deleting.await??;
    let events = Sample {
        value: pods as f64 / span.wall.as_secs_f64(),
        peak_rss_kib: Some(peak),
        server_cpu: Some(span.share),
        ..Sample::default()
    };
    Ok(Run { sync, events })
}

/// Both watch tables.
pub async fn run(ctx: &Ctx) -> Result<Vec<Table>> {
    let pods = ctx.sizes.watch_pods;
    cluster::ensure_namespace(&ctx.kube, NAMESPACE).await?;
    let mut clients = vec![
        Client::PodlinkCli,
        Client::PodlinkLib,
        Client::PodlinkLibTyped,
        Client::KubeRs,
        Client::Kubectl,
    ];
    if ctx.tools.js.is_some() {
        clients.push(Client::NodeJs);
    }
    let results = interleave("watch", &clients, ctx.repeats, async |client| {
        once(ctx, client).await
    })
    .await;
    let (mut sync, mut events) = (Vec::new(), Vec::new());
    for per_client in results {
        let (s, e): (Vec<_>, Vec<_>) = per_client
            .into_iter()
            .map(|r| match r {
                Ok(run) => (Ok(run.sync), Ok(run.events)),
                Err(e) => (Err(anyhow!("{e:#}")), Err(e)),
            })
            .unzip();
        sync.push(s);
        events.push(e);
    }
    let common = "Watchers keep every object (the podlink CLI and library in their store, kube-rs in a reflector store, client-node in its informer cache; kubectl keeps none and only prints); each runs in its own process, peak RSS is its VmHWM. The podlink CLI and library keep each pod as the JSON the server sent (`Compact<Pod>`, every field kept, decoded on read: the store's `get`/`list` hand out the same data a typed store would); the typed row keeps `k8s_openapi` `Pod` values like kube-rs.";
    Ok(vec![
        Table {
            title: format!("watch initial sync of {pods} pods"),
            unit: "s",
            reference: "kube-rs watcher",
            target: "podlink peak RSS ≤ 0.5× kube-rs watcher's, and faster than it",
            series: series(&clients, sync),
            checks: vec![
                Check::RssAtMostTimes { client: "podlink library", of: "kube-rs watcher", factor: 0.5 },
                Check::AtMostTimes { client: "podlink library", of: "kube-rs watcher", factor: 1.0 },
                Check::RssAtMostTimes { client: "podlink watch (CLI)", of: "kube-rs watcher", factor: 0.5 },
                Check::AtMostTimes { client: "podlink watch (CLI)", of: "kube-rs watcher", factor: 1.0 },
            ],
            notes: vec![
                "Timed from process start until all pods are in the store (CLIs: the last initial ADDED line).".into(),
                common.into(),
            ],
        },
        Table {
            title: format!("watch event rate: {pods} DELETED events from one deletecollection"),
            unit: "events/s",
            reference: "kube-rs watcher",
            target: "≥ 50,000 events/s handled",
            series: series(&clients, events),
            checks: vec![
                Check::AtLeast { client: "podlink library", bound: 50_000.0 },
                Check::AtLeast { client: "podlink watch (CLI)", bound: 50_000.0 },
            ],
            notes: vec![
                "Timed from sending the deletecollection until the watcher handled the last deletion (CLIs: printed its DELETED line); this includes the sandbox producing the events, so it is a lower bound on the client's rate.".into(),
                common.into(),
            ],
        },
    ])
}
