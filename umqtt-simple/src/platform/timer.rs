//! Waiting until a time, for the async client: what bounds its waits.

use crate::Clock;

/// A [`Clock`] that an async task can also sleep on.
///
/// The async client (umqtt-simple's `asynch`) races every wait for the
/// broker against [`Timer::sleep_until`], so a broker that never answers
/// cannot hang a call: the deadlines of the blocking client, without
/// tying the client to an executor. Implementations in umqtt-transports:
/// with feature `embassy-time`, `embassy::EmbassyTimer`; with `std`,
/// `std_async::StdTimer`, which works on any executor. Over any other executor's timer it is a few lines:
///
/// ```
/// use umqtt_simple::{Clock, Timer};
///
/// /// A timer over a tick counter an interrupt advances (here, by hand).
/// struct Ticks(core::cell::Cell<u64>);
/// impl Clock for Ticks {
///     fn now_ms(&self) -> u64 {
///         self.0.get()
///     }
/// }
/// impl Timer for Ticks {
///     async fn sleep_until(&mut self, deadline_ms: u64) {
///         // A real one would wait on the executor's timer queue.
///         while self.now_ms() < deadline_ms {
///             self.0.set(self.0.get() + 1);
///         }
///     }
/// }
/// ```
// `async fn` in a public trait: its future has no `Send` bound, which is what
// single-threaded embedded executors want (embedded-io-async does the same).
#[allow(async_fn_in_trait)]
pub trait Timer: Clock {
    /// Completes once [`Clock::now_ms`] has reached `deadline_ms` (at once
    /// if it has already), never before: the client takes its completion
    /// as the deadline having passed.
    async fn sleep_until(&mut self, deadline_ms: u64);
}
