//! The pump: runs a [`Request`] on the [`Engine`](crate::Engine), sending,
//! reading and waiting on the stack as it asks, and closes the connection
//! when a request lost it.

use embedded_nal::TcpClientStack;

use super::{Client, ClientError};
use crate::engine::Request;
use crate::error::{Error, Waiting};
use crate::{Clock, Wait};

/// How long the waiter may idle while the stack is busy connecting,
/// resolving or sending.
pub(super) const NAP_MS: u32 = 1;

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Client<'_, S, C, W> {
    crate::front_end::client_pump!(ClientError<S>);

    /// The time on the client's clock.
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Waits (through the waiter) until data arrives or `until` passes.
    fn wait(&mut self, now: u64, until: u64) -> Result<(), ClientError<S>> {
        let timeout = u32::try_from(until.saturating_sub(now)).unwrap_or(u32::MAX);
        if timeout > 0
            && let Some(socket) = self.socket.as_mut()
        {
            self.waiter.wait_readable(&mut self.stack, socket, timeout);
        }
        self.engine.waited();
        Ok(())
    }

    /// Sends what the engine has to send, then lets the stack make
    /// progress.
    fn send(&mut self, request: &dyn Request, deadline: u64) -> Result<(), ClientError<S>> {
        let socket = self.socket.as_mut().ok_or(Error::NotConnected)?;
        let (head, tail) = self.engine.outgoing(request);
        [head, tail].into_iter().try_for_each(|bytes| {
            write_all(
                &mut self.stack,
                socket,
                &self.clock,
                &mut self.waiter,
                bytes,
                deadline,
            )
        })?;
        self.waiter.poll(&mut self.stack);
        Ok(())
    }

    /// Reads what the stack has into the engine's receive buffer.
    fn read(&mut self, now: u64) -> Result<(), ClientError<S>> {
        self.waiter.poll(&mut self.stack);
        let socket = self.socket.as_mut().ok_or(Error::NotConnected)?;
        let room = self.engine.receive_space(now);
        let n = if room.is_empty() {
            0
        } else {
            match self.stack.receive(socket, room) {
                Ok(0) if self.zero_read_is_eof => return Err(Error::Closed),
                Ok(n) => n,
                Err(nb::Error::WouldBlock) => 0,
                Err(nb::Error::Other(e)) => return Err(Error::Network(e)),
            }
        };
        self.engine.received(n);
        Ok(())
    }

    /// Lets the waiter run for a moment (at most 1 ms) while the stack is
    /// busy connecting, resolving or sending: a stack that must be polled to
    /// make progress gets polled, a platform that sleeps sleeps briefly.
    pub(super) fn nap(&mut self) {
        self.waiter.idle(&mut self.stack, NAP_MS);
    }

    /// Whether a connection is open.
    fn is_open(&self) -> bool {
        self.socket.is_some()
    }

    /// Closes the connection and drops what was batched for it.
    pub(super) fn close(&mut self) {
        self.engine.closed();
        if let Some(socket) = self.socket.take()
            && let Err(e) = self.stack.close(socket)
        {
            log::debug!("closing the socket failed: {e:?}");
        }
    }
}

/// Writes all of `bytes` before `deadline`, or fails.
fn write_all<S: TcpClientStack, C: Clock, W: Wait<S>>(
    stack: &mut S,
    socket: &mut S::TcpSocket,
    clock: &C,
    waiter: &mut W,
    bytes: &[u8],
    deadline: u64,
) -> Result<(), Error<S::Error>> {
    let mut sent = 0;
    while let Some(rest) = bytes.get(sent..).filter(|r| !r.is_empty()) {
        match stack.send(socket, rest) {
            // Some stacks (smoltcp-nal) say "buffer full" with Ok(0): wait
            // like WouldBlock, but never past the deadline.
            Ok(0) | Err(nb::Error::WouldBlock) if clock.now_ms() < deadline => {
                waiter.idle(stack, NAP_MS)
            }
            Ok(0) | Err(nb::Error::WouldBlock) => return Err(Error::Timeout(Waiting::Send)),
            Ok(n) => sent += n,
            Err(nb::Error::Other(e)) => return Err(Error::Network(e)),
        }
    }
    Ok(())
}
