//! [`StdClock`]: milliseconds since the clock was made, from [`std::time::Instant`].

use std::time::Instant;

use crate::Clock;

/// A [`Clock`] over [`std::time::Instant`]: milliseconds since the clock was
/// created.
///
/// ```
/// use umqtt_transports::Clock;
/// use umqtt_transports::std_tcp::StdClock;
///
/// let clock = StdClock::new();
/// let t0 = clock.now_ms();
/// std::thread::sleep(std::time::Duration::from_millis(5));
/// assert!(clock.now_ms() >= t0 + 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdClock {
    start: Instant,
}

impl StdClock {
    /// A clock that starts at (about) zero now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
