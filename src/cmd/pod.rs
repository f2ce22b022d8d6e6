//! Naming the pod and container of an exec or attach, as kubectl does.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use podlink_client::Client;

/// The annotation naming a pod's default container.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// `NAME` or `pod/NAME` (also `pods/`, `po/`).
pub fn name(target: &str) -> anyhow::Result<&str> {
    let name = match target.split_once('/') {
        None => target,
        Some(("pod" | "pods" | "po", name)) => name,
        Some((kind, _)) => anyhow::bail!("{kind:?} targets are not supported here; name a pod"),
    };
    anyhow::ensure!(!name.is_empty(), "the pod name is empty");
    Ok(name)
}

/// The container to use: the one named, else the pod's default-container
/// annotation, else its first container. Fails for a missing or finished pod.
pub async fn container(client: &Client, pod: &str, named: Option<&str>) -> anyhow::Result<String> {
    let api: Api<Pod> = Api::namespaced(client.kube().clone(), client.namespace());
    let found = api.get(pod).await.map_err(podlink_client::Error::from)?;
    let phase = found
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed") {
        anyhow::bail!("cannot exec into a container in a completed pod; current phase is {phase}");
    }
    if let Some(named) = named {
        return Ok(named.to_owned());
    }
    let annotated = found
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CONTAINER))
        .cloned();
    let first = found
        .spec
        .and_then(|spec| spec.containers.into_iter().next())
        .map(|c| c.name);
    annotated
        .or(first)
        .ok_or_else(|| anyhow::anyhow!("pod {pod} has no containers"))
}
