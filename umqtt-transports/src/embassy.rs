//! [`EmbassyTimer`]: the async client's [`Timer`] over embassy-time.

use embassy_time::Instant;

use crate::{Clock, Timer};

/// A [`Timer`] over embassy-time's global time driver: the clock is
/// [`Instant::now`] in milliseconds, a sleep is an embassy-time
/// `Timer::at`, so it runs on whatever executor and time driver the
/// firmware (or embassy's std arch, in tests) already has.
///
/// ```no_run
/// use umqtt_transports::{Clock, embassy::EmbassyTimer};
///
/// let timer = EmbassyTimer;
/// let _started = timer.now_ms();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbassyTimer;

impl Clock for EmbassyTimer {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }
}

impl Timer for EmbassyTimer {
    async fn sleep_until(&mut self, deadline_ms: u64) {
        embassy_time::Timer::at(Instant::from_millis(deadline_ms)).await;
    }
}
