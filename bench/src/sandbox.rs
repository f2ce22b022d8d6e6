//! The sandbox under test: a `podlink sandbox` process
//! ([`podlink_testkit::podlink::SandboxProcess`]), so that its CPU time can
//! be read from /proc apart from the clients'.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::procfs;

/// A running `podlink sandbox`; dropping it stops it (SIGTERM, so that it
/// ends every pod process it started, then SIGKILL past a deadline).
pub struct SandboxProcess(podlink_testkit::podlink::SandboxProcess);

impl SandboxProcess {
    /// Starts `podlink sandbox` with its kubeconfig and state under `dir`.
    pub async fn start(podlink: &Path, dir: &Path) -> Result<Self> {
        let process = podlink_testkit::podlink::SandboxProcess::start(podlink, dir, "warn").await?;
        Ok(Self(process))
    }

    /// The API server URL.
    pub fn url(&self) -> &str {
        self.0.url()
    }

    /// The kubeconfig it wrote.
    pub fn kubeconfig(&self) -> &Path {
        self.0.kubeconfig()
    }

    /// Starts measuring the sandbox's CPU use.
    pub fn cpu_probe(&self) -> CpuProbe {
        CpuProbe::start(self.0.pid())
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
