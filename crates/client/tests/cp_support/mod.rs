//! Shared by the cp tests: a client for a test sandbox, deterministic file
//! contents, tree comparison, and pods whose `tar` is a script serving a
//! crafted archive.

#![allow(dead_code)] // each test file uses a different part

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::Api;
use podlink_client::{Client, ClientOptions};
use podlink_sandbox::ProcessKind;
use podlink_testkit::{wait_until, TestSandbox};

/// Bounds waiting; never an assertion about speed.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A client for `sandbox`.
pub async fn client(sandbox: &TestSandbox) -> Client {
    Client::from_options(&ClientOptions::new().kubeconfig(sandbox.kubeconfig()))
        .await
        .expect("client for the test sandbox")
}

/// `len` pseudo-random bytes from `seed` (xorshift: reproducible, not
/// compressible, no dependency).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What a tree holds: relative path → file bytes, link target, or
/// directory marker.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    File(Vec<u8>),
    Link(PathBuf),
    Dir,
}

/// Read the whole tree under `root` without following links.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let full = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let meta =
            fs::symlink_metadata(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
        if meta.is_dir() {
            for entry in fs::read_dir(&full).unwrap() {
                todo.push(rel.join(entry.unwrap().file_name()));
            }
            out.insert(rel, Node::Dir);
        } else if meta.file_type().is_symlink() {
            out.insert(rel, Node::Link(fs::read_link(&full).unwrap()));
        } else {
            out.insert(rel, Node::File(fs::read(&full).unwrap()));
        }
    }
    out
}

/// Start a pod named `name` whose `tar` (first on `PATH`) prints
/// `archive` instead of packing anything, and wait until it runs.
pub async fn pod_with_fake_tar(client: &Client, name: &str, bin: &Path, archive: &Path) {
    fs::create_dir_all(bin).unwrap();
    let tar = bin.join("tar");
    fs::write(
        &tar,
        format!("#!/bin/sh\nexec cat '{}'\n", archive.display()),
    )
    .unwrap();
    fs::set_permissions(&tar, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{
            "name": "main",
            "image": "busybox",
            "command": ["sleep", "3600"],
            "env": [{"name": "PATH", "value": path}]
        }]}
    }))
    .unwrap();
    let api: Api<Pod> = Api::default_namespaced(client.kube().clone());
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let phase = api
            .get(name)
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.phase);
        if phase.as_deref() == Some("Running") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod {name} never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the sandbox runs no exec process any more (copies leave
/// nothing behind).
pub fn no_exec_left(sandbox: &TestSandbox) {
    wait_until(PATIENCE, "exec processes to end", || {
        let left: Vec<_> = sandbox
            .processes()
            .into_iter()
            .filter(|p| p.kind == ProcessKind::Exec)
            .collect();
        left.is_empty().then_some(())
    });
}
