//! One soak run: start the sandbox, start every workload and the fault
//! loop, stop them after the duration, then check every invariant.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use podlink_client::{Client, ClientOptions};
use podlink_testkit::podlink::{podlink_binary, SandboxProcess};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::forward_load::{self, Forward};
use crate::report::Report;
use crate::sandbox::Hooks;
use crate::tally::{Count, Tally};
use crate::{exec_load, fault_loop, health, informer_load};

/// Bound on waiting for pods to run and informers to sync.
const SETUP_DEADLINE: Duration = Duration::from_secs(60);
/// Longest warm-up before the start RSS is taken.
const MAX_WARM_UP: Duration = Duration::from_secs(30);
/// How often RSS is sampled for the peak.
const RSS_EVERY: Duration = Duration::from_secs(5);
/// Bound on the workers finishing their last session after the stop.
const DRAIN_DEADLINE: Duration = Duration::from_secs(150);
/// Bound on an informer reaching the server's state once faults stop.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(90);
/// Bound on cancelled and cut sessions' processes going away: longer than
/// the client's 30 s clean-up budget, which a dropped handle spends in the
/// background.
const LEAK_GRACE: Duration = Duration::from_secs(45);

/// Runs the soak as `args` say and returns its figures.
pub async fn run(args: &Args, seed: u64) -> Result<Report> {
    let podlink = podlink_binary(args.podlink.as_deref())?;
    let dir = tempfile::Builder::new()
        .prefix("podlink-soak-")
        .tempdir()
        .context("creating the soak's folder")?;
    let sandbox = SandboxProcess::start(&podlink, dir.path(), "error").await?;
    eprintln!("soak: {}", sandbox.ready_line());
    let client = Client::from_options(&ClientOptions::new().kubeconfig(sandbox.kubeconfig()))
        .await
        .context("a client for the sandbox")?;
    let hooks = Hooks::new(client.kube().clone());
    let tally = Arc::new(Tally::default());
    let mut seeds = SmallRng::seed_from_u64(seed);

    forward_load::create_pod(&client).await?;
    wait_running(&client, &[exec_load::POD, forward_load::POD]).await?;
    let forwards: Vec<Arc<Forward>> = forward_load::PROTOCOLS
        .iter()
        .map(|p| Arc::new(Forward::new(client.clone(), *p)))
        .collect();
    for forward in &forwards {
        forward_load::ready(forward, SETUP_DEADLINE).await?;
    }
    eprintln!(
        "soak: port-forwards echo over {:?}",
        forward_load::PROTOCOLS
    );
    let informers = informer_load::start(&client, &tally);
    for watched in &informers {
        if !watched.synced(SETUP_DEADLINE).await {
            bail!("an informer did not sync within {SETUP_DEADLINE:?}");
        }
    }

    eprintln!("soak: informers synced; starting the workloads and the fault loop");
    let stop = CancellationToken::new();
    let mut workers = JoinSet::new();
    for _ in 0..args.exec_workers {
        let (client, tally, stop) = (client.clone(), Arc::clone(&tally), stop.clone());
        workers.spawn(exec_load::worker(client, tally, stop, seeds.random()));
    }
    for forward in &forwards {
        for _ in 0..args.forward_workers {
            let (forward, tally, stop) = (Arc::clone(forward), Arc::clone(&tally), stop.clone());
            workers.spawn(forward_load::worker(forward, tally, stop, seeds.random()));
        }
    }
    workers.spawn(informer_load::writer(
        client.clone(),
        Arc::clone(&tally),
        stop.clone(),
        seeds.random(),
    ));
    let faults = tokio::spawn(fault_loop::run(
        hooks.clone(),
        Arc::clone(&tally),
        stop.clone(),
        seeds.random(),
    ));

    let started = Instant::now();
    let warm_up = (args.duration / 6).min(MAX_WARM_UP);
    let (rss_start, rss_peak) = measure(started, warm_up, args.duration).await;
    let rss_end = health::rss_kib();
    let ran = started.elapsed();
    eprintln!("soak: stopping after {ran:?}");
    stop.cancel();
    let _ = faults.await;
    drain(workers, &tally).await;

    let mut informer_mismatches = Vec::new();
    let informers_checked = informers.len();
    for watched in informers {
        if let Err(mismatch) = watched.converge(&client, CONVERGE_DEADLINE).await {
            informer_mismatches.push(mismatch);
        }
        if let Err(ended) = watched.stop().await {
            informer_mismatches.push(ended);
        }
    }
    for forward in &forwards {
        forward.shutdown().await;
    }
    let leaked = leaked_processes(&client, &hooks).await?;

    let counts = tally.counts();
    Ok(Report {
        seed,
        duration_secs: ran.as_secs(),
        faults: tally.faults(),
        sessions: tally.get(Count::ExecSessions) + tally.get(Count::ForwardConnections),
        bytes_verified: tally.get(Count::ExecBytesVerified)
            + tally.get(Count::ForwardBytesVerified),
        counts,
        transport_errors: tally.transport_errors(),
        processes_leaked: leaked.len(),
        leaked,
        informers_checked,
        informer_mismatches,
        panics: health::panics(),
        rss_start_kib: rss_start,
        rss_end_kib: rss_end,
        rss_peak_kib: rss_peak.max(rss_end),
        violations: tally.samples(),
    })
}

/// Sleeps out the run (SIGINT or SIGTERM end it early), sampling RSS:
/// returns the figure after `warm_up` and the peak.
async fn measure(started: Instant, warm_up: Duration, duration: Duration) -> (u64, u64) {
    let mut rss_start = None;
    let mut peak = 0;
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sigterm);
    while started.elapsed() < duration {
        let next = if rss_start.is_none() {
            warm_up
        } else {
            started.elapsed() + RSS_EVERY
        };
        let wake = started + next.min(duration);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = tokio::signal::ctrl_c() => break,
            () = &mut sigterm => break,
        }
        let rss = health::rss_kib();
        rss_start.get_or_insert(rss);
        peak = peak.max(rss);
    }
    let rss_start = rss_start.unwrap_or_else(health::rss_kib);
    (rss_start, peak)
}

/// Waits (bounded) for every worker's last session; one still running
/// past the deadline is aborted and counted as hung.
async fn drain(mut workers: JoinSet<()>, tally: &Tally) {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, workers.join_next()).await {
            Ok(None) => return,
            // A panic was counted by the hook; nothing else to do.
            Ok(Some(_)) => {}
            Err(_) => {
                tally.violation(
                    Count::ExecHung,
                    format!(
                        "{} workers still busy {DRAIN_DEADLINE:?} after the stop",
                        workers.len()
                    ),
                );
                workers.abort_all();
                while workers.join_next().await.is_some() {}
                return;
            }
        }
    }
}

async fn wait_running(client: &Client, names: &[&str]) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.kube().clone(), client.namespace());
    let deadline = Instant::now() + SETUP_DEADLINE;
    loop {
        let list = api.list(&ListParams::default()).await?;
        let running: BTreeSet<String> = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if names.iter().all(|n| running.contains(*n)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("pods {names:?} not running within {SETUP_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Remote processes that should not exist: anything but the main process
/// of a pod that exists, once cancelled and cut sessions had a grace period
/// to end.
async fn leaked_processes(client: &Client, hooks: &Hooks) -> Result<Vec<String>> {
    let api: Api<Pod> = Api::namespaced(client.kube().clone(), client.namespace());
    let deadline = Instant::now() + LEAK_GRACE;
    loop {
        let pods: BTreeSet<String> = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        let leaked: Vec<String> = hooks
            .processes()
            .await?
            .into_iter()
            .filter(|p| p.kind != "main" || !pods.contains(&p.pod))
            .map(|p| {
                format!(
                    "{} {} pid {} ({}) {:?}",
                    p.pod,
                    p.kind,
                    p.pid,
                    host_state(p.pid),
                    p.command
                )
            })
            .collect();
        if leaked.is_empty() || Instant::now() >= deadline {
            return Ok(leaked);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The host's view of `pid`: its state letter from /proc (R, S, Z…), or
/// "gone"; tells a live leak from a stale entry in the sandbox's list.
fn host_state(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after) = stat.rsplit_once(')')?;
            Some(format!("host state {}", after.trim().chars().next()?))
        })
        .unwrap_or_else(|| "gone from the host".to_owned())
}
