//! Health figures of a watcher: restarts, re-lists, last sync, last error.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// A point-in-time copy of a watcher's health figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthReport {
    /// Failures retried so far (each restarts a list or a watch).
    pub restarts: u64,
    /// Snapshots started (the first list included).
    pub lists: u64,
    /// Watch events applied to the store (bookmarks excluded).
    pub events: u64,
    /// When the last snapshot completed.
    pub last_sync: Option<SystemTime>,
    /// The last failure, as text, and when it happened.
    pub last_error: Option<(SystemTime, String)>,
}

/// Shared, cheaply cloned handle on a watcher's health figures.
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<Mutex<HealthReport>>,
}

impl Health {
    /// The figures as they are now.
    #[must_use]
    pub fn report(&self) -> HealthReport {
        self.with(|report| report.clone())
    }

    pub(crate) fn record_restart(&self, error: &crate::Error) {
        let text = crate::error::one_line(error);
        self.with(|report| {
            report.restarts += 1;
            report.last_error = Some((SystemTime::now(), text));
        });
    }

    /// Counts a snapshot start; returns how many came before it.
    pub(crate) fn record_list(&self) -> u64 {
        self.with(|report| {
            report.lists += 1;
            report.lists - 1
        })
    }

    pub(crate) fn record_sync(&self) {
        self.with(|report| report.last_sync = Some(SystemTime::now()));
    }

    pub(crate) fn record_event(&self) {
        self.with(|report| report.events += 1);
    }

    fn with<T>(&self, f: impl FnOnce(&mut HealthReport) -> T) -> T {
        // The figures stay meaningful even if a holder panicked mid-update.
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}
