//! The registry of every live process the sandbox started: container main
//! processes, exec'd and attach helpers. `/sandbox/v1/processes` lists it
//! and shutdown signals each entry's process group.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::sys::{self, Signal};

/// Why a process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessKind {
    /// A container's own command.
    Main,
    /// Started by `exec`.
    Exec,
    /// Started for `attach`.
    Attach,
}

/// One live process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod name.
    pub pod: String,
    /// The container name.
    pub container: String,
    /// Host process id; also its process group id.
    pub pid: u32,
    /// Why it runs.
    pub kind: ProcessKind,
    /// Its argv.
    pub command: Vec<String>,
}

/// The registry.
#[derive(Debug, Default)]
pub(crate) struct ProcessRegistry {
    next_id: AtomicU64,
    entries: Mutex<BTreeMap<u64, ProcessInfo>>,
}

/// Keeps a process listed; drop it once the process has been reaped.
#[derive(Debug)]
pub(crate) struct ProcessGuard {
    registry: Arc<ProcessRegistry>,
    id: u64,
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl ProcessRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ProcessInfo>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists a process until the guard is dropped. The process must lead its
    /// own process group (`process_group(0)` or `setsid()`).
    pub(crate) fn register(self: &Arc<Self>, info: ProcessInfo) -> ProcessGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, info);
        ProcessGuard {
            registry: self.clone(),
            id,
        }
    }

    /// Every live process, in start order.
    pub(crate) fn list(&self) -> Vec<ProcessInfo> {
        self.lock().values().cloned().collect()
    }

    /// Signals the process groups of `filter`-selected entries.
    pub(crate) fn signal(&self, signal: Signal, filter: impl Fn(&ProcessInfo) -> bool) -> usize {
        let pids: Vec<u32> = self
            .lock()
            .values()
            .filter(|p| filter(p))
            .map(|p| p.pid)
            .collect();
        pids.iter().for_each(|pid| sys::kill_group(*pid, signal));
        pids.len()
    }

    /// SIGTERM to everything, then SIGKILL to what is left after `grace`
    /// (waiting in small steps, bounded by `grace`).
    pub(crate) async fn stop_all(&self, grace: Duration) {
        let groups: Vec<u32> = self.lock().values().map(|p| p.pid).collect();
        groups
            .iter()
            .for_each(|pid| sys::kill_group(*pid, Signal::Term));
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline && !self.lock().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Group members that outlived their leader (background children
        // ignoring SIGTERM) are not in the registry: kill the groups anyway.
        groups
            .iter()
            .for_each(|pid| sys::kill_group(*pid, Signal::Kill));
        self.signal(Signal::Kill, |_| true);
    }
}
