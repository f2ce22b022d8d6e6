//! Setting up the sandbox through its API: the server pod for the
//! port-forward scenarios, and the pods the watch scenario lists.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

/// Concurrent POSTs when creating many pods.
const CREATE_CONCURRENCY: usize = 32;
/// How long a pod may take to reach Running and listen.
const POD_READY_DEADLINE: Duration = Duration::from_secs(60);
/// The node name that makes the sandbox store a pod without running it.
pub const ELSEWHERE: &str = "bench-elsewhere";
/// Label on every pod the watch scenario creates.
pub const WATCH_LABEL: &str = "bench=watch";

/// A kube-rs client for the sandbox's kubeconfig.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .context("reading the sandbox kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Starts pod `name` running this harness as a [`crate::args::Helper::PodServer`]
/// on two loopback ports (inside the pod's network namespace when the
/// sandbox gives it one); waits until it runs and returns its main pid.
pub async fn start_pod_server(
    client: &kube::Client,
    name: &str,
    me: &Path,
    bulk: u16,
    http: u16,
) -> Result<u32> {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{
            "name": "server",
            "image": "podlink-bench",
            "command": [me, "pod-server", "--bulk-port", bulk.to_string(), "--http-port", http.to_string()],
            "ports": [{"containerPort": bulk}, {"containerPort": http}],
        }]},
    }))?;
    pods.create(&PostParams::default(), &pod)
        .await
        .with_context(|| format!("creating pod {name}"))?;
    let started = tokio::time::Instant::now();
    loop {
        let phase = pods
            .get(name)
            .await?
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        if phase == "Running" {
            let main = processes(client)
                .await?
                .into_iter()
                .find(|p| p["pod"] == name && p["kind"] == "main")
                .and_then(|p| p["pid"].as_u64());
            if let Some(pid) = main {
                return Ok(u32::try_from(pid)?);
            }
        }
        if started.elapsed() > POD_READY_DEADLINE {
            bail!("pod {name} not running after {POD_READY_DEADLINE:?} (phase {phase:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every process the sandbox runs (`GET /sandbox/v1/processes`).
pub async fn processes(client: &kube::Client) -> Result<Vec<serde_json::Value>> {
    let request = http::Request::get("/sandbox/v1/processes").body(Vec::new())?;
    let text = client
        .request_text(request)
        .await
        .context("GET /sandbox/v1/processes")?;
    let mut list: serde_json::Value = serde_json::from_str(&text)?;
    match list["items"].take() {
        serde_json::Value::Array(items) => Ok(items),
        _ => bail!("no items in /sandbox/v1/processes"),
    }
}

/// Creates namespace `name` if it does not exist.
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await?.is_some() {
        return Ok(());
    }
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )?;
    namespaces.create(&PostParams::default(), &ns).await?;
    Ok(())
}

/// Creates `count` pods in `namespace` that the sandbox stores but never
/// runs, [`CREATE_CONCURRENCY`] POSTs at a time.
pub async fn create_pods(client: &kube::Client, namespace: &str, count: usize) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    futures::stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": format!("w-{i:06}"), "labels": {"bench": "watch", "shard": (i % 16).to_string()}},
                    "spec": {
                        "nodeName": ELSEWHERE,
                        "containers": [{"name": "main", "image": "registry.example/app:1.0", "command": ["sleep", "infinity"]}],
                    },
                }))?;
                pods.create(&PostParams::default(), &pod).await.with_context(|| format!("creating pod w-{i:06}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// Deletes every watch-scenario pod in `namespace` with one
/// deletecollection request (the sandbox emits one DELETED event each).
pub async fn delete_pods(client: &kube::Client, namespace: &str) -> Result<()> {
    let request = http_delete_collection(namespace)?;
    client
        .request_text(request)
        .await
        .context("deletecollection")?;
    Ok(())
}

fn http_delete_collection(namespace: &str) -> Result<http::Request<Vec<u8>>> {
    let uri = format!("/api/v1/namespaces/{namespace}/pods?labelSelector=bench%3Dwatch");
    http::Request::delete(uri)
        .body(Vec::new())
        .map_err(|e| anyhow!("request: {e}"))
}

/// Number of pods in `namespace` carrying [`WATCH_LABEL`].
pub async fn count_pods(client: &kube::Client, namespace: &str) -> Result<usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut count = 0;
    let mut params = ListParams::default().labels(WATCH_LABEL).limit(5000);
    loop {
        let page = pods.list(&params).await?;
        count += page.items.len();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(count),
        }
    }
}
