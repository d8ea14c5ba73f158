//! [`StdWait`]: sleeping in the kernel until the socket is readable.

use core::time::Duration;

use rustix::event::PollFlags;
use rustix::net::RecvFlags;
use std::io::{self, ErrorKind};
use std::net::TcpStream;

use crate::Wait;

use super::stack::poll_one;
use super::*;

/// A [`Wait`] for [`StdTcpStack`] that sleeps in the kernel until data arrives
/// on the socket (or end of file, or an error) or the timeout passes, and reads
/// what arrived into the socket.
///
/// One wait is one system call: a blocking `recv` of up to 256 bytes into the
/// [`StdSocket`]'s stash, bounded by the socket's receive timeout
/// (`SO_RCVTIMEO`). The next `receive` hands the stashed bytes over without a
/// system call, so a reply costs one `recv`, not a `poll` and a `recv`. End
/// of file and connection errors seen by the wait are kept in the socket and
/// reported by `receive` after the stashed bytes. If the stash holds bytes or
/// an error is kept, the wait returns at once.
///
/// **The receive timeout.** Setting it is a system call of its own, so the
/// waiter keeps the one it set last and reuses it while it suits the wait.
/// The kernel's timer wheel rounds a socket timeout up to ticks (up to 10 ms)
/// and may fire it up to an eighth late (Linux). So for a wait of `t` ms
/// (capped at one minute), with `b = t - 20`, a timeout between `b/2` and
/// `7b/8` suits it: it expires before `t` has passed, and not before about
/// half of it. When the one set last does not suit, `3b/4` is set; that
/// suits the caller's remaining time while it shrinks by up to a seventh or
/// grows by up to a half, so a client that waits for reply after reply with
/// about the same timeout sets it once per connection. Expiring early is
/// allowed by the [`Wait`] contract: the caller checks its deadline and waits
/// again for the rest.
///
/// Waits shorter than 50 ms, the rest of a wait whose receive timeout expired
/// early, and any wait if the receive timeout cannot be set, are one `poll(2)`
/// for `POLLIN` instead (timed precisely; it reads nothing, the next `receive`
/// does). So an idle client blocked until keepalive wakes twice per wait, not
/// once per halving of it. A zero timeout returns at once; on an
/// unconnected socket the wait sleeps for the timeout, so a caller never
/// spins. A signal may end the wait early.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StdWait;

impl StdWait {
    /// A new waiter.
    pub const fn new() -> Self {
        Self
    }
}

/// The coarsest timer tick of the kernels this runs on (Linux with `HZ=100`,
/// XNU): a socket timeout is rounded up to whole ticks.
pub(super) const TICK_MS: u32 = 10;

/// Waits shorter than this are one `poll(2)`: its timer is precise, while a
/// receive timeout may expire up to two ticks late, a large share of a short
/// wait.
pub(super) const SHORT_WAIT_MS: u32 = 50;

/// The longest receive timeout the waiter sets: one minute, which every
/// platform accepts. A longer wait ends after it, early; the caller waits
/// again.
pub(super) const MAX_READ_TIMEOUT_MS: u32 = 60_000;

/// The receive timeouts (`SO_RCVTIMEO`) that suit a wait, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadTimeouts {
    /// The shortest that may be reused: it ends the wait at worst half way.
    pub(super) shortest: u32,
    /// The one to set when the last one set does not suit.
    pub(super) best: u32,
    /// The longest that still expires within the wait, timer slack included.
    pub(super) longest: u32,
}

impl ReadTimeouts {
    /// The timeouts for a wait of `wait_ms`, at least [`SHORT_WAIT_MS`] (see
    /// [`StdWait`] for the rule).
    pub(super) fn for_wait(wait_ms: u32) -> Self {
        let base = wait_ms
            .min(MAX_READ_TIMEOUT_MS)
            .saturating_sub(2 * TICK_MS)
            .max(1);
        Self {
            shortest: (base / 2).max(1),
            best: (base - base / 4).max(1),
            longest: base - base.div_ceil(8),
        }
    }

    /// Whether a receive timeout of `ms` suits the wait.
    pub(super) fn suits(&self, ms: u32) -> bool {
        (self.shortest..=self.longest).contains(&ms)
    }
}

impl Wait<StdTcpStack> for StdWait {
    /// Sleeps the thread for `timeout_ms`.
    fn idle(&mut self, _stack: &mut StdTcpStack, timeout_ms: u32) {
        std::thread::sleep(Duration::from_millis(u64::from(timeout_ms)));
    }

    fn wait_readable(&mut self, _stack: &mut StdTcpStack, socket: &mut StdSocket, timeout_ms: u32) {
        if timeout_ms == 0 {
            return;
        }
        let Some(stream) = socket.stream.as_ref() else {
            std::thread::sleep(Duration::from_millis(u64::from(timeout_ms)));
            return;
        };
        if !socket.stash.is_empty() || socket.pending.is_some() {
            // The next `receive` returns at once.
            return;
        }
        if core::mem::take(&mut socket.read_timed_out) || timeout_ms < SHORT_WAIT_MS {
            poll_readable(stream, &mut socket.pending, timeout_ms);
            return;
        }
        let timeouts = ReadTimeouts::for_wait(timeout_ms);
        if !socket.read_timeout_ms.is_some_and(|ms| timeouts.suits(ms)) {
            let set = Duration::from_millis(u64::from(timeouts.best));
            if let Err(e) = stream.set_read_timeout(Some(set)) {
                log::trace!("wait_readable: cannot set a receive timeout ({e}); polling");
                socket.read_timeout_ms = None;
                poll_readable(stream, &mut socket.pending, timeout_ms);
                return;
            }
            socket.read_timeout_ms = Some(timeouts.best);
        }
        // Blocking: the stream is in blocking mode and no `MSG_DONTWAIT`.
        match rustix::net::recv(stream, socket.stash.space(), RecvFlags::empty()) {
            Ok((0, _)) => socket.pending = Some(StdNetError::Closed),
            Ok((n, _)) => socket.stash.filled(n),
            Err(e) => match io::Error::from(e) {
                // The receive timeout expired (`EAGAIN`): the caller checks its
                // deadline and waits for the rest, by `poll`, timed precisely.
                e if e.kind() == ErrorKind::WouldBlock => socket.read_timed_out = true,
                // A signal: return, the caller checks its deadline and waits again.
                e if e.kind() == ErrorKind::Interrupted => {}
                e => {
                    log::trace!("wait_readable: {e} (reported by the next receive)");
                    socket.pending = Some(StdNetError::from(e));
                }
            },
        }
    }
}

/// One `poll(2)` on `stream` for `POLLIN`, for at most `timeout_ms`; reads
/// nothing. An error of `poll` itself goes to `pending`; a signal ends the wait.
fn poll_readable(stream: &TcpStream, pending: &mut Option<StdNetError>, timeout_ms: u32) {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    match poll_one(stream, PollFlags::IN, timeout) {
        // Readable (data, end of file, an error) or the timeout passed.
        Ok(_) => {}
        // A signal: return early, the caller checks again.
        Err(e) if e.kind() == ErrorKind::Interrupted => {}
        Err(e) => {
            log::trace!("wait_readable: {e} (reported by the next receive)");
            *pending = Some(StdNetError::from(e));
        }
    }
}
