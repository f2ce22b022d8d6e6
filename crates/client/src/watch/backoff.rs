//! Exponential backoff with jitter, reset after a healthy period.
//!
//! The defaults follow client-go's reflector (800 ms doubling to a 30 s cap,
//! jitter 1.0, reset after two minutes without trouble) so that podlink puts
//! no more load on a struggling API server than kubectl's informers do.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

/// How long to wait between attempts after a failure.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// The first delay.
    pub initial: Duration,
    /// Each further delay is the previous one times this factor.
    pub factor: f64,
    /// No delay is ever longer than this, jitter included.
    pub max: Duration,
    /// Up to this fraction of the delay is added at random, so that many
    /// clients cut off together do not come back together (`0.0` turns it off).
    pub jitter: f64,
    /// After this long without a failure the next delay starts from
    /// `initial` again.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(800),
            factor: 2.0,
            max: Duration::from_secs(30),
            jitter: 1.0,
            reset_after: Duration::from_secs(120),
        }
    }
}

impl BackoffConfig {
    /// Sets the first delay.
    #[must_use]
    pub fn initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// Sets the growth factor (values below 1 are treated as 1).
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Sets the cap on any single delay.
    #[must_use]
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Sets the jitter fraction (clamped to `0.0..=1.0`).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets how long a quiet period must last before delays start over.
    #[must_use]
    pub fn reset_after(mut self, reset_after: Duration) -> Self {
        self.reset_after = reset_after;
        self
    }
}

/// The running backoff of one watcher: hands out growing delays and starts
/// over after `reset_after` without failures.
#[derive(Debug)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    /// The delay before jitter that the next failure gets.
    next: Duration,
    /// When the last failure was reported; `None` before the first.
    last_failure: Option<Instant>,
    rng: SmallRng,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self {
            next: config.initial,
            config,
            last_failure: None,
            rng: SmallRng::from_os_rng(),
        }
    }

    /// Records a failure at `now` and returns how long to wait before the
    /// next attempt; never less than `at_least` (a server's `Retry-After`).
    pub(crate) fn next_delay(&mut self, now: Instant, at_least: Option<Duration>) -> Duration {
        let healthy_for = self
            .last_failure
            .map(|at| now.saturating_duration_since(at));
        if healthy_for.is_some_and(|quiet| quiet >= self.config.reset_after) {
            self.next = self.config.initial;
        }
        self.last_failure = Some(now);
        let base = self.next.min(self.config.max);
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let jittered = if jitter > 0.0 {
            base.mul_f64(1.0 + self.rng.random_range(0.0..jitter))
        } else {
            base
        };
        self.next = base
            .mul_f64(self.config.factor.max(1.0))
            .min(self.config.max);
        jittered
            .min(self.config.max)
            .max(at_least.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig::default().jitter(0.0)
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(no_jitter());
        let now = Instant::now();
        let delays: Vec<_> = (0..8).map(|_| backoff.next_delay(now, None)).collect();
        let millis: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    }

    #[test]
    fn resets_after_a_healthy_period() {
        let mut backoff = Backoff::new(no_jitter());
        let start = Instant::now();
        backoff.next_delay(start, None);
        backoff.next_delay(start, None);
        assert_eq!(backoff.next_delay(start, None), Duration::from_millis(3200));
        let later = start + Duration::from_secs(121);
        assert_eq!(backoff.next_delay(later, None), Duration::from_millis(800));
        // A failure soon after does not reset.
        let soon = later + Duration::from_secs(1);
        assert_eq!(backoff.next_delay(soon, None), Duration::from_millis(1600));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut backoff = Backoff::new(BackoffConfig::default());
        let now = Instant::now();
        for round in 0..200 {
            let base = Duration::from_millis(800)
                .mul_f64(2f64.powi(round.min(6)))
                .min(Duration::from_secs(30));
            let delay = backoff.next_delay(now, None);
            assert!(delay >= base, "{delay:?} < {base:?} in round {round}");
            assert!(delay <= Duration::from_secs(30), "{delay:?} over the cap");
            assert!(delay < base * 2 || base == Duration::from_secs(30));
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut backoff = Backoff::new(no_jitter());
        let now = Instant::now();
        let delay = backoff.next_delay(now, Some(Duration::from_secs(5)));
        assert_eq!(delay, Duration::from_secs(5));
        assert_eq!(
            backoff.next_delay(now, Some(Duration::from_millis(1))),
            Duration::from_millis(1600)
        );
    }
}
