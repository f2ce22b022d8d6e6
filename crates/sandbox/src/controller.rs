//! The deployment controller: keeps `spec.replicas` pods matching each
//! deployment's template (a crude rollout replaces pods whose template hash
//! is stale), garbage-collects pods of deleted deployments and writes
//! deployment status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::api;
use crate::resource::Resource;
use crate::selector::LabelSelector;
use crate::state::State;
use crate::store::Object;

/// The label carrying the template hash, as on real ReplicaSet pods.
const HASH_LABEL: &str = "pod-template-hash";
/// Changes are coalesced for this long before a reconcile pass.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// A pass also runs this often, whatever happens.
const RESYNC: Duration = Duration::from_secs(5);

fn relevant(o: &Object) -> bool {
    o.resource == Resource::Deployments
        || (o.resource == Resource::Pods && o.labels.contains_key(HASH_LABEL))
}

/// Runs until `stop` turns true.
pub(crate) async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut events = state.store.subscribe();
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        let dirty = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = resync.tick() => true,
            event = events.recv() => match event {
                Ok(e) => relevant(&e.object),
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            },
        };
        if !dirty {
            continue;
        }
        tokio::time::sleep(DEBOUNCE).await;
        // Everything up to now is handled by this pass.
        events = events.resubscribe();
        reconcile_all(&state);
    }
}

fn template_hash(template: &Value) -> String {
    // FNV-1a over the template's JSON; stable across runs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in template.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| char::from(ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize]))
        .collect()
}

fn owner_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("kind").and_then(Value::as_str) == Some("Deployment"))?
        .get("uid")?
        .as_str()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn reconcile_all(state: &Arc<State>) {
    let deployments = state
        .store
        .list(Resource::Deployments, None, None, None, |_| true)
        .items;
    let uids: HashSet<&str> = deployments.iter().map(|d| d.uid.as_str()).collect();
    for d in &deployments {
        reconcile(state, d);
    }
    // Garbage collection: pods whose deployment is gone.
    let orphans = state
        .store
        .list(Resource::Pods, None, None, None, |o| {
            o.labels.contains_key(HASH_LABEL)
        })
        .items;
    for pod in orphans {
        let value = pod.value();
        if owner_uid(&value).is_some_and(|uid| !uids.contains(uid))
            && value.pointer("/metadata/deletionTimestamp").is_none()
        {
            let _ = api::delete_object(state, Resource::Pods, &pod.namespace, &pod.name, None);
        }
    }
}

fn reconcile(state: &Arc<State>, deployment: &Object) {
    let d = deployment.value();
    let ns = deployment.namespace.as_str();
    let Ok(selector) = d
        .pointer("/spec/selector")
        .map(LabelSelector::from_label_selector)
        .unwrap_or(Ok(LabelSelector::default()))
    else {
        return;
    };
    if selector.is_empty() {
        return;
    }
    let replicas = usize::try_from(
        d.pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1),
    )
    .unwrap_or(0);
    let template = d.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    let hash = template_hash(&template);
    let pods: Vec<Value> = state
        .store
        .list(Resource::Pods, Some(ns), None, None, |o| {
            selector.matches(&o.labels)
        })
        .items
        .iter()
        .map(|o| o.value())
        .filter(|p| owner_uid(p) == Some(deployment.uid.as_str()))
        .collect();
    let active: Vec<&Value> = pods
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|p| !matches!(crate::pods::phase(p), "Succeeded" | "Failed"))
        .collect();
    let name_of = |p: &Value| {
        p.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (current, stale): (Vec<&Value>, Vec<&Value>) = active.iter().partition(|p| {
        p.pointer(&format!("/metadata/labels/{HASH_LABEL}"))
            .and_then(Value::as_str)
            == Some(hash.as_str())
    });
    for p in &stale {
        let _ = api::delete_object(state, Resource::Pods, ns, &name_of(p), None);
    }
    // Finished pods are replaced too (restartPolicy Always rarely allows it).
    for p in pods
        .iter()
        .filter(|p| matches!(crate::pods::phase(p), "Succeeded" | "Failed"))
    {
        if p.pointer("/metadata/deletionTimestamp").is_none() {
            let _ = api::delete_object(state, Resource::Pods, ns, &name_of(p), None);
        }
    }
    if current.len() < replicas {
        for _ in current.len()..replicas {
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            labels[HASH_LABEL] = json!(hash);
            let pod = json!({
                "metadata": {
                    "name": format!("{}-{hash}-{}", deployment.name, crate::meta::random_suffix(5)),
                    "labels": labels,
                    "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({})),
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.name,
                        "uid": deployment.uid, "controller": true, "blockOwnerDeletion": true,
                    }],
                },
                "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
            });
            if let Err(e) = api::create_internal(state, Resource::Pods, Some(ns), pod) {
                tracing::warn!(deployment = %deployment.name, error = %e, "cannot create pod");
            }
        }
    } else {
        for p in current.iter().skip(replicas) {
            let _ = api::delete_object(state, Resource::Pods, ns, &name_of(p), None);
        }
    }
    let count = current.len();
    let ready = current
        .iter()
        .take(replicas)
        .filter(|p| is_ready(p))
        .count();
    let generation = d
        .pointer("/metadata/generation")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let available = ready >= replicas;
    let status = json!({
        "observedGeneration": generation,
        "replicas": count,
        "updatedReplicas": count,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": replicas.saturating_sub(ready),
        "conditions": [{
            "type": "Available",
            "status": if available { "True" } else { "False" },
            "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
            "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
        }],
    });
    let _ = state
        .store
        .update(Resource::Deployments, ns, &deployment.name, |old, mut v| {
            if old.uid != deployment.uid {
                return Err(crate::error::ApiError::Internal(
                    "deployment replaced".into(),
                ));
            }
            v["status"] = status;
            Ok(v)
        });
}
