//! The `podlink` binary run as separate processes: finding the release or
//! debug build, a `podlink sandbox` (so that the measuring process's memory
//! and CPU are its clients' alone), and a guard that stops a whole program
//! under test (which stops the sandbox it started) when a test fails early.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the sandbox may take to print its ready line.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// How long a SIGTERMed sandbox may take to end its pods and exit.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// What the sandbox prints first once it serves.
const READY_PREFIX: &str = "sandbox ready: ";

/// Why the podlink binary or its sandbox could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PodlinkError {
    /// An I/O step (locating, building, spawning, reading) failed.
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `cargo build -p podlink` ran and failed.
    #[error("cargo build -p podlink failed: {0}")]
    Build(ExitStatus),
    /// No binary where it should be.
    #[error("{} not found: build it (cargo build -p podlink) or pass --podlink PATH", .0.display())]
    NotFound(PathBuf),
    /// The sandbox ended, or never said it was ready in time.
    #[error("the sandbox is not ready: {0}")]
    NotReady(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PodlinkError {
    let what = what.into();
    move |source| PodlinkError::Io { what, source }
}

/// The `podlink` binary in the same folder as `program` (cargo puts every
/// binary of a profile in one folder), if it is there.
pub fn podlink_beside(program: &Path) -> Result<PathBuf, PodlinkError> {
    let binary = program.with_file_name("podlink");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(PodlinkError::NotFound(binary))
    }
}

/// The podlink binary for a harness program (soak, bench): `explicit` if
/// given; else the `podlink` beside the running program, which cargo (when
/// the program runs under `cargo run`) first builds with the program's own
/// profile, release or debug.
pub fn podlink_binary(explicit: Option<&Path>) -> Result<PathBuf, PodlinkError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let me = std::env::current_exe().map_err(io("locating the running program"))?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "podlink", "--bin", "podlink"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .status()
            .map_err(io("running cargo build -p podlink"))?;
        if !status.success() {
            return Err(PodlinkError::Build(status));
        }
    }
    podlink_beside(&me)
}

/// Sends SIGTERM to `pid` through kill(1): the workspace denies unsafe code,
/// and a graceful stop (children ended, files removed) needs a signal other
/// than the SIGKILL std offers.
pub fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A running `podlink sandbox` process; dropping it stops it (SIGTERM so
/// that it ends every pod process, SIGKILL past a deadline).
pub struct SandboxProcess {
    child: Child,
    pid: u32,
    ready: String,
    kubeconfig: PathBuf,
}

impl SandboxProcess {
    /// Starts `podlink sandbox` with its kubeconfig and state under `dir`
    /// and `RUST_LOG=log`, and waits (bounded) for its ready line.
    pub async fn start(podlink: &Path, dir: &Path, log: &str) -> Result<Self, PodlinkError> {
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(podlink)
            .arg("sandbox")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("starting {} sandbox", podlink.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| PodlinkError::NotReady("it exited at once".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| PodlinkError::NotReady("its stdout is not piped".into()))?;
        // From here on the guard stops the child on every early return.
        let mut sandbox = Self {
            child,
            pid,
            ready: String::new(),
            kubeconfig,
        };
        let mut lines = BufReader::new(stdout).lines();
        sandbox.ready = tokio::time::timeout(READY_DEADLINE, async {
            while let Some(line) = lines.next_line().await.map_err(io("reading its stdout"))? {
                if line.starts_with(READY_PREFIX) {
                    return Ok(line);
                }
            }
            Err(PodlinkError::NotReady("it exited first".into()))
        })
        .await
        .map_err(|_| {
            PodlinkError::NotReady(format!("no ready line within {READY_DEADLINE:?}"))
        })??;
        if sandbox.url().is_empty() {
            return Err(PodlinkError::NotReady(format!(
                "malformed ready line: {}",
                sandbox.ready
            )));
        }
        // Keep draining stdout so that the sandbox never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(sandbox)
    }

    /// Its ready line (`sandbox ready: URL …`).
    pub fn ready_line(&self) -> &str {
        &self.ready
    }

    /// The API server URL, from the ready line.
    pub fn url(&self) -> &str {
        self.ready
            .trim_start_matches(READY_PREFIX)
            .split_whitespace()
            .next()
            .unwrap_or_default()
    }

    /// The kubeconfig it wrote.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        terminate(self.pid);
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

/// A program under test (a harness that runs its own sandbox); dropping it
/// while it runs sends SIGTERM, so that it can stop its sandbox and pods,
/// then SIGKILL after `grace`.
pub struct StopOnDrop {
    child: std::process::Child,
    grace: Duration,
}

impl StopOnDrop {
    /// Guards `child`, allowing it `grace` to stop after SIGTERM.
    pub fn new(child: std::process::Child, grace: Duration) -> Self {
        Self { child, grace }
    }

    /// Waits for the program to exit, polling every `poll`; panics (it is
    /// for tests) past `deadline`, naming `what`.
    pub fn wait(&mut self, deadline: Duration, poll: Duration, what: &str) -> ExitStatus {
        let started = Instant::now();
        loop {
            let polled = self.child.try_wait();
            if let Some(status) = polled.unwrap_or_else(|e| panic!("polling {what}: {e}")) {
                return status;
            }
            assert!(
                started.elapsed() < deadline,
                "{what} did not finish within {deadline:?}"
            );
            std::thread::sleep(poll);
        }
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(self.child.id());
            let started = Instant::now();
            while started.elapsed() < self.grace {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
