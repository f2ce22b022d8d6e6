//! The chaos test of issue #8: while a writer creates, updates and deletes
//! 500 pods over about a minute, the sandbox drops watch connections, fails
//! watches with 500 and 429, blackholes them and compacts its history, over
//! and over. At the end the informer's store must equal a fresh list, the
//! changes it emitted must replay to the same state, no object's
//! resourceVersion may have gone backwards, and the termination callback
//! must have fired zero times while running and exactly once on stop.
//!
//! `kubectl get -w` runs through the same chaos; what it missed is printed.

mod watch_support;

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use podlink_client::watch::{ApiSource, BackoffConfig, InformerBuilder, Termination, WatchConfig};
use podlink_sandbox::{Fault, Sandbox};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, Instant};
use watch_support::start_sandbox;

const PODS: usize = 500;
const WRITE_FOR: Duration = Duration::from_secs(60);

/// Kills the kubectl child if the test ends early.
struct ChildGuard(tokio::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

type Rvs = BTreeMap<String, u64>;

/// Changes as the informer's handlers saw them, in order.
type Recorded = Arc<Mutex<Vec<(String, Arc<Pod>)>>>;

fn rv(pod: &Pod) -> u64 {
    pod.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn pod_manifest(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("chaos-{i}"), "labels": {"gen": "0"}},
        "spec": {"containers": [{"name": "main", "image": "none", "command": ["sleep", "600"]}]}
    }))
    .expect("pod manifest")
}

/// Creates PODS pods over WRITE_FOR, updating and deleting along the way.
async fn writer(api: Api<Pod>) -> usize {
    let mut rng = SmallRng::seed_from_u64(8);
    let mut live: Vec<usize> = Vec::new();
    let mut writes = 0;
    let pause = WRITE_FOR / u32::try_from(PODS).unwrap_or(1);
    for i in 0..PODS {
        let started = Instant::now();
        let (post, manifest) = (PostParams::default(), pod_manifest(i));
        if retry(|| api.create(&post, &manifest)).await {
            live.push(i);
            writes += 1;
        }
        if !live.is_empty() && rng.random_bool(0.6) {
            let target = live[rng.random_range(0..live.len())];
            let patch =
                Patch::Merge(serde_json::json!({"metadata": {"labels": {"gen": i.to_string()}}}));
            let (name, params) = (format!("chaos-{target}"), PatchParams::default());
            if retry(|| api.patch(&name, &params, &patch)).await {
                writes += 1;
            }
        }
        if live.len() > 1 && rng.random_bool(0.3) {
            let target = live.swap_remove(rng.random_range(0..live.len()));
            let (name, params) = (
                format!("chaos-{target}"),
                DeleteParams::default().grace_period(0),
            );
            if retry(|| api.delete(&name, &params)).await {
                writes += 1;
            }
        }
        tokio::time::sleep(pause.saturating_sub(started.elapsed())).await;
    }
    writes
}

/// Runs one write, retrying transient failures a few times.
async fn retry<T, F, Fut>(mut write: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    for _ in 0..5 {
        match write().await {
            Ok(_) => return true,
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {
                return false
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    false
}

/// Injects every kind of fault, round after round, until `stop`.
async fn chaos(sandbox: &Sandbox, stop: Instant) -> usize {
    let faults = [
        Fault::DropConnections,
        Fault::WatchError {
            code: 500,
            count: 3,
        },
        Fault::Compact,
        Fault::WatchError {
            code: 429,
            count: 2,
        },
        Fault::Blackhole { seconds: 10.0 },
        Fault::DropConnections,
        Fault::Compact,
    ];
    let mut injected = 0;
    for fault in faults.iter().cycle() {
        if Instant::now() >= stop {
            break;
        }
        sandbox.inject(fault.clone()).expect("inject a fault");
        injected += 1;
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    injected
}

fn replay(events: &[(String, Arc<Pod>)]) -> Rvs {
    let mut state = Rvs::new();
    for (kind, pod) in events {
        match kind.as_str() {
            "ADDED" | "MODIFIED" => {
                state.insert(name(pod), rv(pod));
            }
            _ => {
                state.remove(&name(pod));
            }
        }
    }
    state
}

/// Objects whose resourceVersion went backwards in `events` (per uid).
fn went_backwards(events: &[(String, Arc<Pod>)]) -> Vec<String> {
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut bad = Vec::new();
    for (kind, pod) in events {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let version = rv(pod);
        if let Some(previous) = last.insert(uid, version) {
            if version < previous {
                bad.push(format!("{kind} {} {previous} -> {version}", name(pod)));
            }
        }
    }
    bad
}

/// kubectl's view: its `--output-watch-events` JSON stream replayed.
fn kubectl_state(stdout: &str) -> (Rvs, usize) {
    let mut events = Vec::new();
    let stream = serde_json::Deserializer::from_str(stdout).into_iter::<serde_json::Value>();
    for value in stream.flatten() {
        let kind = value["type"].as_str().unwrap_or_default().to_owned();
        if let Ok(pod) = serde_json::from_value::<Pod>(value["object"].clone()) {
            events.push((kind, Arc::new(pod)));
        }
    }
    (replay(&events), events.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_survives_chaos_and_kubectl_does_not() {
    let (sandbox, client) = start_sandbox().await;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");

    let events: Recorded = Arc::default();
    let terminations = Arc::new(AtomicUsize::new(0));
    let record = |kind: &'static str| {
        let events = Arc::clone(&events);
        move |pod: &Arc<Pod>| {
            events
                .lock()
                .expect("events")
                .push((kind.to_owned(), Arc::clone(pod)))
        }
    };
    let (on_add, on_delete) = (record("ADDED"), record("DELETED"));
    let updates = Arc::clone(&events);
    let ended = Arc::clone(&terminations);
    let config = WatchConfig::default()
        .stall_timeout(Duration::from_secs(8))
        .backoff(
            BackoffConfig::default()
                .initial(Duration::from_millis(200))
                .max(Duration::from_secs(3)),
        );
    let informer = InformerBuilder::new(config)
        .on_add(on_add)
        .on_update(move |_old: &Arc<Pod>, new: &Arc<Pod>| {
            updates
                .lock()
                .expect("events")
                .push(("MODIFIED".to_owned(), Arc::clone(new)));
        })
        .on_delete(on_delete)
        .on_terminate(move |_why: &Termination| {
            ended.fetch_add(1, Ordering::SeqCst);
        })
        .start(ApiSource::<Pod>::namespaced(client.clone(), "default"));
    timeout(Duration::from_secs(30), informer.store().synced())
        .await
        .expect("initial sync");

    // kubectl get -w through the same chaos.
    let cache = std::env::temp_dir().join(format!("podlink-chaos-kubectl-{}", std::process::id()));
    let kubectl = tokio::process::Command::new("kubectl")
        .args([
            "get",
            "pods",
            "-w",
            "--output-watch-events",
            "-o",
            "json",
            "--kubeconfig",
        ])
        .arg(sandbox.kubeconfig_path())
        .env("KUBECACHEDIR", &cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ok()
        .map(ChildGuard);

    let stop_chaos = Instant::now() + WRITE_FOR;
    let (writes, injected) = tokio::join!(writer(api.clone()), chaos(&sandbox, stop_chaos));
    assert_eq!(
        terminations.load(Ordering::SeqCst),
        0,
        "the informer ended while running"
    );

    // Converge: the store must reach the server's state.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (truth, store_state) = loop {
        let truth: Rvs = api
            .list(&ListParams::default())
            .await
            .expect("fresh list")
            .items
            .iter()
            .map(|p| (name(p), rv(p)))
            .collect();
        let store: Rvs = informer
            .store()
            .list()
            .iter()
            .map(|p| (name(p), rv(p)))
            .collect();
        if store == truth || Instant::now() >= deadline {
            break (truth, store);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let report = informer.health().report();
    let termination = informer.stop().await;
    let events = events.lock().expect("events").clone();

    // kubectl's view, for the report.
    let kubectl_report = match kubectl {
        Some(mut child) => {
            let ended_alone = child.0.try_wait().ok().flatten();
            let _ = child.0.start_kill();
            let mut stdout = String::new();
            let mut stderr = String::new();
            if let Some(mut out) = child.0.stdout.take() {
                let _ = timeout(Duration::from_secs(10), out.read_to_string(&mut stdout)).await;
            }
            if let Some(mut err) = child.0.stderr.take() {
                let _ = timeout(Duration::from_secs(10), err.read_to_string(&mut stderr)).await;
            }
            let _ = timeout(Duration::from_secs(10), child.0.wait()).await;
            let status = match ended_alone {
                Some(status) => format!("it exited on its own ({status})"),
                None => "it was still running, stopped by the test".to_owned(),
            };
            let (state, seen) = kubectl_state(&stdout);
            let missing = truth.keys().filter(|k| !state.contains_key(*k)).count();
            let stale = truth
                .iter()
                .filter(|(k, v)| state.get(*k).is_some_and(|s| s != *v))
                .count();
            let ghosts = state.keys().filter(|k| !truth.contains_key(*k)).count();
            format!(
                "kubectl get -w: {seen} events, then {status}; vs the final {} pods: {missing} missing, {stale} stale, {ghosts} deleted but still shown; stderr: {}",
                truth.len(),
                stderr.trim()
            )
        }
        None => "kubectl get -w: kubectl could not be started".to_owned(),
    };
    let _ = std::fs::remove_dir_all(&cache);

    println!("writes: {writes}, faults injected: {injected}");
    println!(
        "podlink informer: {} events, {} restarts, {} lists, last error {:?}; store {} pods, server {} pods",
        events.len(),
        report.restarts,
        report.lists,
        report.last_error.as_ref().map(|(_, e)| e),
        store_state.len(),
        truth.len()
    );
    println!("{kubectl_report}");

    assert_eq!(store_state, truth, "the store equals a fresh list");
    assert_eq!(
        replay(&events),
        truth,
        "the emitted events replay to the same state"
    );
    assert_eq!(
        went_backwards(&events),
        Vec::<String>::new(),
        "no resourceVersion went backwards"
    );
    assert!(
        matches!(termination, Termination::Stopped),
        "{termination:?}"
    );
    assert_eq!(
        terminations.load(Ordering::SeqCst),
        1,
        "terminated exactly once, on stop"
    );
    assert!(report.restarts > 0, "the chaos reached the watcher");
    assert!(injected >= 10);
    sandbox.shutdown().await;
}
