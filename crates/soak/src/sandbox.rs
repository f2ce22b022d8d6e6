//! The sandbox under soak: a separate `podlink sandbox` process (so that
//! this process's memory is the client library's alone), and its test hooks
//! (`/sandbox/v1/processes`, `/sandbox/v1/faults`) reached with its token.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the sandbox may take to print its ready line.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// How long a SIGTERMed sandbox may take to end its pods and exit.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Bound on one hook request.
const HOOK_DEADLINE: Duration = Duration::from_secs(10);

/// The podlink binary: `explicit` if given; else the `podlink` beside this
/// program, which cargo (when this runs under `cargo run`) builds first with
/// this program's own profile.
pub fn podlink_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let me = std::env::current_exe().context("locating the soak binary")?;
    let binary = me
        .parent()
        .context("the soak binary has no folder")?
        .join("podlink");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "podlink", "--bin", "podlink"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().context("running cargo build -p podlink")?;
        if !status.success() {
            bail!("cargo build -p podlink failed: {status}");
        }
    }
    if !binary.exists() {
        bail!(
            "{} not found: build it (cargo build -p podlink) or pass --podlink PATH",
            binary.display()
        );
    }
    Ok(binary)
}

/// A running `podlink sandbox`; dropping it stops it (SIGTERM so that it
/// ends every pod process, SIGKILL past a deadline) and reaps it.
pub struct SandboxProcess {
    child: Child,
    pid: u32,
    kubeconfig: PathBuf,
}

impl SandboxProcess {
    /// Starts `podlink sandbox` with its kubeconfig and state under `dir`.
    pub async fn start(podlink: &Path, dir: &Path) -> Result<Self> {
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(podlink)
            .arg("sandbox")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} sandbox", podlink.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("sandbox exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("sandbox stdout not piped"))?;
        // From here on the guard stops the child on every early return.
        let sandbox = Self {
            child,
            pid,
            kubeconfig,
        };
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_DEADLINE, async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("sandbox ready: ") {
                    return Ok(line);
                }
            }
            Err(anyhow!("the sandbox exited before it was ready"))
        })
        .await
        .map_err(|_| anyhow!("no ready line within {READY_DEADLINE:?}"))??;
        eprintln!("soak: {ready}");
        // Keep draining stdout so that the sandbox never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(sandbox)
    }

    /// The kubeconfig it wrote.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        // kill(1): the workspace denies unsafe code, and std only sends SIGKILL.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while started.elapsed() < STOP_DEADLINE {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
    }
}

/// One entry of `GET /sandbox/v1/processes`.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteProcess {
    /// The pod.
    pub pod: String,
    /// Its host process id (sandbox pods are host processes).
    pub pid: u32,
    /// `main`, `exec` or `attach`.
    pub kind: String,
    /// Its argv.
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Deserialize)]
struct ProcessList {
    items: Vec<RemoteProcess>,
}

/// The sandbox's test hooks, over the client's own connection and token.
#[derive(Clone)]
pub struct Hooks {
    kube: kube::Client,
}

impl Hooks {
    /// Hooks reached through `kube`.
    pub fn new(kube: kube::Client) -> Self {
        Self { kube }
    }

    /// Every live process the sandbox started.
    pub async fn processes(&self) -> Result<Vec<RemoteProcess>> {
        let request = http::Request::get("/sandbox/v1/processes").body(Vec::new())?;
        let text = tokio::time::timeout(HOOK_DEADLINE, self.kube.request_text(request))
            .await
            .map_err(|_| anyhow!("GET /sandbox/v1/processes took over {HOOK_DEADLINE:?}"))??;
        let list: ProcessList =
            serde_json::from_str(&text).context("decoding /sandbox/v1/processes")?;
        Ok(list.items)
    }

    /// Posts one fault (the JSON object of CONTRACT.md), retrying a few
    /// times: a fault just injected may have cut the connection we use.
    pub async fn fault(&self, fault: &serde_json::Value) -> Result<()> {
        let body = serde_json::to_vec(fault)?;
        let mut last = None;
        for _ in 0..5 {
            let request = http::Request::post("/sandbox/v1/faults")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())?;
            match tokio::time::timeout(HOOK_DEADLINE, self.kube.request_text(request)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) => last = Some(anyhow!(err)),
                Err(_) => last = Some(anyhow!("no answer within {HOOK_DEADLINE:?}")),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last
            .unwrap_or_else(|| anyhow!("no attempt made"))
            .context(format!("POST /sandbox/v1/faults {fault}")))
    }
}
