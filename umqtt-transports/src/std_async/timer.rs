//! [`StdTimer`]: a [`Timer`] for any executor on std, over one helper thread.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::std_tcp::StdClock;
use crate::{Clock, Timer};

/// A [`Timer`] that works with any executor (tokio, async-std, smol, a
/// hand-written `block_on`): one helper thread, started with the timer,
/// sleeps until the deadline of the sleep in progress and wakes its task.
///
/// Times are [`StdClock`] readings. A sleep allocates nothing: the timer
/// keeps one slot for the sleep in progress (it takes `&mut self`, so
/// there is never a second). The thread ends when the timer is dropped.
///
/// ```
/// use umqtt_transports::{Clock, Timer};
/// use umqtt_transports::std_async::{StdTimer, block_on};
///
/// let mut timer = StdTimer::new();
/// let until = timer.now_ms() + 20;
/// block_on(timer.sleep_until(until));
/// assert!(timer.now_ms() >= until);
/// ```
#[derive(Debug)]
pub struct StdTimer {
    clock: StdClock,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Slot {
    /// The sleep in progress: its deadline and the task to wake.
    sleep: Option<(u64, Waker)>,
    /// The timer was dropped: the thread ends.
    stop: bool,
}

impl StdTimer {
    /// A timer whose clock starts at (about) zero now, with its thread.
    pub fn new() -> Self {
        let shared = Arc::new(Shared::default());
        let clock = StdClock::new();
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("umqtt-timer".into())
            .spawn(move || run(&theirs, clock))
            .map(drop)
            .unwrap_or_else(|e| log::error!("the timer thread did not start: {e}"));
        StdTimer { clock, shared }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for StdTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StdTimer {
    fn drop(&mut self) {
        self.slot().stop = true;
        self.shared.changed.notify_one();
    }
}

impl Clock for StdTimer {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

impl Timer for StdTimer {
    async fn sleep_until(&mut self, deadline_ms: u64) {
        core::future::poll_fn(|cx| {
            let mut slot = self.slot();
            if self.clock.now_ms() >= deadline_ms {
                slot.sleep = None;
                return Poll::Ready(());
            }
            slot.sleep = Some((deadline_ms, cx.waker().clone()));
            drop(slot);
            self.shared.changed.notify_one();
            Poll::Pending
        })
        .await;
    }
}

/// The helper thread: waits for the deadline in the slot, then wakes its
/// task (and empties the slot, so each sleep wakes it once).
fn run(shared: &Shared, clock: StdClock) {
    let mut slot = shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if slot.stop {
            return;
        }
        let wait = match &slot.sleep {
            None => None,
            Some((deadline, _)) => match deadline.checked_sub(clock.now_ms()) {
                Some(left) if left > 0 => Some(Duration::from_millis(left)),
                _ => {
                    if let Some((_, waker)) = slot.sleep.take() {
                        waker.wake();
                    }
                    continue;
                }
            },
        };
        slot = match wait {
            None => shared
                .changed
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner),
            Some(wait) => {
                shared
                    .changed
                    .wait_timeout(slot, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}
