//! How a client waits for data when the stack has none yet.

use embedded_nal::TcpClientStack;

/// Waits until a socket may have data to read, or a timeout passes.
///
/// embedded-nal's `receive` never blocks, so a client that must block (such as
/// `wait_msg`) calls `receive` until data arrives or its deadline passes. Between
/// two calls that found nothing it calls [`Wait::wait_readable`], which decides
/// how the time is spent: spin ([`Spin`], the default, correct on every stack
/// that moves by itself), sleep in the kernel (the std transport's waiter),
/// execute `WFI`, or yield to an RTOS. A stack that moves only when polled is
/// polled in all three methods, [`Wait::poll`] included.
///
/// An implementation may return early (spuriously); the caller checks the
/// socket and its deadline again. It must not return later than `timeout_ms`
/// after it was called, give or take the platform's timer resolution.
pub trait Wait<S: TcpClientStack + ?Sized> {
    /// Waits at most `timeout_ms` milliseconds for `socket` to become readable.
    fn wait_readable(&mut self, stack: &mut S, socket: &mut S::TcpSocket, timeout_ms: u32);

    /// Waits at most `timeout_ms` milliseconds with no socket to watch:
    /// between two reconnect attempts, and for a moment (1 ms) whenever
    /// `connect`, `send` or a DNS lookup says `WouldBlock` (and when `send`
    /// takes nothing: `Ok(0)`).
    ///
    /// The default returns at once (the caller checks its clock and calls
    /// again, so it spins); a stack that must be polled to make progress can
    /// poll here, and a platform that can sleep should.
    fn idle(&mut self, stack: &mut S, timeout_ms: u32) {
        let _ = (stack, timeout_ms);
        core::hint::spin_loop();
    }

    /// Lets the stack make progress without waiting: called before each
    /// `receive` and after each packet is handed to `send`.
    ///
    /// The default does nothing (a kernel stack moves by itself); a stack
    /// that must be polled (smoltcp) polls its interface here, so a loop of
    /// non-blocking `check_msg` calls and QoS 0 publishes still moves bytes.
    fn poll(&mut self, stack: &mut S) {
        let _ = stack;
    }
}

/// The waiter that does not wait: the caller polls the stack again at once.
///
/// Correct on every stack that moves by itself (a kernel or RTOS stack), at
/// the price of a busy CPU while a blocking call waits. A stack that must be
/// polled to make progress (smoltcp) needs a waiter that polls it instead.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Spin;

impl<S: TcpClientStack + ?Sized> Wait<S> for Spin {
    fn wait_readable(&mut self, _stack: &mut S, _socket: &mut S::TcpSocket, _timeout_ms: u32) {
        core::hint::spin_loop();
    }
}
