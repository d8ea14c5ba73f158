//! [`TlsWait`]: waiting for decrypted data with the inner stack's waiter.

use embedded_nal::TcpClientStack;
use rand_core::CryptoRngCore;

use crate::{Clock, Wait};

use super::{TlsSocket, TlsStack, TlsTime};

/// The [`Wait`] for a [`TlsStack`]: waits for decrypted data with
/// [`TlsStack::wait_readable`] (which waits with the inner stack's waiter).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TlsWait;

impl<S, C, W, R, T, const CERT_SIZE: usize> Wait<TlsStack<'_, S, C, W, R, T, CERT_SIZE>> for TlsWait
where
    S: TcpClientStack,
    C: Clock + Clone,
    W: Wait<S>,
    R: CryptoRngCore,
    T: TlsTime,
{
    fn wait_readable(
        &mut self,
        stack: &mut TlsStack<'_, S, C, W, R, T, CERT_SIZE>,
        socket: &mut TlsSocket<S::TcpSocket>,
        timeout_ms: u32,
    ) {
        stack.wait_readable(socket, timeout_ms);
    }

    fn idle(&mut self, stack: &mut TlsStack<'_, S, C, W, R, T, CERT_SIZE>, timeout_ms: u32) {
        stack.idle(timeout_ms);
    }
}
