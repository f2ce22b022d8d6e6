//! The compact store (`Compact<K>`: objects kept as the JSON the server
//! sent) loses nothing: against a real sandbox, after the initial sync and
//! after changes and deletions, every object decoded from an informer's
//! store equals the same object from a fresh list, for a typed kind (`Pod`)
//! and for `DynamicObject` (every field, including ones k8s-openapi does
//! not know), with streaming and with paged initial lists.

mod watch_support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{DynamicObject, Selector};
use kube::Resource;
use podlink_client::watch::{ApiSource, Compact, InformerBuilder, InitialList, Store, WatchConfig};
use tokio::time::Instant;
use watch_support::{create_pods, start_sandbox};

const NAMESPACE: &str = "compact";
const PODS: usize = 300;
/// Bounds every wait (generous for a loaded 2-core machine).
const DEADLINE: Duration = Duration::from_secs(60);

/// A pod bound to a node the sandbox does not run (no process starts), with
/// labels, annotations and text that needs escaping.
fn pod_manifest(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("c-{i:04}"),
            "labels": {"compact": "yes", "shard": (i % 3).to_string()},
            "annotations": {"note": format!("pod \"{i}\" \\ ünïcode ✓\n")},
        },
        "spec": {
            "nodeName": "elsewhere",
            "containers": [{
                "name": "main",
                "image": "registry.example/app:1.0",
                "command": ["sleep", "600"],
                "env": [{"name": "I", "value": i.to_string()}],
            }]
        }
    }))
    .expect("pod manifest")
}

/// Every object of the store, decoded, by name.
fn decoded<K>(store: &Store<Compact<K>>) -> BTreeMap<String, K>
where
    K: Resource + serde::de::DeserializeOwned,
{
    store
        .list()
        .iter()
        .map(|compact| {
            let object = compact.decode().expect("stored JSON decodes");
            (object.meta().name.clone().unwrap_or_default(), object)
        })
        .collect()
}

/// A fresh list of the namespace, by name.
async fn listed<K>(api: &Api<K>) -> BTreeMap<String, K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|object| (object.meta().name.clone().unwrap_or_default(), object))
        .collect()
}

/// Waits (bounded) until the store holds exactly what a fresh list says;
/// the last difference if it never does.
async fn converge<K>(store: &Store<Compact<K>>, api: &Api<K>) -> Result<(), String>
where
    K: Resource + Clone + PartialEq + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let started = Instant::now();
    loop {
        let (held, fresh) = (decoded(store), listed(api).await);
        if held == fresh {
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            let differ: Vec<_> = fresh
                .keys()
                .chain(held.keys())
                .filter(|name| held.get(*name) != fresh.get(*name))
                .take(3)
                .collect();
            return Err(format!(
                "store {} objects, list {}; first differing: {differ:?}",
                held.len(),
                fresh.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_stores_hold_exactly_what_a_fresh_list_says() {
    let (_sandbox, client) = start_sandbox().await;
    let pods = create_pods(&client, NAMESPACE, PODS, 8, pod_manifest).await;

    let resource = ApiResource::erase::<Pod>(&());
    let dynamic: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let configs = [
        WatchConfig::default(),
        WatchConfig::default()
            .initial(InitialList::Paged)
            .page_size(70),
    ];
    let mut typed = Vec::new();
    let mut untyped = Vec::new();
    for config in configs {
        typed.push(InformerBuilder::new(config.clone()).start(
            ApiSource::<Compact<Pod>>::namespaced(client.clone(), NAMESPACE),
        ));
        untyped.push(InformerBuilder::new(config).start(
            ApiSource::<Compact<DynamicObject>>::namespaced_with(
                client.clone(),
                NAMESPACE,
                &resource,
            ),
        ));
    }
    for store in typed.iter().map(|i| i.store().clone()) {
        let synced = tokio::time::timeout(DEADLINE, store.synced()).await;
        assert_eq!(synced.ok(), Some(true), "initial sync");
        assert_eq!(store.len(), PODS);
        converge(&store, &pods)
            .await
            .expect("typed store after sync");
    }
    for store in untyped.iter().map(|i| i.store().clone()) {
        let synced = tokio::time::timeout(DEADLINE, store.synced()).await;
        assert_eq!(synced.ok(), Some(true), "initial sync");
        converge(&store, &dynamic)
            .await
            .expect("dynamic store after sync");
    }

    // Changes (labels move pods between shards) and deletions.
    for i in (0..PODS).step_by(7) {
        let patch = serde_json::json!({"metadata": {"labels": {"shard": "moved"}, "annotations": {"changed": i.to_string()}}});
        pods.patch(
            &format!("c-{i:04}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("patch");
    }
    for i in (3..PODS).step_by(11) {
        pods.delete(
            &format!("c-{i:04}"),
            &DeleteParams::default().grace_period(0),
        )
        .await
        .expect("delete");
    }
    for informer in &typed {
        converge(informer.store(), &pods)
            .await
            .expect("typed store after changes");
        let selector: Selector = [("shard", "moved")].into_iter().collect();
        let moved = informer.store().by_labels(&selector);
        let fresh = pods
            .list(&ListParams::default().labels("shard=moved"))
            .await
            .expect("list moved");
        assert_eq!(
            moved.len(),
            fresh.items.len(),
            "label selection on compact objects"
        );
    }
    for informer in &untyped {
        converge(informer.store(), &dynamic)
            .await
            .expect("dynamic store after changes");
    }
    for informer in typed {
        informer.stop().await;
    }
    for informer in untyped {
        informer.stop().await;
    }
}
