//! Two ways to run a future without letting it hang the client: against a
//! deadline on the [`Timer`], or for one poll only.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use crate::Timer;

/// Runs `future` until it completes (`Some`) or `deadline` passes on
/// `timer` (`None`; the future is dropped unfinished).
pub(super) async fn before<T: Timer, F: Future>(
    timer: &mut T,
    deadline: u64,
    future: F,
) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut sleep = pin!(timer.sleep_until(deadline));
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Polls `future` once: its output if it is ready now, else `None` (the
/// future is dropped; what it registered to be woken by does no harm).
pub(super) async fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        Poll::Ready(match future.as_mut().poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::Clock;
    use std::time::{Duration, Instant};
    use umqtt_transports::std_async::block_on;

    /// A timer on `Instant`, sleeping the thread (umqtt-transports'
    /// `StdTimer` implements the library build's `Timer`, not this test
    /// build's).
    struct StdTimer(Instant);

    impl StdTimer {
        fn new() -> Self {
            StdTimer(Instant::now())
        }
    }

    impl Clock for StdTimer {
        fn now_ms(&self) -> u64 {
            u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
        }
    }

    impl Timer for StdTimer {
        async fn sleep_until(&mut self, deadline_ms: u64) {
            let left = deadline_ms.saturating_sub(self.now_ms());
            std::thread::sleep(Duration::from_millis(left));
        }
    }

    #[test]
    fn before_gives_the_output_of_a_future_that_completes_in_time() {
        let mut timer = StdTimer::new();
        let deadline = timer.now_ms() + 1_000;
        assert_eq!(block_on(before(&mut timer, deadline, async { 7 })), Some(7));
    }

    #[test]
    fn before_gives_none_once_the_deadline_passed_on_a_future_that_never_completes() {
        let mut timer = StdTimer::new();
        let deadline = timer.now_ms() + 30;
        let never = core::future::pending::<()>();
        assert_eq!(block_on(before(&mut timer, deadline, never)), None);
        assert!(timer.now_ms() >= deadline);
    }

    #[test]
    fn now_or_never_takes_what_is_ready_and_leaves_what_is_not() {
        assert_eq!(block_on(now_or_never(async { 3 })), Some(3));
        assert_eq!(block_on(now_or_never(core::future::pending::<u8>())), None);
    }
}
