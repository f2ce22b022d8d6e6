//! Shared by the watch test files that drive an in-process sandbox through
//! plain kube-rs (the informer under test reads through its own source).

use podlink_sandbox::Sandbox;

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
