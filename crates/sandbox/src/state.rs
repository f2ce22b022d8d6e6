//! [`State`]: everything a request handler can reach.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::conn::ConnRegistry;
use crate::faults::{Fault, WatchErrors};
use crate::pods::PodRuntime;
use crate::processes::ProcessRegistry;
use crate::store::Store;

/// The reported Kubernetes version.
#[derive(Debug, Clone)]
pub(crate) struct KubeVersion {
    pub(crate) major: u32,
    pub(crate) minor: u32,
}

/// Shared server state, passed to handlers as `Arc<State>`.
pub(crate) struct State {
    /// Objects, versions and the watch cache.
    pub(crate) store: Store,
    /// Running pods.
    pub(crate) pods: PodRuntime,
    /// Every live process the sandbox started.
    pub(crate) processes: Arc<ProcessRegistry>,
    /// Every live connection (for connection faults).
    pub(crate) conns: Arc<ConnRegistry>,
    /// Pending `watch-error` faults.
    pub(crate) watch_errors: WatchErrors,
    /// The bearer token clients must send.
    pub(crate) token: String,
    /// What `/version` reports.
    pub(crate) version: KubeVersion,
    /// The next service cluster IP (host part).
    pub(crate) next_cluster_ip: AtomicU32,
}

impl State {
    /// Allocates a service cluster IP from 10.96.0.0/16.
    pub(crate) fn allocate_cluster_ip(&self) -> String {
        let n = self.next_cluster_ip.fetch_add(1, Ordering::Relaxed) % 65_000 + 10;
        format!("10.96.{}.{}", n / 256, n % 256)
    }

    /// Applies a fault now.
    pub(crate) fn inject(&self, fault: &Fault) {
        tracing::info!(?fault, "injecting fault");
        match fault {
            Fault::DropConnections => {
                self.conns.drop_streaming();
            }
            Fault::Blackhole { seconds } => self.conns.blackhole(Duration::from_secs_f64(*seconds)),
            Fault::IdleTimeout { seconds } => self
                .conns
                .set_idle_timeout(Duration::from_secs_f64(*seconds)),
            Fault::WatchError { code, count } => self.watch_errors.arm(*code, *count),
            Fault::Compact => self.store.compact(),
        }
    }
}
