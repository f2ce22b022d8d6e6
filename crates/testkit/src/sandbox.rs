//! [`TestSandbox`]: a sandbox with its own runtime, for tests.

use std::path::{Path, PathBuf};

use podlink_sandbox::{Fault, ProcessInfo, Sandbox, SandboxConfig};

use crate::command::Kubectl;

/// A sandbox for one test: free port, temporary state, own tokio runtime
/// (two worker threads) so the server keeps serving while the test thread
/// blocks on kubectl. Dropping it shuts the sandbox down and kills every
/// process it started, even during a panic.
pub struct TestSandbox {
    sandbox: Option<Sandbox>,
    runtime: Option<tokio::runtime::Runtime>,
    cache_dir: PathBuf,
}

impl std::fmt::Debug for TestSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSandbox")
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl TestSandbox {
    /// Starts a sandbox with the defaults (pod `demo`, version 1.32).
    pub fn start() -> Self {
        Self::with_config(SandboxConfig::new())
    }

    /// Starts a sandbox with `config` (its listen address should stay on
    /// port 0). Panics if the sandbox cannot start.
    pub fn with_config(config: SandboxConfig) -> Self {
        // A separate thread so this also works inside an async test.
        let started = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("test-sandbox")
                .build()
                .expect("build the sandbox runtime");
            let sandbox = runtime.block_on(Sandbox::start(config));
            (runtime, sandbox)
        })
        .join()
        .expect("sandbox start thread panicked");
        let (runtime, sandbox) = started;
        let sandbox = sandbox.expect("start the sandbox");
        let cache_dir = sandbox.state_dir().join("kubecache");
        Self {
            sandbox: Some(sandbox),
            runtime: Some(runtime),
            cache_dir,
        }
    }

    /// The running sandbox.
    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox
            .as_ref()
            .expect("sandbox is running until drop")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        self.sandbox().url()
    }

    /// Its kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        self.sandbox().kubeconfig_path()
    }

    /// A private kubectl cache directory (discovery and HTTP cache).
    pub fn kube_cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// A `kubectl` (the default one on PATH) pointed at this sandbox.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.kubeconfig(), &self.cache_dir)
    }

    /// Waits (bounded by `timeout`) until pod `default/name` is Running with
    /// condition Ready, and returns the pod object.
    #[track_caller]
    pub fn wait_pod_ready(&self, name: &str, timeout: std::time::Duration) -> serde_json::Value {
        crate::wait_until(timeout, &format!("pod {name} Running and Ready"), || {
            let pod = self.sandbox().pod("default", name)?;
            let ready = pod["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (pod["status"]["phase"] == "Running" && ready).then_some(pod)
        })
    }

    /// Every live process the sandbox started.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.sandbox().processes()
    }

    /// Applies a fault (panics if it is invalid).
    pub fn fault(&self, fault: Fault) {
        self.sandbox().inject(fault).expect("valid fault");
    }

    /// Runs `future` on the sandbox's runtime (for async client code in a
    /// sync test).
    pub fn block_on<F: std::future::Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        let handle = self
            .runtime
            .as_ref()
            .expect("runtime lives until drop")
            .handle()
            .clone();
        std::thread::scope(|s| {
            s.spawn(|| handle.block_on(future))
                .join()
                .expect("block_on panicked")
        })
    }

    /// Shuts the sandbox down gracefully (SIGTERM, then SIGKILL).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (Some(sandbox), Some(runtime)) = (self.sandbox.take(), self.runtime.take()) else {
            return;
        };
        let handle = runtime.handle().clone();
        let joined = std::thread::spawn(move || handle.block_on(sandbox.shutdown())).join();
        if joined.is_err() {
            eprintln!("test sandbox: graceful shutdown panicked; processes were killed on drop");
        }
        runtime.shutdown_background();
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Sandbox's own Drop SIGKILLs everything without blocking.
            drop(self.sandbox.take());
            if let Some(runtime) = self.runtime.take() {
                runtime.shutdown_background();
            }
            return;
        }
        self.shutdown();
    }
}
