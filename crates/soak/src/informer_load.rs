//! Informers on pods while a writer creates, relabels and deletes pods;
//! at the end each informer's store must equal a fresh list.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use podlink_client::watch::{
    ApiSource, BackoffConfig, Informer, InformerBuilder, Termination, WatchConfig,
};
use podlink_client::Client;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::tally::{Count, Tally};

/// The label every churned pod carries.
const CHURN_LABEL: &str = "soak=churn";
/// Most churned pods alive at once.
const MAX_LIVE: usize = 12;
/// Pause between two writes.
const WRITE_PAUSE: Duration = Duration::from_millis(250);
/// Attempts per write before it counts as failed.
const WRITE_ATTEMPTS: usize = 4;
/// Bound on one write request.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// Name → resourceVersion: what a store or a list holds.
pub type Versions = BTreeMap<String, String>;

/// One informer and the label selector it watches (`None`: every pod).
pub struct Watched {
    selector: Option<&'static str>,
    informer: Informer<Pod>,
}

/// Starts an informer on every pod and one on the churned pods; each
/// counts an ending while running as a violation.
pub fn start(client: &Client, tally: &Arc<Tally>) -> Vec<Watched> {
    [None, Some(CHURN_LABEL)]
        .into_iter()
        .map(|selector| {
            let mut source =
                ApiSource::<Pod>::namespaced(client.kube().clone(), client.namespace());
            if let Some(selector) = selector {
                source = source.labels(selector);
            }
            let config = WatchConfig::default()
                .stall_timeout(Duration::from_secs(10))
                .backoff(
                    BackoffConfig::default()
                        .initial(Duration::from_millis(200))
                        .max(Duration::from_secs(3)),
                );
            let tally = Arc::clone(tally);
            let informer = InformerBuilder::new(config)
                .on_terminate(move |why| {
                    // Stopping it at the end is the one expected ending.
                    if matches!(why, Termination::Stopped) {
                        return;
                    }
                    tally.violation(
                        Count::InformerTerminations,
                        format!("informer {selector:?} ended: {why:?}"),
                    );
                })
                .start(source);
            Watched { selector, informer }
        })
        .collect()
}

impl Watched {
    /// Waits (bounded) for the first list.
    pub async fn synced(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.informer.store().synced())
            .await
            .unwrap_or(false)
    }

    fn store(&self) -> Versions {
        self.informer
            .store()
            .list()
            .iter()
            .map(|pod| versions_entry(pod))
            .collect()
    }

    /// Waits up to `deadline` for the store to equal a fresh list; the
    /// differences if it never did.
    pub async fn converge(&self, client: &Client, deadline: Duration) -> Result<usize, String> {
        let api: Api<Pod> = Api::namespaced(client.kube().clone(), client.namespace());
        let mut params = ListParams::default();
        if let Some(selector) = self.selector {
            params = params.labels(selector);
        }
        let until = Instant::now() + deadline;
        loop {
            let truth: Result<Versions, _> = api
                .list(&params)
                .await
                .map(|list| list.items.iter().map(versions_entry).collect());
            let store = self.store();
            match truth {
                Ok(truth) if truth == store => return Ok(truth.len()),
                Ok(truth) if Instant::now() >= until => {
                    return Err(format!(
                        "informer {:?}: store {} pods, list {} pods; first differences: {:?}",
                        self.selector,
                        store.len(),
                        truth.len(),
                        difference(&store, &truth)
                    ))
                }
                Err(err) if Instant::now() >= until => {
                    return Err(format!(
                        "informer {:?}: fresh list failed: {err}",
                        self.selector
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Stops the informer; `Err` if it had ended on its own.
    pub async fn stop(self) -> Result<(), String> {
        if self.informer.is_finished() {
            return Err(format!("informer {:?} had already ended", self.selector));
        }
        self.informer.stop().await;
        Ok(())
    }
}

fn versions_entry(pod: &Pod) -> (String, String) {
    (
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.resource_version.clone().unwrap_or_default(),
    )
}

/// Up to five names whose versions differ between `a` and `b`.
fn difference(a: &Versions, b: &Versions) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|name| a.get(*name) != b.get(*name))
        .take(5)
        .map(|name| format!("{name}: store {:?} list {:?}", a.get(name), b.get(name)))
        .collect()
}

fn churn_pod(name: &str) -> Pod {
    // A static manifest: serde cannot fail on it.
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"soak": "churn", "gen": "0"}},
        "spec": {"containers": [{"name": "main", "image": "none", "command": ["sleep", "3600"]}]}
    }))
    .unwrap_or_default()
}

/// Creates, relabels and deletes churned pods until `stop`.
pub async fn writer(client: Client, tally: Arc<Tally>, stop: CancellationToken, seed: u64) {
    let api: Api<Pod> = Api::namespaced(client.kube().clone(), client.namespace());
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut live: Vec<String> = Vec::new();
    let mut serial = 0u64;
    while !stop.is_cancelled() {
        let choice = rng.random_range(0..10);
        let done = if live.len() < MAX_LIVE && (live.is_empty() || choice < 4) {
            serial += 1;
            let name = format!("soak-churn-{serial}");
            let pod = churn_pod(&name);
            let params = PostParams::default();
            let created = write(|| api.create(&params, &pod)).await;
            if created {
                live.push(name);
            }
            created
        } else if choice < 7 {
            let name = &live[rng.random_range(0..live.len())];
            let patch = Patch::Merge(serde_json::json!({
                "metadata": {"labels": {"gen": serial.to_string()}}
            }));
            serial += 1;
            let params = PatchParams::default();
            write(|| api.patch(name, &params, &patch)).await
        } else {
            let name = live.swap_remove(rng.random_range(0..live.len()));
            let params = DeleteParams::default().grace_period(0);
            write(|| api.delete(&name, &params)).await
        };
        tally.bump(if done {
            Count::WriterWrites
        } else {
            Count::WriterFailures
        });
        tokio::time::sleep(WRITE_PAUSE).await;
    }
}

/// One write with a few retries; true when it was applied.
async fn write<T, F, Fut>(mut attempt: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    for _ in 0..WRITE_ATTEMPTS {
        match tokio::time::timeout(WRITE_DEADLINE, attempt()).await {
            Ok(Ok(_)) => return true,
            // Already there or already gone: an earlier attempt landed.
            Ok(Err(kube::Error::Api(status))) if status.code == 404 || status.code == 409 => {
                return true
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    false
}
