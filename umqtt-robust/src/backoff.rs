//! How long to wait before the next reconnect attempt.

/// A source of randomness for jitter. Any generator works: jitter only keeps
/// a fleet of devices from reconnecting in lockstep.
pub trait Random {
    /// A random 32-bit number.
    fn next_u32(&mut self) -> u32;
}

/// A small xorshift generator: the default source when the application gives
/// none (seeded from the client id and the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XorShift32(u32);

impl XorShift32 {
    /// A generator from `seed` (0 is replaced by a fixed non-zero value).
    pub const fn new(seed: u32) -> Self {
        XorShift32(if seed == 0 { 0x9e37_79b9 } else { seed })
    }
}

impl Random for XorShift32 {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// Exponential backoff with jitter between reconnect attempts.
///
/// Attempt `n` (from 1) waits a base of `min_ms × 2^(n-1)`, capped at
/// `max_ms`, of which the upper half is random ("equal jitter"): the wait grows
/// with each failure, never exceeds `max_ms`, and devices spread out.
///
/// ```
/// use umqtt_robust::{Backoff, XorShift32};
///
/// let backoff = Backoff { min_ms: 100, max_ms: 1_000, max_attempts: Some(10) };
/// let mut random = XorShift32::new(7);
/// let third = backoff.delay_ms(3, &mut random);
/// assert!((200..=400).contains(&third));
/// assert!(backoff.delay_ms(30, &mut random) <= 1_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The base wait after the first failure, in ms.
    pub min_ms: u32,
    /// The longest wait, in ms.
    pub max_ms: u32,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// 500 ms doubling up to 30 s, never giving up.
    fn default() -> Self {
        Backoff {
            min_ms: 500,
            max_ms: 30_000,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1 for the first).
    pub fn delay_ms(&self, attempt: u32, random: &mut dyn Random) -> u32 {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = u64::from(self.min_ms) << doublings;
        let capped = base.min(u64::from(self.max_ms.max(self.min_ms)));
        let half = capped / 2;
        let jitter = u64::from(random.next_u32()) % (capped - half + 1);
        u32::try_from(half + jitter).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_and_stay_within_the_bounds() {
        let backoff = Backoff {
            min_ms: 100,
            max_ms: 5_000,
            max_attempts: None,
        };
        let mut random = XorShift32::new(1);
        for attempt in 1..40u32 {
            let base = (100u64 << (attempt - 1).min(31)).min(5_000);
            for _ in 0..100 {
                let d = u64::from(backoff.delay_ms(attempt, &mut random));
                assert!(
                    d >= base / 2 && d <= base,
                    "attempt {attempt}: {d} not in {}..={base}",
                    base / 2
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let backoff = Backoff {
            min_ms: 1_000,
            max_ms: 1_000,
            max_attempts: None,
        };
        let mut random = XorShift32::new(99);
        let mut seen = [false; 11];
        for _ in 0..1_000 {
            seen[(backoff.delay_ms(5, &mut random) as usize - 500) / 50] = true;
        }
        assert!(
            seen.iter().filter(|s| **s).count() >= 10,
            "waits cover the jitter range"
        );
    }

    #[test]
    fn zero_minimum_retries_at_once() {
        let backoff = Backoff {
            min_ms: 0,
            max_ms: 0,
            max_attempts: None,
        };
        assert_eq!(backoff.delay_ms(3, &mut XorShift32::new(3)), 0);
    }
}
