//! Shared fixtures of the streaming tests: a sandbox per test, kubectl
//! pointed at it with a private discovery cache, and guards that clean up
//! processes and folders even when a test fails.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use podlink_sandbox::{Sandbox, SandboxConfig};
use tokio::io::AsyncWriteExt;

/// Bounds every wait in these tests (never an assertion on time).
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A private temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let unique = format!(
            "podlink-stream-{tag}-{}-{:x}",
            std::process::id(),
            rand_suffix()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

/// One sandbox plus a kubectl environment for it. Dropping it ends every
/// process the sandbox started (the sandbox's own Drop) and removes the
/// kubectl cache.
pub struct Env {
    pub sandbox: Sandbox,
    cache: TempDir,
}

impl Env {
    pub async fn start() -> Self {
        let sandbox = Sandbox::start(SandboxConfig::new())
            .await
            .expect("sandbox starts");
        Self {
            sandbox,
            cache: TempDir::new("kubecache"),
        }
    }

    /// A kubectl command for this sandbox; `websockets` selects the
    /// transport of exec/attach/cp and of port-forward.
    pub fn kubectl(&self, websockets: bool) -> tokio::process::Command {
        self.command("kubectl", websockets)
    }

    /// Any program with kubectl's environment for this sandbox (a wrapper
    /// that runs kubectl under a terminal, a Python client).
    pub fn command(&self, program: &str, websockets: bool) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command
            .env("KUBECONFIG", self.sandbox.kubeconfig_path())
            .env("KUBECACHEDIR", self.cache.path())
            .env("HOME", self.cache.path())
            .env(
                "KUBECTL_REMOTE_COMMAND_WEBSOCKETS",
                if websockets { "true" } else { "false" },
            )
            .env(
                "KUBECTL_PORT_FORWARD_WEBSOCKETS",
                if websockets { "true" } else { "false" },
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs kubectl to completion with optional stdin.
    pub async fn run(&self, websockets: bool, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut command = self.kubectl(websockets);
        command.args(args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("kubectl runs");
        let feed = stdin.map(|bytes| {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            let bytes = bytes.to_vec();
            tokio::spawn(async move {
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            })
        });
        let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish"))
            .expect("kubectl output");
        if let Some(feed) = feed {
            let _ = feed.await;
        }
        output
    }

    /// Creates a pod from JSON and waits until it runs.
    pub async fn create_pod(&self, pod: serde_json::Value) {
        let name = pod["metadata"]["name"]
            .as_str()
            .expect("pod name")
            .to_owned();
        self.apply(pod).await;
        let wait = self
            .run(
                true,
                &[
                    "wait",
                    "--for=condition=Ready",
                    "--timeout=60s",
                    &format!("pod/{name}"),
                ],
                None,
            )
            .await;
        assert!(wait.status.success(), "pod {name} ready: {}", show(&wait));
    }

    /// Creates any object from JSON with `kubectl create -f -`.
    pub async fn apply(&self, object: serde_json::Value) {
        let text = object.to_string();
        let out = self
            .run(
                true,
                &["create", "--validate=false", "-f", "-"],
                Some(text.as_bytes()),
            )
            .await;
        assert!(out.status.success(), "create: {}", show(&out));
    }
}

/// stdout, stderr and status of a finished kubectl, for failure messages.
pub fn show(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Both transports, for tests run under each.
pub const TRANSPORTS: [bool; 2] = [true, false];

pub fn transport_name(websockets: bool) -> &'static str {
    if websockets {
        "websocket"
    } else {
        "spdy"
    }
}
