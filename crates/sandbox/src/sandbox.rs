//! [`Sandbox`]: start, inspect, fault and stop the embedded API server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::conn::ConnRegistry;
use crate::error::Error;
use crate::faults::{Fault, InvalidFault, WatchErrors};
use crate::pods::PodRuntime;
use crate::processes::{ProcessInfo, ProcessRegistry};
use crate::resource::Resource;
use crate::state::{KubeVersion, State};
use crate::store::Store;
use crate::sys::{self, Signal};
use crate::{api, controller, kubeconfig, server, tls};

/// How long processes get between SIGTERM and SIGKILL at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A running sandbox. Dropping it without [`Sandbox::shutdown`] still kills
/// every process it started (SIGKILL to each process group) and removes its
/// temporary state, so tests clean up even when they panic.
pub struct Sandbox {
    state: Arc<State>,
    addr: SocketAddr,
    url: String,
    kubeconfig: PathBuf,
    state_dir: PathBuf,
    owns_state_dir: bool,
    owns_kubeconfig: bool,
    ca_pem: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    stopped: bool,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

fn parse_version(v: &str) -> Result<KubeVersion, Error> {
    let bad = || Error::KubeVersion(v.to_owned());
    let (major, minor) = v.trim_start_matches('v').split_once('.').ok_or_else(bad)?;
    let minor = minor.split('.').next().unwrap_or(minor);
    Ok(KubeVersion {
        major: major.parse().map_err(|_| bad())?,
        minor: minor.parse().map_err(|_| bad())?,
    })
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` (and its parents) private to this user: 0700 also when
/// it already existed, since pods' working folders and the kubeconfig live
/// under it.
fn create_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |source| Error::StateDir {
        path: path.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

impl Sandbox {
    /// Starts serving: generates TLS material and the token, writes the
    /// kubeconfig, creates namespaces `default`, `kube-system` and
    /// `kube-public`, and pod `demo` unless disabled.
    pub async fn start(config: SandboxConfig) -> Result<Self, Error> {
        let version = parse_version(&config.kube_version)?;
        let (state_dir, owns_state_dir) = match &config.state_dir {
            Some(dir) => (dir.clone(), false),
            None => {
                let suffix: u64 = rand::rng().random();
                (
                    std::env::temp_dir()
                        .join(format!("podlink-sandbox-{}-{suffix:x}", std::process::id())),
                    true,
                )
            }
        };
        create_dir(&state_dir)?;
        let pods_dir = state_dir.join("pods");
        create_dir(&pods_dir)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the sandbox listens beyond loopback: anyone who can reach this address and learns the token controls processes on this host");
        }
        let host = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        let url = format!("https://{host}:{}", addr.port());
        let tls = tls::generate()?;
        let token = random_token();
        let (kubeconfig_path, owns_kubeconfig) = match &config.kubeconfig {
            Some(p) => (p.clone(), false),
            None => (state_dir.join("kubeconfig"), true),
        };
        kubeconfig::write(&kubeconfig_path, &url, &tls.ca_pem, &token)?;

        let netns = config.network_namespaces && sys::is_root();
        let state = Arc::new(State {
            store: Store::with_capacity(config.watch_backlog),
            pods: PodRuntime::new(pods_dir, netns),
            processes: Arc::new(ProcessRegistry::default()),
            conns: Arc::new(ConnRegistry::new()),
            watch_errors: WatchErrors::default(),
            token,
            version,
            next_cluster_ip: AtomicU32::new(0),
        });
        for ns in ["default", "kube-system", "kube-public"] {
            if let Err(e) = api::create_internal(
                &state,
                Resource::Namespaces,
                None,
                json!({"metadata": {"name": ns}}),
            ) {
                tracing::warn!(namespace = ns, error = %e, "cannot create namespace");
            }
        }
        if config.demo {
            let demo = json!({
                "metadata": {"name": "demo", "labels": {"app": "demo"}},
                "spec": {"containers": [{
                    "name": "main",
                    "image": "podlink/demo",
                    "command": ["sh", "-c", "echo demo ready; exec sleep 2147483647"],
                }]},
            });
            if let Err(e) = api::create_internal(&state, Resource::Pods, Some("default"), demo) {
                tracing::warn!(error = %e, "cannot create pod demo");
            }
        }
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::serve(
                listener,
                tls.server,
                state.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(controller::run(state.clone(), stop_rx)),
            tokio::spawn(ConnRegistry::run_idle_checker(Arc::downgrade(&state.conns))),
        ];
        tracing::info!(%url, kubeconfig = %kubeconfig_path.display(), network_namespaces = netns, "sandbox ready");
        Ok(Self {
            state,
            addr,
            url,
            kubeconfig: kubeconfig_path,
            state_dir,
            owns_state_dir,
            owns_kubeconfig,
            ca_pem: tls.ca_pem,
            stop,
            tasks,
            stopped: false,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig written at start (mode 0600).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The state directory (pod folders and logs live under `pods/`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// The shared state, for the in-process fuzzing harness.
    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The CA certificate (PEM) that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Whether pods run in their own network namespaces (root only).
    pub fn uses_network_namespaces(&self) -> bool {
        self.state.pods.uses_netns()
    }

    /// The pod object `namespace/name` as the API serves it, if it exists.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.state.get_pod(namespace, name).ok()
    }

    /// Every live process the sandbox started.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.state.processes.list()
    }

    /// Applies a fault, as `POST /sandbox/v1/faults` does.
    pub fn inject(&self, fault: Fault) -> Result<(), InvalidFault> {
        fault.validate()?;
        self.state.inject(&fault);
        Ok(())
    }

    /// Stops serving and ends every process it started: SIGTERM to each
    /// process group, SIGKILL to what is left after a short grace period.
    /// Removes only its own state (the temporary directory, pod folders,
    /// and a kubeconfig it placed there).
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        self.state.stop_all_pods();
        self.state.processes.stop_all(SHUTDOWN_GRACE).await;
        self.finish();
    }

    fn finish(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.stop.send_replace(true);
        self.state.stop_all_pods();
        self.state.processes.signal(Signal::Kill, |_| true);
        self.state.conns.drop_all();
        for task in &self.tasks {
            task.abort();
        }
        if self.owns_state_dir {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        } else {
            let _ = std::fs::remove_dir_all(self.state_dir.join("pods"));
            if self.owns_kubeconfig {
                let _ = std::fs::remove_file(&self.kubeconfig);
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Runs a sandbox for `podlink sandbox`: starts it, prints exactly
/// `sandbox ready: URL kubeconfig=FILE` on stdout, and serves until SIGINT
/// or SIGTERM, then shuts down cleanly.
pub async fn run_until_signal(config: SandboxConfig) -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let sandbox = Sandbox::start(config).await?;
    println!(
        "sandbox ready: {} kubeconfig={}",
        sandbox.url(),
        sandbox.kubeconfig_path().display()
    );
    if !sandbox.addr().ip().is_loopback() {
        eprintln!(
            "warning: the sandbox listens on {} (not loopback): its pods are processes on this host",
            sandbox.addr()
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    sandbox.shutdown().await;
    Ok(())
}
