//! Counters a forwarder keeps, shown by the CLI at `-v`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every connection of one forwarder.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections: AtomicU64,
    failed: AtomicU64,
    active: AtomicU64,
    bytes_to_pod: AtomicU64,
    bytes_from_pod: AtomicU64,
    sessions: AtomicU64,
}

/// A snapshot of a forwarder's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Local connections accepted (or streams handed out) so far.
    pub connections: u64,
    /// Connections that ended with an error.
    pub failed: u64,
    /// Connections open now.
    pub active: u64,
    /// Bytes sent to the pod.
    pub bytes_to_pod: u64,
    /// Bytes received from the pod.
    pub bytes_from_pod: u64,
    /// Sessions established after the first one.
    pub reconnects: u64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connections={} active={} failed={} bytes_to_pod={} bytes_from_pod={} reconnects={}",
            self.connections,
            self.active,
            self.failed,
            self.bytes_to_pod,
            self.bytes_from_pod,
            self.reconnects
        )
    }
}

impl Counters {
    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_to_pod(&self, n: usize) {
        self.bytes_to_pod.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_from_pod(&self, n: usize) {
        self.bytes_from_pod.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn session_established(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            connections: self.connections.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            bytes_to_pod: self.bytes_to_pod.load(Ordering::Relaxed),
            bytes_from_pod: self.bytes_from_pod.load(Ordering::Relaxed),
            reconnects: self.sessions.load(Ordering::Relaxed).saturating_sub(1),
        }
    }
}
