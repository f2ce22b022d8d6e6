//! The retry layer: decides what each failure means (fatal, re-list at once,
//! back off) and waits accordingly, so that the stream above it sees only
//! progress and at most one fatal error.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;

use super::backoff::{Backoff, BackoffConfig};
use super::health::Health;
use super::machine::Event;
use crate::error::{Error, Result};

/// What to do about one failure.
#[derive(Debug, PartialEq, Eq)]
enum Disposition {
    /// End the stream with this error.
    Fatal,
    /// Try again at once (the machine has already chosen to re-list).
    Now,
    /// Wait the next backoff delay, and at least this long.
    Later(Option<Duration>),
}

/// The HTTP status code behind an error, when there is one.
fn code(err: &Error) -> Option<u16> {
    match err {
        Error::Throttled { .. } => Some(429),
        _ => err
            .status()
            .map(|status| status.code)
            .filter(|code| *code != 0),
    }
}

/// The resourceVersion asked for is too old: only a fresh list helps.
/// Like client-go: reason `Expired` or `Gone`, or code 410 with any reason.
pub(crate) fn is_expired(err: &Error) -> bool {
    err.status().is_some_and(|status| {
        matches!(status.reason.as_str(), "Expired" | "Gone") || status.code == 410
    })
}

/// The server refused a streaming list for what it is, not for who asked or
/// how often: a 4xx other than auth, not-found, timeout, expiry and throttling.
pub(crate) fn rejects_streaming_list(err: &Error) -> bool {
    code(err).is_some_and(|code| {
        (400..500).contains(&code) && !matches!(code, 401 | 403 | 404 | 408 | 410 | 429)
    })
}

fn disposition(err: &Error, stop_on_unauthorized: bool) -> Disposition {
    match (err, code(err)) {
        (
            Error::Kubeconfig(_)
            | Error::InferConfig(_)
            | Error::Settings(_)
            | Error::InvalidRequest(_),
            _,
        ) => Disposition::Fatal,
        // The collection itself does not exist (an unknown resource type).
        (_, Some(404)) => Disposition::Fatal,
        (_, Some(401 | 403)) if stop_on_unauthorized => Disposition::Fatal,
        (Error::Throttled { retry_after, .. }, _) => Disposition::Later(*retry_after),
        (_, Some(429)) => Disposition::Later(
            err.status()
                .and_then(|status| status.details.as_ref())
                .map(|details| Duration::from_secs(details.retry_after_seconds.into()))
                .filter(|delay| !delay.is_zero()),
        ),
        _ if is_expired(err) => Disposition::Now,
        _ => Disposition::Later(None),
    }
}

struct Retrying<S> {
    inner: S,
    backoff: Backoff,
    stop_on_unauthorized: bool,
    health: Health,
    /// An expiry already re-listed at once with no progress since: the next
    /// one backs off, so a server that expires everything cannot make us spin.
    expired_without_progress: bool,
}

/// Wraps the raw machine: retries every non-fatal failure after the right
/// delay, recording it in `health`; yields a fatal error once, then ends.
pub(crate) fn retrying<K, S>(
    inner: S,
    backoff: BackoffConfig,
    stop_on_unauthorized: bool,
    health: Health,
) -> impl Stream<Item = Result<Event<K>>> + Send
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>>> + Send + Unpin + 'static,
{
    let state = Retrying {
        inner,
        backoff: Backoff::new(backoff),
        stop_on_unauthorized,
        health,
        expired_without_progress: false,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            let err = match state.inner.next().await {
                Some(Ok(event)) => {
                    // Only a change counts: a server that expires every
                    // watch right after each list would otherwise make us
                    // re-list in a loop.
                    if matches!(event, Event::Apply(_) | Event::Delete(_)) {
                        state.expired_without_progress = false;
                    }
                    return Some((Ok(event), Some(state)));
                }
                Some(Err(err)) => err,
                None => return None,
            };
            let delay = match disposition(&err, state.stop_on_unauthorized) {
                Disposition::Fatal => {
                    tracing::debug!(error = %err, "watch failed for good; ending the stream");
                    return Some((Err(err), None));
                }
                Disposition::Now if !state.expired_without_progress => {
                    state.expired_without_progress = true;
                    Duration::ZERO
                }
                Disposition::Now => state.backoff.next_delay(Instant::now(), None),
                Disposition::Later(at_least) => state.backoff.next_delay(Instant::now(), at_least),
            };
            state.health.record_restart(&err);
            tracing::info!(error = %err, ?delay, "watch interrupted; retrying");
            tokio::time::sleep(delay).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn api(code: u16, reason: &str) -> Error {
        Error::Api(Box::new(Status::failure("test", reason).with_code(code)))
    }

    #[test]
    fn classifies_like_client_go() {
        assert_eq!(disposition(&api(410, "Expired"), false), Disposition::Now);
        assert_eq!(disposition(&api(410, ""), false), Disposition::Now);
        assert_eq!(disposition(&api(500, "Gone"), false), Disposition::Now);
        assert_eq!(
            disposition(&api(404, "NotFound"), false),
            Disposition::Fatal
        );
        assert_eq!(
            disposition(&api(403, "Forbidden"), false),
            Disposition::Later(None)
        );
        assert_eq!(
            disposition(&api(403, "Forbidden"), true),
            Disposition::Fatal
        );
        assert_eq!(
            disposition(&api(401, "Unauthorized"), true),
            Disposition::Fatal
        );
        assert_eq!(
            disposition(&api(500, "InternalError"), true),
            Disposition::Later(None)
        );
        assert_eq!(
            disposition(&Error::WatchClosedEmpty, true),
            Disposition::Later(None)
        );
        let throttled = Error::Throttled {
            status: Box::new(Status::failure("slow down", "TooManyRequests").with_code(429)),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            disposition(&throttled, true),
            Disposition::Later(Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn streaming_rejections_are_plain_client_errors() {
        assert!(rejects_streaming_list(&api(400, "BadRequest")));
        assert!(rejects_streaming_list(&api(422, "Invalid")));
        assert!(!rejects_streaming_list(&api(403, "Forbidden")));
        assert!(!rejects_streaming_list(&api(410, "Expired")));
        assert!(!rejects_streaming_list(&api(500, "InternalError")));
        assert!(!rejects_streaming_list(&Error::WatchClosedEmpty));
    }
}
