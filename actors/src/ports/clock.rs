//! The clock port: what time it is, for the timestamps of events and the deadlines of timers.
//!
//! Actors read the time through a [`Clock`] so that tests can run them on tokio's paused time
//! (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`): with a [`TokioClock`], a timer
//! armed for a deadline fires exactly when the clock reaches it, without waiting.

use std::fmt::Debug;

/// Tells the time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The wall clock ([`std::time::SystemTime`]): follows every adjustment of the system time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let elapsed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

/// The wall time read once at start, advanced by tokio's monotonic clock: never goes backwards,
/// and follows tokio's paused time in tests (so deadlines and `tokio::time::sleep` agree).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_wall_ms: u64,
    base: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading the wall time now and advancing with tokio's clock.
    #[must_use]
    pub fn start() -> Self {
        Self::starting_at(SystemClock.now_ms())
    }

    /// A clock that reads `wall_ms` now and advances with tokio's clock (tests start at a fixed
    /// time).
    #[must_use]
    pub fn starting_at(wall_ms: u64) -> Self {
        Self {
            base_wall_ms: wall_ms,
            base: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base_wall_ms.saturating_add(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Clock, SystemClock, TokioClock};

    /// 2023-11-14T22:13:20Z.
    const T0: u64 = 1_700_000_000_000;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time() {
        let clock = TokioClock::starting_at(T0);
        assert_eq!(clock.now_ms(), T0, "paused: no time passes by itself");

        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(clock.now_ms(), T0 + 30_000);

        // A sleep on paused time returns at once, with the clock moved on by exactly its length.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(clock.now_ms(), T0 + 31_500);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_starts_at_the_wall_time() {
        let before = SystemClock.now_ms();
        let clock = TokioClock::start();
        let after = SystemClock.now_ms();
        assert!((before..=after).contains(&clock.now_ms()));

        tokio::time::advance(Duration::from_secs(3_600)).await;
        assert!(
            clock.now_ms() >= before + 3_600_000,
            "an hour of tokio's time is an hour of the clock's"
        );
    }
}
