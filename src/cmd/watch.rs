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
use futures::{FutureExt, StreamExt};
use kube::core::DynamicObject;
use kube::Resource;
use podlink_client::watch::{reflector, ApiSource, Change, Compact, Health, WatchConfig};

use crate::args::{GlobalArgs, WatchArgs, WatchOutput};
use crate::cluster::Cluster;
use crate::cmd::get::{parse_pod_resource, pods};
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
    // Each pod is kept as the JSON the server sent, so the lines carry the
    // full object (not only what k8s-openapi knows of pods) and are written
    // without decoding it; the store holds the text, not a tree per pod.
    let mut source = ApiSource::<Compact<DynamicObject>>::namespaced_with(
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
    let mut out = Vec::new();
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
        let mut change = Some(change);
        // Every change already at hand goes out in one write: a burst of
        // thousands of events is not thousands of system calls.
        while let Some(next) = change.take() {
            let next = match next {
                Some(next) => next.context("watching pods")?,
                None => anyhow::bail!("the watch ended without a reason"),
            };
            line(&next, args.output, &mut out);
            if out.len() < OUTPUT_BATCH {
                change = changes.next().now_or_never();
            }
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&out)?;
        stdout.flush()?;
        out.clear();
    }
}

/// Output gathered before one write, at most (about).
const OUTPUT_BATCH: usize = 256 * 1024;

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

/// One change as a line: `TYPE pod/NAME`, or with `-o jsonl` a JSON line
/// with `type` first as the contract shows it.
fn line(change: &Change<Compact<DynamicObject>>, output: Option<WatchOutput>, out: &mut Vec<u8>) {
    let object = change.object();
    match output {
        Some(WatchOutput::Jsonl) => {
            out.extend_from_slice(b"{\"type\":\"");
            out.extend_from_slice(change.kind().as_bytes());
            out.extend_from_slice(b"\",\"object\":");
            write_pod_json(object, out);
            out.extend_from_slice(b"}\n");
        }
        None => {
            out.extend_from_slice(change.kind().as_bytes());
            out.extend_from_slice(b" pod/");
            out.extend_from_slice(object.meta().name.as_deref().unwrap_or_default().as_bytes());
            out.push(b'\n');
        }
    }
}

/// The pod's JSON as received, with the `apiVersion` and `kind` that list
/// items may lack put first.
fn write_pod_json(pod: &Compact<DynamicObject>, out: &mut Vec<u8>) {
    let json = pod.json().trim_start();
    match json.strip_prefix('{') {
        Some(rest) if !pod.has_types() => {
            let resource = pods();
            out.extend_from_slice(b"{\"apiVersion\":");
            push_json_string(&resource.api_version, out);
            out.extend_from_slice(b",\"kind\":");
            push_json_string(&resource.kind, out);
            if !rest.trim_start().starts_with('}') {
                out.push(b',');
            }
            out.extend_from_slice(rest.as_bytes());
        }
        _ => out.extend_from_slice(json.as_bytes()),
    }
}

fn push_json_string(value: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}
