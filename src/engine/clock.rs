//! Where the engine reads the time of day. The scheduler's decisions (retry backoff, aging,
//! time limits, lease expiry) all read one [`Clock`], so a test pauses tokio's clock and moves
//! time itself: the engine's timestamps then follow tokio's, and its timers and its decisions
//! agree on what time it is.

use jiff::{SignedDuration, Timestamp};

/// The time of day as the engine sees it. Cheap to copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// `None`: the system's clock. Otherwise a time of day and the tokio instant it was read
    /// at: the time moves on with tokio's clock from there.
    base: Option<(Timestamp, tokio::time::Instant)>,
}

impl Clock {
    /// The system's clock (what `ocio` runs with).
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and moves on with tokio's clock: under paused tokio time
    /// (`tokio::time::pause`, `advance`) it moves only when the test moves it.
    pub fn following_tokio(start: Timestamp) -> Self {
        Self {
            base: Some((start, tokio::time::Instant::now())),
        }
    }

    pub fn now(&self) -> Timestamp {
        let Some((start, at)) = self.base else {
            return Timestamp::now();
        };
        let elapsed = SignedDuration::try_from(at.elapsed()).unwrap_or(SignedDuration::MAX);
        start.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_clock_following_tokio_moves_only_when_tokio_time_does() {
        let start = Timestamp::from_second(1_767_225_600).unwrap();
        let clock = Clock::following_tokio(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + SignedDuration::from_secs(90));
    }

    #[test]
    fn the_system_clock_reads_the_time_of_day() {
        let before = Timestamp::now();
        let read = Clock::system().now();
        assert!(read >= before && read <= Timestamp::now());
    }
}
