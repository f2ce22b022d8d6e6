//! `podlink watch pods [-l SELECTOR] [-o jsonl]`: the reconciled changes of
//! the pods, until stopped. With `-o jsonl`, one
//! `{"type":"ADDED"|"MODIFIED"|"DELETED","object":{…}}` per line (never
//! BOOKMARK or ERROR; after a re-list exactly the differences); without it,
//! one `TYPE pod/NAME` line per change. A failure being retried is said on
//! stderr once per new failure (the watch goes on); at `-v`, reconnects and
//! re-lists are logged too.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use kube::core::DynamicObject;
use podlink_client::watch::{reflector, ApiSource, Change, Health, WatchConfig};

use crate::args::{GlobalArgs, WatchArgs, WatchOutput};
use crate::cluster::Cluster;
use crate::cmd::get::{parse_pod_resource, pod_value, pods};
use crate::exit::Exit;
use crate::signals::StopSignals;

/// Run the command.
pub async fn run(global: &GlobalArgs, args: WatchArgs) -> anyhow::Result<Exit> {
    if parse_pod_resource(&args.resource)?.is_some() {
        anyhow::bail!("watch takes a resource type, not one object: use -l to narrow it");
    }
    let mut signals = StopSignals::install().context("installing signal handlers")?;
    let cluster = Cluster::connect(global).await?;
    let outcome = watch(&cluster, &args, &mut signals).await;
    cluster.close().await;
    outcome
}

async fn watch(
    cluster: &Cluster,
    args: &WatchArgs,
    signals: &mut StopSignals,
) -> anyhow::Result<Exit> {
    // Dynamic objects keep every field the server sent, so the lines carry
    // the full object, not only what k8s-openapi knows of pods.
    let mut source = ApiSource::<DynamicObject>::namespaced_with(
        cluster.client.kube().clone(),
        cluster.client.namespace(),
        &pods(),
    );
    if let Some(selector) = &args.selector {
        source = source.labels(selector);
    }
    let (_store, mut changes) =
        reflector(source, WatchConfig::default().stop_on_unauthorized(true));
    let health = changes.health();
    let mut reported_restarts = 0;
    let mut check = tokio::time::interval(FAILURE_CHECK);
    loop {
        let change = tokio::select! {
            biased;
            signal = signals.recv() => return Ok(Exit::Signalled(signal)),
            change = changes.next() => change,
            _ = check.tick() => {
                report_failures(&health, &mut reported_restarts);
                continue;
            }
        };
        let change = match change {
            Some(change) => change.context("watching pods")?,
            None => anyhow::bail!("the watch ended without a reason"),
        };
        let line = match args.output {
            Some(WatchOutput::Jsonl) => jsonl(&change)?,
            None => format!(
                "{} pod/{}\n",
                change.kind(),
                change.object().metadata.name.as_deref().unwrap_or_default()
            ),
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(line.as_bytes())?;
        stdout.flush()?;
    }
}

/// How often the watch looks for failures to report.
const FAILURE_CHECK: Duration = Duration::from_secs(1);

/// Says on stderr that the watch is retrying, once per new failure, so that
/// a watch that cannot reach the server is never silent (the reflector
/// itself retries for ever).
fn report_failures(health: &Health, reported: &mut u64) {
    let report = health.report();
    if report.restarts == *reported {
        return;
    }
    *reported = report.restarts;
    if let Some((_, error)) = report.last_error {
        eprintln!("podlink: watching pods: {error}; retrying");
    }
}

/// One change as a JSON line, `type` first as the contract shows it.
fn jsonl(change: &Change<DynamicObject>) -> anyhow::Result<String> {
    let object = serde_json::to_string(&pod_value(change.object())?)?;
    Ok(format!(
        "{{\"type\":\"{}\",\"object\":{object}}}\n",
        change.kind()
    ))
}
