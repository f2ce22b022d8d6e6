//! Keepalive settings shared by every streaming session: ping on an
//! interval, and declare the peer dead when nothing answers for a while.

use std::time::Duration;

/// How often to ping and how long to wait for proof of life.
///
/// The defaults (5 s / 15 s) stay far below the 60 s idle cut of cloud load
/// balancers, and catch a dead peer within 15 s rather than client-go's 61 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Time between pings.
    pub interval: Duration,
    /// How long the peer may stay silent (no pong, no data) before the
    /// connection counts as lost.
    pub timeout: Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
        }
    }
}

impl KeepAlive {
    /// Ping every `interval`, give up after `timeout` of silence.
    #[must_use]
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}
