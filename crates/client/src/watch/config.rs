//! What a watcher asks the server for and how patient it is.

use std::time::Duration;

use super::backoff::BackoffConfig;

/// How the watcher obtains the initial state (and every later re-list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitialList {
    /// A streaming list (`sendInitialEvents`) where the server supports it,
    /// else paged lists from then on.
    #[default]
    Auto,
    /// Always paged lists followed by a watch.
    Paged,
    /// Always a streaming list; a server without them is retried forever.
    Streaming,
}

/// Settings of a watcher; the defaults follow client-go's reflector.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WatchConfig {
    /// How the initial state is obtained.
    pub initial: InitialList,
    /// Objects per list page (`limit`).
    pub page_size: u32,
    /// The shortest `timeoutSeconds` asked for; each watch draws a value in
    /// `[min, 2×min)` so that many clients do not reconnect together.
    pub watch_timeout: Duration,
    /// A watch that delivers nothing, bookmarks included, for this long is
    /// presumed dead (half-open TCP, blackholed proxy) and restarted.
    pub stall_timeout: Duration,
    /// Bound on each list call, body included.
    pub list_timeout: Duration,
    /// Delays between failed attempts.
    pub backoff: BackoffConfig,
    /// End the stream on 401/403 instead of retrying (credentials may be
    /// rotated under a long-running informer, so the default retries).
    pub stop_on_unauthorized: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            initial: InitialList::Auto,
            page_size: 500,
            watch_timeout: Duration::from_secs(300),
            stall_timeout: Duration::from_secs(120),
            list_timeout: Duration::from_secs(60),
            backoff: BackoffConfig::default(),
            stop_on_unauthorized: false,
        }
    }
}

impl WatchConfig {
    /// Chooses how the initial state is obtained.
    #[must_use]
    pub fn initial(mut self, initial: InitialList) -> Self {
        self.initial = initial;
        self
    }

    /// Sets the list page size (at least 1).
    #[must_use]
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Sets the shortest server-side watch timeout.
    #[must_use]
    pub fn watch_timeout(mut self, timeout: Duration) -> Self {
        self.watch_timeout = timeout;
        self
    }

    /// Sets the stall deadline.
    #[must_use]
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Sets the bound on each list call.
    #[must_use]
    pub fn list_timeout(mut self, timeout: Duration) -> Self {
        self.list_timeout = timeout;
        self
    }

    /// Sets the backoff between failed attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Ends the stream on 401/403 instead of retrying.
    #[must_use]
    pub fn stop_on_unauthorized(mut self, stop: bool) -> Self {
        self.stop_on_unauthorized = stop;
        self
    }
}
