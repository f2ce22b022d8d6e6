//! Fault injection requested through `POST /sandbox/v1/faults` or
//! [`crate::Sandbox::inject`].

use std::sync::Mutex;

use serde::Deserialize;

/// The longest blackhole or idle timeout accepted, in seconds.
const MAX_SECONDS: f64 = 3600.0;

/// One fault, as the JSON object the faults endpoint takes
/// (`{"kind":"blackhole","seconds":3}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Fault {
    /// Abruptly close every streaming and watch connection now.
    DropConnections,
    /// Stop moving bytes on every streaming and watch connection for
    /// `seconds`, without closing them.
    Blackhole {
        /// How long; `0` ends a blackhole early.
        seconds: f64,
    },
    /// From now on cut any streaming connection idle for `seconds`; `0` = off.
    IdleTimeout {
        /// The idle limit.
        seconds: f64,
    },
    /// The next `count` watch requests fail with HTTP status `code`
    /// (429 carries `Retry-After: 1`).
    WatchError {
        /// HTTP status, 400–599.
        code: u16,
        /// How many watch requests fail.
        count: u32,
    },
    /// Forget the event history: watches and continue tokens from older
    /// resource versions get 410 Expired.
    Compact,
}

/// A fault that makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("invalid fault: {0}")]
pub struct InvalidFault(pub(crate) String);

impl Fault {
    /// Checks the numbers.
    pub(crate) fn validate(&self) -> Result<(), InvalidFault> {
        match self {
            Self::Blackhole { seconds } | Self::IdleTimeout { seconds } => {
                if !seconds.is_finite() || *seconds < 0.0 || *seconds > MAX_SECONDS {
                    return Err(InvalidFault(format!(
                        "seconds must be between 0 and {MAX_SECONDS}"
                    )));
                }
            }
            Self::WatchError { code, .. } => {
                if !(400..=599).contains(code) {
                    return Err(InvalidFault("code must be between 400 and 599".into()));
                }
            }
            Self::DropConnections | Self::Compact => {}
        }
        Ok(())
    }
}

/// Pending `watch-error` failures.
#[derive(Debug, Default)]
pub(crate) struct WatchErrors {
    pending: Mutex<Option<(u16, u32)>>,
}

impl WatchErrors {
    /// Arms the next `count` watch requests to fail with `code`.
    pub(crate) fn arm(&self, code: u16, count: u32) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending = (count > 0).then_some((code, count));
    }

    /// Takes one pending failure, if any.
    pub(crate) fn take(&self) -> Option<u16> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (code, count) = (*pending)?;
        *pending = (count > 1).then_some((code, count - 1));
        Some(code)
    }
}
