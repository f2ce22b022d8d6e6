//! Checking the pod before copying, so that the usual mistakes get a
//! precise one-line answer instead of a failed exec: a missing pod, a pod
//! that is not running, a missing container, or several containers and none
//! named.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::error::CopyError;
use super::spec::PodPath;
use crate::Client;

/// The annotation naming a pod's default container (as kubectl reads it).
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// The container to copy to or from: `named` if the pod has it, else the
/// default-container annotation, else the only container.
pub(crate) async fn container(
    client: &Client,
    pod: &PodPath,
    named: Option<&str>,
) -> Result<String, CopyError> {
    let namespace = pod
        .namespace
        .as_deref()
        .unwrap_or_else(|| client.namespace());
    let api: Api<Pod> = Api::namespaced(client.kube().clone(), namespace);
    let found = match api.get(&pod.pod).await {
        Ok(found) => found,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            return Err(CopyError::PodNotFound {
                pod: pod.pod.clone(),
                namespace: namespace.to_owned(),
            })
        }
        Err(err) => return Err(CopyError::Client(err.into())),
    };
    choose(&pod.pod, &found, named)
}

fn choose(name: &str, pod: &Pod, named: Option<&str>) -> Result<String, CopyError> {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown");
    if phase != "Running" {
        return Err(CopyError::PodNotRunning {
            pod: name.to_owned(),
            phase: phase.to_owned(),
        });
    }
    let containers: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|spec| spec.containers.iter().map(|c| c.name.clone()))
        .collect();
    if let Some(named) = named {
        return if containers.iter().any(|c| c == named) {
            Ok(named.to_owned())
        } else {
            Err(CopyError::NoSuchContainer {
                pod: name.to_owned(),
                container: named.to_owned(),
                containers,
            })
        };
    }
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CONTAINER))
        .filter(|c| containers.contains(c));
    match (annotated, containers.as_slice()) {
        (Some(container), _) => Ok(container.clone()),
        (None, [only]) => Ok(only.clone()),
        _ => Err(CopyError::ContainerRequired {
            pod: name.to_owned(),
            containers,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn container_choice() {
        let two = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running"}
        }));
        assert!(matches!(
            choose("p", &two, None),
            Err(CopyError::ContainerRequired { containers, .. }) if containers == ["a", "b"]
        ));
        assert_eq!(choose("p", &two, Some("b")).unwrap(), "b");
        assert!(matches!(
            choose("p", &two, Some("c")),
            Err(CopyError::NoSuchContainer { .. })
        ));
        let annotated = pod(serde_json::json!({
            "metadata": {"name": "p", "annotations": {DEFAULT_CONTAINER: "b"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running"}
        }));
        assert_eq!(choose("p", &annotated, None).unwrap(), "b");
        let pending = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending"}
        }));
        assert!(matches!(
            choose("p", &pending, None),
            Err(CopyError::PodNotRunning { .. })
        ));
    }
}
