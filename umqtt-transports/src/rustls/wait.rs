//! [`RustlsWait`]: waiting for decrypted data with the inner stack's waiter.

use embedded_nal::TcpClientStack;

use crate::{Clock, Wait};

use super::{RustlsSocket, RustlsStack};

/// The [`Wait`] for a [`RustlsStack`]: [`RustlsStack::wait_readable`], which
/// returns at once when decrypted data is buffered and otherwise waits with
/// the inner stack's waiter (the std `StdWait` sleeps in the kernel).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RustlsWait;

impl<S, C, W> Wait<RustlsStack<S, C, W>> for RustlsWait
where
    S: TcpClientStack,
    C: Clock,
    W: Wait<S>,
{
    fn wait_readable(
        &mut self,
        stack: &mut RustlsStack<S, C, W>,
        socket: &mut RustlsSocket<S::TcpSocket, S::Error>,
        timeout_ms: u32,
    ) {
        stack.wait_readable(socket, timeout_ms);
    }

    fn idle(&mut self, stack: &mut RustlsStack<S, C, W>, timeout_ms: u32) {
        stack.idle(timeout_ms);
    }
}
