//! The sandbox under test: a `podlink sandbox` process, so that its CPU time
//! can be read from /proc apart from the clients'.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use tokio::process::{Child, Command};

use crate::process::{terminate, Lines};
use crate::procfs;

/// How long the sandbox may take to print its ready line.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// How long a SIGTERMed sandbox may take to end its pods and exit.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A running `podlink sandbox`; dropping it stops it (SIGTERM, so that it
/// ends every pod process it started, then SIGKILL past a deadline).
pub struct SandboxProcess {
    child: Child,
    pid: u32,
    url: String,
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
            .env("RUST_LOG", "warn")
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
        let mut lines = Lines::new(stdout);
        let ready = lines
            .until(READY_DEADLINE, "the sandbox ready line", |l| {
                l.starts_with("sandbox ready: ")
            })
            .await?;
        let url = ready
            .trim_start_matches("sandbox ready: ")
            .split_whitespace()
            .next()
            .ok_or_else(|| anyhow!("malformed ready line: {ready}"))?
            .to_owned();
        // Keep draining stdout so that the sandbox never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next(Duration::MAX).await {} });
        Ok(Self {
            child,
            pid,
            url,
            kubeconfig,
        })
    }

    /// The API server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kubeconfig it wrote.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Starts measuring the sandbox's CPU use.
    pub fn cpu_probe(&self) -> CpuProbe {
        CpuProbe::start(self.pid)
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
    }
}

/// CPU seconds a process used over a span of wall time.
pub struct CpuProbe {
    pid: u32,
    started: Instant,
    cpu: f64,
}

/// The result of a [`CpuProbe`].
#[derive(Debug, Clone, Copy)]
pub struct CpuSpan {
    /// Wall time of the span.
    pub wall: Duration,
    /// CPU seconds over wall seconds (1.0 = one core busy throughout).
    pub share: f64,
}

impl CpuProbe {
    /// Starts measuring `pid`.
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            started: Instant::now(),
            cpu: procfs::cpu_seconds(pid).unwrap_or(0.0),
        }
    }

    /// Ends the span.
    pub fn finish(&self) -> CpuSpan {
        let wall = self.started.elapsed();
        let cpu = procfs::cpu_seconds(self.pid).unwrap_or(self.cpu) - self.cpu;
        CpuSpan {
            wall,
            share: cpu / wall.as_secs_f64().max(1e-9),
        }
    }
}
