//! The programs under test and how to start each against the sandbox.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};
/// The podlink binary: `--podlink PATH` if given, else the one cargo builds
/// beside the harness with its own profile.
pub use podlink_testkit::podlink::podlink_binary;
use tokio::process::Command;

/// Paths to the client programs and the sandbox's kubeconfig.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The `podlink` binary.
    pub podlink: PathBuf,
    /// The `kubectl` binary.
    pub kubectl: PathBuf,
    /// This harness (re-executed for helper roles).
    pub me: PathBuf,
    /// The sandbox's kubeconfig.
    pub kubeconfig: PathBuf,
    /// kubectl's discovery cache, private to this run.
    pub kube_cache: PathBuf,
    /// The @kubernetes/client-node driver script, when node and its
    /// modules are available.
    pub js: Option<PathBuf>,
}

impl Tools {
    /// A command for `program` with the sandbox as its cluster; killed when
    /// dropped, stdin closed unless the caller changes it.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.kube_cache)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// `podlink ARGS…`.
    pub fn podlink(&self) -> Command {
        self.command(&self.podlink)
    }

    /// `kubectl ARGS…`.
    pub fn kubectl(&self) -> Command {
        self.command(&self.kubectl)
    }

    /// `node client.mjs ARGS…` (the JavaScript client), if available.
    pub fn js(&self) -> Option<Command> {
        let script = self.js.as_ref()?;
        let mut command = self.command(Path::new("node"));
        command.arg(script);
        Some(command)
    }

    /// `podlink-bench HELPER…`.
    pub fn helper(&self) -> Command {
        self.command(&self.me)
    }
}

/// The JavaScript client's driver (`bench/js/client.mjs`), installing its
/// pinned modules with `npm ci` on first use; `Err` says why it is skipped.
pub fn js_client() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let script = dir.join("client.mjs");
    if !script.exists() {
        bail!("{} not found", script.display());
    }
    if !dir.join("node_modules/@kubernetes/client-node").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .context("running npm ci for @kubernetes/client-node")?;
        if !status.success() {
            bail!("npm ci in {} failed: {status}", dir.display());
        }
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .context("running node")?;
    if !node.status.success() {
        bail!("node --version failed");
    }
    Ok(script)
}
