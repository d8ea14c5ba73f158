//! The connection's I/O: reading into the session's receive buffer and
//! handing its events to the callbacks, sending what it encoded, and
//! sleeping through the [`Wait`] component until data or a deadline.

use crate::{Clock, Wait};
use embedded_nal::TcpClientStack;

use super::{Client, ClientError, NAP_MS};
use crate::driver::Handled;
use crate::error::{Error, Waiting};
use crate::packet::Packet;
use crate::session::Encoded;

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>> Client<'a, S, C, W> {
    /// Handles at most one packet, reading and waiting as needed until
    /// `deadline` (`None`: never wait). Keeps keepalive on the way.
    ///
    /// `just_sent`: a request was just sent, and the clock read then; its
    /// answer cannot be in yet, so the first round waits before reading,
    /// saving a read that would find nothing.
    pub(super) fn poll_inbound(
        &mut self,
        deadline: Option<u64>,
        just_sent: Option<u64>,
    ) -> Result<Option<Handled>, ClientError<S>> {
        let mut skip_read = just_sent.is_some() && deadline.is_some();
        // The clock is read once per wake: reading and handling what is
        // buffered takes no time worth a reading, on the path of every packet.
        let mut now = match just_sent {
            Some(now) => now,
            None => self.clock.now_ms(),
        };
        loop {
            self.keep_alive(now, false)?;
            if let Some(handled) = self.take_packet(now)? {
                return Ok(Some(handled));
            }
            if !core::mem::take(&mut skip_read) {
                if self.fill(now)? {
                    continue;
                }
                // Only with nothing left to read can a PINGRESP be called missing.
                self.keep_alive(now, true)?;
            }
            let Some(deadline) = deadline else {
                return Ok(None);
            };
            if now >= deadline {
                return Ok(None);
            }
            let until = self
                .session
                .next_deadline()
                .map_or(deadline, |k| k.min(deadline));
            let timeout = u32::try_from(until.saturating_sub(now)).unwrap_or(u32::MAX);
            if timeout > 0
                && let Some(socket) = self.socket.as_mut()
            {
                self.waiter.wait_readable(&mut self.stack, socket, timeout);
            }
            now = self.clock.now_ms();
        }
    }

    /// Sends PINGREQ when due. With `judge_ping`, also fails when the last
    /// one went unanswered (call it only once everything received is read).
    pub(super) fn keep_alive(&mut self, now: u64, judge_ping: bool) -> Result<(), ClientError<S>> {
        if self.session.keep_alive::<S::Error>(now, judge_ping)? {
            self.send_ping()?;
        }
        Ok(())
    }

    /// Reads what the stack has into the receive buffer; returns whether any
    /// byte arrived.
    pub(super) fn fill(&mut self, now: u64) -> Result<bool, ClientError<S>> {
        self.waiter.poll(&mut self.stack);
        let socket = self.socket.as_mut().ok_or(Error::NotConnected)?;
        let room = self.session.receive_space(now);
        if room.is_empty() {
            return Ok(false);
        }
        match self.stack.receive(socket, room) {
            Ok(0) if self.session.options().zero_read_is_eof => Err(Error::Closed),
            Ok(n) => {
                self.session.received(n);
                Ok(n > 0)
            }
            Err(nb::Error::WouldBlock) => Ok(false),
            Err(nb::Error::Other(e)) => Err(Error::Network(e)),
        }
    }

    /// Handles the next whole packet received, if there is one: delivers a
    /// message or a report to its callback, and sends what the session owes
    /// the broker for it.
    pub(super) fn take_packet(&mut self, now: u64) -> Result<Option<Handled>, ClientError<S>> {
        let handled = match self.session.poll::<S::Error>(now)? {
            None => return Ok(None),
            Some(event) => self.callbacks.hand_over(event),
        };
        if let Some(reply) = self.session.reply() {
            self.send_packet(reply)?;
        }
        Ok(Some(handled))
    }

    /// Encodes `packet` behind any batched messages and sends them all (the
    /// batch first, alone, if both do not fit).
    pub(super) fn send_packet(&mut self, packet: Packet<'_>) -> Result<(), ClientError<S>> {
        let now = self.clock.now_ms();
        loop {
            match self.session.encode(&packet)? {
                Encoded::FlushFirst(len) => self.send_now(now, len, &[])?,
                Encoded::Send(len) | Encoded::SendWithPayload(len) => {
                    return self.send_now(now, len, &[]);
                }
                Encoded::Batched => return Ok(()),
            }
        }
    }

    /// Sends the batched messages, if any (there are none without a
    /// connection: closing it drops them).
    pub(super) fn flush_pending(&mut self) -> Result<(), ClientError<S>> {
        match self.session.pending_len() {
            0 => Ok(()),
            len => self.send_now(self.clock.now_ms(), len, &[]),
        }
    }

    /// Sends like `send_buffered`, with the send timeout counted from `now`.
    pub(super) fn send_now(
        &mut self,
        now: u64,
        len: usize,
        tail: &[u8],
    ) -> Result<(), ClientError<S>> {
        let send_timeout = self.session.options().send_timeout_ms;
        let deadline = now.saturating_add(u64::from(send_timeout));
        self.send_buffered(now, len, tail, deadline)
    }

    /// Sends the first `len` bytes of the transmit buffer (batched messages
    /// included), then `tail`, whole, before `deadline`. Anything less leaves
    /// the broker with half a packet, so the connection is then lost, and the
    /// batched messages with it.
    pub(super) fn send_buffered(
        &mut self,
        now: u64,
        len: usize,
        tail: &[u8],
        deadline: u64,
    ) -> Result<(), ClientError<S>> {
        let socket = self.socket.as_mut().ok_or(Error::NotConnected)?;
        let head = self.session.tx(len);
        let written = [head, tail].into_iter().try_for_each(|bytes| {
            write_all(
                &mut self.stack,
                socket,
                &self.clock,
                &mut self.waiter,
                bytes,
                deadline,
            )
        });
        if let Err(e) = written {
            self.session.send_failed();
            return Err(e);
        }
        self.session.sent(now);
        self.waiter.poll(&mut self.stack);
        Ok(())
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
