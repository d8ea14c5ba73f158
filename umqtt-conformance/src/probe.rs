//! [`Probe`]: the stack, clock and waiter, used exactly as the client uses
//! them, with the steps every check is made of (connect, send a packet,
//! expect a reply, receive once, wait) and what each step saw.

use core::fmt::Write as _;
use core::net::SocketAddr;

use embedded_nal::TcpClientStack;
use umqtt_simple::packet::Packet;
use umqtt_transports::{Clock, Wait};

use crate::config::Config;
use crate::note::Note;
use crate::packets::{self, MAX_PACKET, MAX_REPLY};
use crate::report::{Verdict, ZeroRead};
use crate::stats::{ConnectEnd, ConnectStats, RecvStats, SendStats, Stop};

/// What the checks talk to the stack through.
pub(crate) struct Probe<'p, 'c, S: TcpClientStack, C: Clock, W: Wait<S>> {
    pub(crate) stack: &'p mut S,
    clock: &'p C,
    pub(crate) waiter: &'p mut W,
    pub(crate) config: &'p Config<'c>,
    /// What `Ok(0)` from `receive` has meant so far.
    pub(crate) zero_read: ZeroRead,
}

impl<'p, 'c, S: TcpClientStack, C: Clock, W: Wait<S>> Probe<'p, 'c, S, C, W> {
    pub(crate) fn new(
        stack: &'p mut S,
        clock: &'p C,
        waiter: &'p mut W,
        config: &'p Config<'c>,
    ) -> Self {
        Probe {
            stack,
            clock,
            waiter,
            config,
            zero_read: ZeroRead::Unseen,
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn deadline(&self, ms: u32) -> u64 {
        self.now().saturating_add(u64::from(ms))
    }

    pub(crate) fn left(&self, deadline: u64) -> u32 {
        u32::try_from(deadline.saturating_sub(self.now())).unwrap_or(u32::MAX)
    }

    /// Connects as the client does: `idle(1)` after each `WouldBlock`.
    pub(crate) fn connect(
        &mut self,
        socket: &mut S::TcpSocket,
        addr: SocketAddr,
        deadline: u64,
    ) -> (ConnectEnd<S::Error>, ConnectStats) {
        let start = self.now();
        let mut stats = ConnectStats::default();
        let end = loop {
            let t0 = self.now();
            let result = self.stack.connect(socket, addr);
            stats.calls += 1;
            stats.longest_ms = stats.longest_ms.max(self.now().saturating_sub(t0));
            match result {
                Ok(()) => break ConnectEnd::Connected,
                Err(nb::Error::Other(e)) => break ConnectEnd::Failed(e),
                Err(nb::Error::WouldBlock) if self.now() < deadline => {
                    self.waiter.idle(self.stack, 1);
                }
                Err(nb::Error::WouldBlock) => break ConnectEnd::Pending,
            }
        };
        stats.elapsed_ms = self.now().saturating_sub(start);
        (end, stats)
    }

    /// One connection attempt on a fresh socket, within the deadline:
    /// `judge` says what the attempt means (its note comes first), then the
    /// socket is closed.
    pub(crate) fn attempt(
        &mut self,
        addr: SocketAddr,
        note: &mut Note,
        judge: impl FnOnce(ConnectEnd<S::Error>, ConnectStats, &mut Note) -> Verdict,
    ) -> Verdict {
        let mut socket = match self.stack.socket() {
            Ok(socket) => socket,
            Err(e) => {
                let _ = write!(note, "socket() failed: {e:?}");
                return Verdict::Fail;
            }
        };
        let deadline = self.deadline(self.config.deadline_ms);
        let (end, stats) = self.connect(&mut socket, addr, deadline);
        let verdict = judge(end, stats, note);
        self.close(socket, note);
        verdict
    }

    /// Sends all of `bytes`, napping on `WouldBlock` and on `Ok(0)` (which is
    /// counted, not taken as fatal, so the check sees whether the stack
    /// recovers).
    pub(crate) fn send_all(
        &mut self,
        socket: &mut S::TcpSocket,
        bytes: &[u8],
        deadline: u64,
        stats: &mut SendStats,
    ) -> Result<(), Stop<S::Error>> {
        let mut sent = 0;
        while let Some(rest) = bytes.get(sent..).filter(|r| !r.is_empty()) {
            let t0 = self.now();
            let result = self.stack.send(socket, rest);
            stats.calls += 1;
            stats.longest_ms = stats.longest_ms.max(self.now().saturating_sub(t0));
            match result {
                Ok(n) if n > 0 => {
                    if n < rest.len() {
                        stats.partial += 1;
                    }
                    sent += n;
                    continue;
                }
                Ok(_) => stats.zero += 1,
                Err(nb::Error::WouldBlock) => stats.would_block += 1,
                Err(nb::Error::Other(e)) => return Err(Stop::Error(e)),
            }
            if self.now() >= deadline {
                return Err(Stop::Deadline);
            }
            self.waiter.idle(self.stack, 1);
        }
        Ok(())
    }

    /// Sends one whole packet as the client does: all of it, then
    /// `Wait::poll`, so that a stack that must be polled transmits it.
    pub(crate) fn send_packet(
        &mut self,
        socket: &mut S::TcpSocket,
        packet: &Packet<'_>,
        deadline: u64,
        stats: &mut SendStats,
    ) -> Result<(), Stop<S::Error>> {
        let mut buf = [0u8; MAX_PACKET];
        let len = packets::encode(packet, &mut buf).map_err(Stop::Codec)?;
        self.send_all(socket, buf.get(..len).unwrap_or_default(), deadline, stats)?;
        self.waiter.poll(self.stack);
        Ok(())
    }

    /// Receives exactly the packet `expected`, waiting as the client does.
    /// Reads one byte at a time, so nothing after it is taken.
    pub(crate) fn expect(
        &mut self,
        socket: &mut S::TcpSocket,
        expected: &Packet<'_>,
        deadline: u64,
        stats: &mut RecvStats,
    ) -> Result<(), Stop<S::Error>> {
        let mut buf = [0u8; MAX_REPLY];
        let mut got = 0;
        loop {
            let Some(slot) = buf.get_mut(got..=got) else {
                return Err(Stop::Codec(packets::CodecError::Unexpected(
                    expected.packet_type(),
                )));
            };
            match self.receive_once(socket, slot, stats) {
                Ok(1) => {
                    got += 1;
                    let arrived = buf.get(..got).unwrap_or_default();
                    if packets::check_reply(arrived, expected).map_err(Stop::Codec)? {
                        return Ok(());
                    }
                }
                Ok(_) | Err(nb::Error::WouldBlock) => {
                    if self.now() >= deadline {
                        return Err(Stop::Deadline);
                    }
                    let left = self.left(deadline);
                    self.wait(socket, left, stats);
                }
                Err(nb::Error::Other(e)) => return Err(Stop::Error(e)),
            }
        }
    }

    /// The step most checks are made of: send `request`, then expect
    /// `reply`, both within `deadline`.
    pub(crate) fn exchange(
        &mut self,
        socket: &mut S::TcpSocket,
        request: &Packet<'_>,
        reply: &Packet<'_>,
        deadline: u64,
        received: &mut RecvStats,
    ) -> Result<(), Stop<S::Error>> {
        let mut sent = SendStats::default();
        self.send_packet(socket, request, deadline, &mut sent)?;
        self.expect(socket, reply, deadline, received)
    }

    /// One `receive`, polled first as the client does.
    pub(crate) fn receive_once(
        &mut self,
        socket: &mut S::TcpSocket,
        buf: &mut [u8],
        stats: &mut RecvStats,
    ) -> nb::Result<usize, S::Error> {
        self.waiter.poll(self.stack);
        let t0 = self.now();
        let result = self.stack.receive(socket, buf);
        stats.calls += 1;
        stats.longest_ms = stats.longest_ms.max(self.now().saturating_sub(t0));
        match &result {
            Ok(0) => stats.zero += 1,
            Err(nb::Error::WouldBlock) => stats.would_block += 1,
            _ => {}
        }
        result
    }

    /// Waits for `socket` to become readable, for at most `timeout_ms`.
    pub(crate) fn wait(
        &mut self,
        socket: &mut S::TcpSocket,
        timeout_ms: u32,
        stats: &mut RecvStats,
    ) {
        let t0 = self.now();
        self.waiter.wait_readable(self.stack, socket, timeout_ms);
        let took = self.now().saturating_sub(t0);
        stats.waits += 1;
        stats.longest_wait_ms = stats.longest_wait_ms.max(took);
        stats.overrun_ms = stats
            .overrun_ms
            .max(took.saturating_sub(u64::from(timeout_ms)));
    }

    /// Closes `socket`, noting a failure.
    pub(crate) fn close(&mut self, socket: S::TcpSocket, note: &mut Note) {
        if let Err(e) = self.stack.close(socket) {
            let _ = write!(note, "; close failed: {e:?}");
        }
    }
}
