//! Regression test for a lost-event bug: one deletecollection makes the
//! sandbox emit thousands of DELETED events at once, and its watch fan-out
//! used to drop one event after every full batch of 512 (the informer's
//! store then kept deleted pods forever). Every deletion must reach the
//! informer exactly once and the store must end empty, with the watch never
//! needing a re-list to get there.
//!
//! The informer holds its first deletion until the deletecollection has
//! returned, so that the whole burst queues up in the sandbox and its
//! fan-out sends it in full batches (the case that lost events). A raw
//! watch stream, left unread through the burst with the sandbox's live feed
//! made shorter than it, must be caught up from history, not ended.

mod watch_support;

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, WatchEvent, WatchParams};
use podlink_client::watch::{ApiSource, InformerBuilder, WatchConfig};
use podlink_sandbox::SandboxConfig;
use tokio::time::Instant;
use watch_support::{create_pods, start_sandbox, start_sandbox_with};

const NAMESPACE: &str = "burst";
/// More than the socket and body buffers between the sandbox's fan-out and
/// a stalled informer hold, so that events queue in the fan-out.
const PODS: usize = 20_000;
/// Concurrent create requests.
const CREATORS: usize = 16;
/// Bounds every wait (generous for a loaded 2-core machine).
const DEADLINE: Duration = Duration::from_secs(120);

/// A pod bound to a node the sandbox does not run, so no process starts.
fn pod_manifest(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("b-{i:05}"), "labels": {"burst": "yes"}},
        "spec": {
            "nodeName": "elsewhere",
            "containers": [{"name": "main", "image": "none", "command": ["sleep", "600"]}]
        }
    }))
    .expect("pod manifest")
}

/// Waits (bounded) until `done` holds, polling every 20 ms; whether it did.
async fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > DEADLINE {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_deletion_of_a_deletecollection_burst_arrives_once() {
    let (_sandbox, client) = start_sandbox().await;
    let api = create_pods(&client, NAMESPACE, PODS, CREATORS, pod_manifest).await;

    let deletions: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = Arc::clone(&deletions);
    let (go, gate) = mpsc::channel::<()>();
    let mut gate = Some(gate);
    let informer = InformerBuilder::new(WatchConfig::default())
        .on_delete(move |pod: &Arc<Pod>| {
            // Blocks one runtime worker once, bounded; the test runs on four.
            if let Some(gate) = gate.take() {
                let _ = gate.recv_timeout(DEADLINE);
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            *seen.lock().expect("deletions").entry(name).or_default() += 1;
        })
        .start(ApiSource::<Pod>::namespaced(client.clone(), NAMESPACE));
    let synced = tokio::time::timeout(DEADLINE, informer.store().synced()).await;
    assert_eq!(synced.ok(), Some(true), "initial sync");
    assert_eq!(informer.store().len(), PODS);

    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("burst=yes"),
    )
    .await
    .expect("deletecollection");
    // A failed send means the informer already gave up waiting.
    let _ = go.send(());
    let count = || deletions.lock().expect("deletions").len();
    // A lost event leaves its pod in the store: this wait then fails.
    let all = wait_until(|| count() == PODS).await;
    assert!(all, "{} of {PODS} deletions arrived", count());

    assert!(
        informer.store().is_empty(),
        "{} deleted pods still in the store",
        informer.store().len()
    );
    let repeated: Vec<_> = deletions
        .lock()
        .expect("deletions")
        .iter()
        .filter(|(_, times)| **times != 1)
        .map(|(name, times)| format!("{name}×{times}"))
        .collect();
    assert!(
        repeated.is_empty(),
        "deletions reported more than once: {repeated:?}"
    );
    // One list at the start: the burst arrived on the watch, not by re-listing.
    assert_eq!(informer.health().report().lists, 1);
    informer.stop().await;
}

/// One watch request, read only after the whole burst was sent: the sandbox
/// must not end it for falling behind (kubectl `get -w` used to stop there)
/// but replay what the live feed no longer holds, every deletion once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watch_stream_is_caught_up_not_ended() {
    let config = SandboxConfig::new().with_watch_backlog(PODS / 20);
    let (_sandbox, client) = start_sandbox_with(config).await;
    let api = create_pods(&client, NAMESPACE, PODS, CREATORS, pod_manifest).await;
    let version = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list version");
    let watch = api
        .watch(&WatchParams::default().timeout(290), &version)
        .await
        .expect("start the watch");
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("burst=yes"),
    )
    .await
    .expect("deletecollection");

    let mut deleted: HashMap<String, usize> = HashMap::new();
    let mut watch = std::pin::pin!(watch);
    let stop = Instant::now() + DEADLINE;
    while deleted.len() < PODS {
        match tokio::time::timeout_at(stop, watch.next()).await {
            Ok(Some(Ok(WatchEvent::Deleted(pod)))) => {
                *deleted
                    .entry(pod.metadata.name.unwrap_or_default())
                    .or_default() += 1;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("watch error after {} deletions: {e}", deleted.len()),
            Ok(None) => panic!(
                "the watch ended after {} of {PODS} deletions",
                deleted.len()
            ),
            Err(_) => panic!("timed out after {} of {PODS} deletions", deleted.len()),
        }
    }
    assert!(
        deleted.values().all(|times| *times == 1),
        "a deletion came twice"
    );
}
