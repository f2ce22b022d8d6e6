//! [`SandboxConfig`]: what to listen on, where to write, what to report.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to start a [`crate::Sandbox`]. Build it with the `with_*` methods:
///
/// ```
/// let config = podlink_sandbox::SandboxConfig::new()
///     .with_demo(false)
///     .with_kube_version("1.28");
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SandboxConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) kubeconfig: Option<PathBuf>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) demo: bool,
    pub(crate) kube_version: String,
    pub(crate) network_namespaces: bool,
    pub(crate) watch_backlog: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            state_dir: None,
            demo: true,
            kube_version: "1.32".to_owned(),
            network_namespaces: true,
            watch_backlog: crate::store::BROADCAST_CAPACITY,
        }
    }
}

impl SandboxConfig {
    /// The defaults: `127.0.0.1:0`, kubeconfig and state in a fresh temporary
    /// directory, pod `demo` created, version 1.32, a network namespace per
    /// pod when running as root.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address to serve HTTPS on (port 0 picks a free port).
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Where to write the kubeconfig (mode 0600). Without it the kubeconfig
    /// goes into the state directory.
    pub fn with_kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// The directory for pod working folders and logs. It is created if
    /// missing and left in place at shutdown (only what the sandbox created
    /// under `pods/` is removed). Without it a fresh temporary directory is
    /// used and removed at shutdown.
    pub fn with_state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(path.into());
        self
    }

    /// Whether pod `demo` (container `main`) exists at start.
    pub fn with_demo(mut self, demo: bool) -> Self {
        self.demo = demo;
        self
    }

    /// The Kubernetes version `/version` reports, as `MAJOR.MINOR` (for
    /// example `"1.28"`); kubectl's version dispatcher picks its binary from it.
    pub fn with_kube_version(mut self, version: impl Into<String>) -> Self {
        self.kube_version = version.into();
        self
    }

    /// Whether to give each pod its own network namespace when running as
    /// root (default true). Without root, or when false, pods share the host
    /// network.
    pub fn with_network_namespaces(mut self, enabled: bool) -> Self {
        self.network_namespaces = enabled;
        self
    }

    /// How many events a watcher may fall behind the live feed before it
    /// has to catch up from the history (default 65,536; at least 1). Tests
    /// make it small to exercise the catch-up.
    pub fn with_watch_backlog(mut self, events: usize) -> Self {
        self.watch_backlog = events.max(1);
        self
    }
}
