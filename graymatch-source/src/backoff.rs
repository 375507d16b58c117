//! Exponential backoff with jitter, for sources that retry.

use std::time::Duration;

/// Doubles from `initial` to `max` on each failure; `reset` after a success.
/// Each wait is drawn from the upper half of the current step, so instances
/// that failed together do not retry together.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(any(feature = "http", feature = "etcd", feature = "file")),
    allow(dead_code)
)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    rng: fastrand::Rng,
}

#[cfg_attr(
    not(any(feature = "http", feature = "etcd", feature = "file")),
    allow(dead_code)
)]
impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
            rng: fastrand::Rng::new(),
        }
    }

    /// The wait before the next retry.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = step / 2;
        half + jitter(&mut self.rng, step - half)
    }

    pub(crate) fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// A uniform duration in `0..=max`.
pub(crate) fn jitter(rng: &mut fastrand::Rng, max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_bounds_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let steps = [100, 200, 400, 800, 800, 800];
        for step in steps {
            let w = b.next_wait();
            let step = Duration::from_millis(step);
            assert!(w >= step / 2 && w <= step, "{w:?} within {step:?}");
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(100));
    }
}
