//! Shared by the watch test files that drive an in-process sandbox through
//! plain kube-rs (the informer under test reads through its own source).
#![allow(dead_code)] // each test file uses a different part

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use podlink_sandbox::{Sandbox, SandboxConfig};

/// A sandbox without the demo pod, and a kube-rs client for it. Dropping
/// the sandbox (also when an assertion fails) shuts it down.
pub async fn start_sandbox() -> (Sandbox, kube::Client) {
    start_sandbox_with(SandboxConfig::new()).await
}

/// As [`start_sandbox`], from `config`.
pub async fn start_sandbox_with(config: SandboxConfig) -> (Sandbox, kube::Client) {
    let sandbox = Sandbox::start(config.with_demo(false))
        .await
        .expect("start the sandbox");
    let client = client_for(&sandbox).await;
    (sandbox, client)
}

/// A kube-rs client for `sandbox`, from the kubeconfig it wrote.
pub async fn client_for(sandbox: &Sandbox) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).expect("sandbox kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

/// Creates namespace `name` and, `parallel` requests at a time, the pods
/// `manifest(0..count)` in it; the pods' API.
pub async fn create_pods(
    client: &kube::Client,
    name: &str,
    count: usize,
    parallel: usize,
    manifest: impl Fn(usize) -> Pod,
) -> Api<Pod> {
    let namespace: Namespace = serde_json::from_value(
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .expect("namespace manifest");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    let api: Api<Pod> = Api::namespaced(client.clone(), name);
    futures::stream::iter(0..count)
        .map(|i| {
            let (api, pod) = (api.clone(), manifest(i));
            async move { api.create(&PostParams::default(), &pod).await }
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<_>>()
        .await
        .expect("create pods");
    api
}
