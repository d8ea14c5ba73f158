//! An embedded-nal → embedded-io adapter that understands TLS record framing.
//!
//! embedded-tls reads and writes through blocking [`embedded_io::Read`] and
//! [`embedded_io::Write`]; embedded-nal sockets never block. [`NalIo`] turns
//! one into the other: it owns a [`TcpClientStack`], one of its connected
//! sockets, a [`Clock`] and a [`Wait`], and blocks by calling `receive` or
//! `send` again, waiting with the [`Wait`] in between, never past the
//! deadline set in its [`IoControl`]. It never spins forever.
//!
//! **Record boundaries.** A TLS reader that gives up in the middle of a record
//! has lost the stream. So the adapter follows the record framing of what it
//! reads (5-byte header with the length, then the body) and knows when the
//! next byte is the first of a new record. Only there may a read end without
//! data: with [`IoControl::set_record_start_deadline`], a read that finds no
//! byte of a new record by that (earlier) deadline fails with
//! [`NalIoError::NotReady`] and consumes nothing, so the TLS connection stays
//! usable and `check_msg` never blocks. Once a record has started, the read
//! waits up to the full deadline; missing it is fatal
//! ([`NalIoError::TimedOut`]). Once bytes came in an operation, the same
//! deadlines hold even while more keep coming, so a peer that never pauses
//! cannot hold the caller past them. Bytes that cannot start a TLS record (a
//! plain TCP service answering) fail with [`NalIoError::NotTls`].
//!
//! The control lives apart from the adapter (borrowed) because a TLS
//! connection owns the adapter and offers no way to reach it.
//!
//! ```
//! # #[cfg(feature = "std")]
//! # fn main() {
//! use embedded_io::{Read, Write};
//! use embedded_nal::TcpClientStack;
//! use umqtt_transports::Spin;
//! use umqtt_transports::memory::{MemoryStack, VirtualClock};
//! use umqtt_transports::tls::{IoControl, NalIo, NalIoError};
//!
//! let mut stack = MemoryStack::new();
//! let peer = stack.clone();
//! let mut socket = stack.socket().unwrap();
//! stack.connect(&mut socket, "127.0.0.1:8883".parse().unwrap()).unwrap();
//! let clock = VirtualClock::starting_at(0);
//! let control = IoControl::new();
//! control.set_deadline(1_000);
//! control.set_record_start_deadline(Some(0)); // do not wait for a new record
//! let mut io = NalIo::new(stack, socket, clock, Spin, &control);
//!
//! io.write_all(b"hello").unwrap();
//! assert_eq!(peer.sent(), b"hello");
//! let mut buf = [0u8; 8];
//! assert_eq!(io.read(&mut buf), Err(NalIoError::NotReady)); // nothing yet
//! peer.feed(&[23, 3, 3, 0, 2, 0xAA, 0xBB]); // one record: header + 2 bytes
//! assert_eq!(io.read(&mut buf), Ok(7));
//! # }
//! # #[cfg(not(feature = "std"))]
//! # fn main() {}
//! ```

use core::cell::Cell;
use core::fmt;

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind};

use super::framing::Framing;
use crate::{Clock, Wait};

/// How long a `send` that said `WouldBlock` (or took nothing) waits before it
/// tries again, in milliseconds.
const NAP_MS: u32 = 1;

/// What the last read or write of a [`NalIo`] ended with; kept because
/// embedded-tls keeps only an error's [`ErrorKind`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum IoOutcome {
    /// Nothing went wrong.
    Ok,
    /// No byte of a new record arrived by the record-start deadline (harmless).
    NotReady,
    /// The deadline passed in the middle of a record, or while writing.
    TimedOut,
    /// The stack reported an error of this kind.
    Network(TcpErrorKind),
    /// The peer sent bytes that cannot start a TLS record.
    NotTls,
}

/// The deadlines a [`NalIo`] works to and what its last operation ended with,
/// shared between the adapter and whoever drives the TLS connection around it.
#[derive(Debug)]
pub struct IoControl {
    deadline: Cell<u64>,
    record_start: Cell<Option<u64>>,
    outcome: Cell<IoOutcome>,
    received: Cell<bool>,
    /// The async adapter: the next read starts the current record again.
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    rewind: Cell<bool>,
    /// The async adapter: a write is under way (still set when its future
    /// was dropped).
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    writing: Cell<bool>,
}

impl Default for IoControl {
    fn default() -> Self {
        Self::new()
    }
}

impl IoControl {
    /// A control with the deadline 0 (every wait ends at once) and no separate
    /// record-start deadline.
    pub const fn new() -> Self {
        IoControl {
            deadline: Cell::new(0),
            record_start: Cell::new(None),
            outcome: Cell::new(IoOutcome::Ok),
            received: Cell::new(false),
            rewind: Cell::new(false),
            writing: Cell::new(false),
        }
    }

    /// Sets the time (of the adapter's [`Clock`]) after which no read or write
    /// waits any more.
    pub fn set_deadline(&self, at_ms: u64) {
        self.deadline.set(at_ms);
    }

    /// The deadline set last.
    pub fn deadline(&self) -> u64 {
        self.deadline.get()
    }

    /// Sets when a read at a record boundary gives up without harm
    /// ([`NalIoError::NotReady`]); `None`: it waits up to the deadline too
    /// and then fails with [`NalIoError::TimedOut`].
    pub fn set_record_start_deadline(&self, at_ms: Option<u64>) {
        self.record_start.set(at_ms);
    }

    /// What the last read or write ended with.
    pub fn outcome(&self) -> IoOutcome {
        self.outcome.get()
    }

    /// Forgets the last outcome, and that bytes were received.
    pub fn clear_outcome(&self) {
        self.outcome.set(IoOutcome::Ok);
        self.received.set(false);
    }

    /// Whether any byte was received since [`IoControl::clear_outcome`].
    pub fn received_any(&self) -> bool {
        self.received.get()
    }

    /// Records what an operation of another adapter (the async one) ended
    /// with.
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn set_outcome(&self, outcome: IoOutcome) {
        self.outcome.set(outcome);
    }

    /// Records that bytes were received.
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn note_received(&self) {
        self.received.set(true);
    }

    /// Asks the async adapter to start the current record again at its
    /// next read (the last read was dropped before it ended).
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn request_rewind(&self) {
        self.rewind.set(true);
    }

    /// Whether a rewind was asked for (and forgets it).
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn take_rewind(&self) -> bool {
        self.rewind.replace(false)
    }

    /// Marks a write of the async adapter as under way, or done.
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn set_writing(&self, writing: bool) {
        self.writing.set(writing);
    }

    /// Whether a write of the async adapter is under way (after an
    /// operation ended: it was dropped half-way).
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn writing(&self) -> bool {
        self.writing.get()
    }

    /// Forgets everything the adapters recorded (a new connection).
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn reset(&self) {
        self.clear_outcome();
        self.rewind.set(false);
        self.writing.set(false);
    }
}

/// Why a [`NalIo`] read or write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalIoError<E> {
    /// The stack's error.
    Network(E),
    /// No byte of a new record arrived by the record-start deadline; nothing
    /// was consumed, the stream is intact.
    NotReady,
    /// The deadline passed while a record was half read, or while writing.
    TimedOut,
    /// The peer sent bytes that cannot start a TLS record.
    NotTls,
}

impl<E: fmt::Debug> fmt::Display for NalIoError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NalIoError::Network(e) => write!(f, "network error: {e:?}"),
            NalIoError::NotReady => f.write_str("no new TLS record has arrived yet"),
            NalIoError::TimedOut => f.write_str("timed out in the middle of a TLS record"),
            NalIoError::NotTls => f.write_str("the peer does not speak TLS"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for NalIoError<E> {}

impl<E: TcpError> embedded_io::Error for NalIoError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            NalIoError::Network(e) => match e.kind() {
                TcpErrorKind::PipeClosed => ErrorKind::ConnectionReset,
                _ => ErrorKind::Other,
            },
            NalIoError::NotReady => ErrorKind::Interrupted,
            NalIoError::TimedOut => ErrorKind::TimedOut,
            NalIoError::NotTls => ErrorKind::InvalidData,
        }
    }
}

/// A blocking [`embedded_io`] stream over a non-blocking embedded-nal socket,
/// bounded by the deadlines of an [`IoControl`] (see the [module docs](self)).
pub struct NalIo<'c, S: TcpClientStack, C: Clock, W: Wait<S>> {
    stack: S,
    socket: S::TcpSocket,
    clock: C,
    waiter: W,
    control: &'c IoControl,
    framing: Framing,
}

impl<'c, S: TcpClientStack, C: Clock, W: Wait<S>> NalIo<'c, S, C, W> {
    /// An adapter over the connected `socket` of `stack`.
    pub fn new(
        stack: S,
        socket: S::TcpSocket,
        clock: C,
        waiter: W,
        control: &'c IoControl,
    ) -> Self {
        NalIo {
            stack,
            socket,
            clock,
            waiter,
            control,
            framing: Framing::default(),
        }
    }

    /// The parts back, to close the socket or reuse the stack.
    pub fn into_parts(self) -> (S, S::TcpSocket, C, W) {
        (self.stack, self.socket, self.clock, self.waiter)
    }

    /// Whether the next byte read starts a new TLS record.
    pub fn at_record_boundary(&self) -> bool {
        self.framing.at_boundary()
    }

    fn fail(&self, e: NalIoError<S::Error>) -> NalIoError<S::Error> {
        self.control.outcome.set(match &e {
            NalIoError::Network(e) => IoOutcome::Network(e.kind()),
            NalIoError::NotReady => IoOutcome::NotReady,
            NalIoError::TimedOut => IoOutcome::TimedOut,
            NalIoError::NotTls => IoOutcome::NotTls,
        });
        e
    }
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> NalIo<'_, S, C, W> {
    /// When a read must give up: the record-start deadline at a record
    /// boundary (if set, and earlier), else the deadline.
    fn until(&self) -> u64 {
        let deadline = self.control.deadline.get();
        match self.control.record_start.get() {
            Some(start) if self.framing.at_boundary() => start.min(deadline),
            _ => deadline,
        }
    }

    /// The error a read ends with now, if its time is up: the harmless
    /// [`NalIoError::NotReady`] at a record boundary when a record-start
    /// deadline is set, else [`NalIoError::TimedOut`].
    fn past_deadline(&self) -> Option<NalIoError<S::Error>> {
        if self.clock.now_ms() < self.until() {
            return None;
        }
        let gentle = self.control.record_start.get().is_some() && self.framing.at_boundary();
        Some(if gentle {
            NalIoError::NotReady
        } else {
            NalIoError::TimedOut
        })
    }
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> ErrorType for NalIo<'_, S, C, W> {
    type Error = NalIoError<S::Error>;
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Read for NalIo<'_, S, C, W> {
    /// Reads at least one byte, waiting with the [`Wait`] until the deadline
    /// (see the [module docs](self)). `Ok(0)` from the stack counts as "no
    /// data yet".
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Once bytes came in this operation, the deadlines hold even while
            // more keep coming: a peer that never pauses (records that carry
            // no data, one after the other) must not hold the caller past them.
            if self.control.received.get()
                && let Some(e) = self.past_deadline()
            {
                return Err(self.fail(e));
            }
            self.waiter.poll(&mut self.stack);
            match self.stack.receive(&mut self.socket, buf) {
                Ok(n) if n > 0 => {
                    let got = buf.get(..n).unwrap_or_default();
                    if !self.framing.feed(got) {
                        log::debug!("TLS: the peer sent {:02x?}, not a TLS record", got.get(..5));
                        return Err(self.fail(NalIoError::NotTls));
                    }
                    self.control.received.set(true);
                    return Ok(n);
                }
                Ok(_) | Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => {
                    log::debug!("TLS transport: receive failed: {e:?}");
                    return Err(self.fail(NalIoError::Network(e)));
                }
            }
            if let Some(e) = self.past_deadline() {
                return Err(self.fail(e));
            }
            let timeout =
                u32::try_from(self.until().saturating_sub(self.clock.now_ms())).unwrap_or(u32::MAX);
            self.waiter
                .wait_readable(&mut self.stack, &mut self.socket, timeout);
        }
    }
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Write for NalIo<'_, S, C, W> {
    /// Writes at least one byte, waiting (a millisecond at a time) while the
    /// stack takes nothing, until the deadline.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.stack.send(&mut self.socket, buf) {
                Ok(n) if n > 0 => {
                    self.waiter.poll(&mut self.stack);
                    return Ok(n);
                }
                Ok(_) | Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => {
                    log::debug!("TLS transport: send failed: {e:?}");
                    return Err(self.fail(NalIoError::Network(e)));
                }
            }
            if self.clock.now_ms() >= self.control.deadline.get() {
                return Err(self.fail(NalIoError::TimedOut));
            }
            self.waiter.idle(&mut self.stack, NAP_MS);
        }
    }

    /// Nothing to do: every byte written was handed to the stack.
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::Spin;
    use crate::memory::{MemoryError, MemoryStack, VirtualClock, VirtualWait};

    fn adapter(
        control: &IoControl,
    ) -> (
        NalIo<'_, MemoryStack, VirtualClock, VirtualWait>,
        MemoryStack,
        VirtualClock,
        VirtualWait,
    ) {
        let mut stack = MemoryStack::new();
        let peer = stack.clone();
        let mut socket = stack.socket().expect("socket");
        stack
            .connect(&mut socket, "127.0.0.1:8883".parse().expect("addr"))
            .expect("connect");
        let clock = VirtualClock::starting_at(1000);
        let wait = VirtualWait::new(&clock);
        let io = NalIo::new(stack, socket, clock.clone(), wait.clone(), control);
        (io, peer, clock, wait)
    }

    #[test]
    fn read_at_a_record_boundary_gives_up_at_the_record_start_deadline_without_harm() {
        let control = IoControl::new();
        control.set_deadline(11_000);
        control.set_record_start_deadline(Some(1_000));
        let (mut io, peer, clock, wait) = adapter(&control);
        let mut buf = [0u8; 16];
        assert_eq!(io.read(&mut buf), Err(NalIoError::NotReady));
        assert_eq!(control.outcome(), IoOutcome::NotReady);
        assert_eq!(clock.now_ms(), 1000, "a non-blocking read does not wait");
        assert!(wait.waits().is_empty());
        // With a record-start deadline 50 ms away it waits exactly that long.
        control.set_record_start_deadline(Some(1_050));
        assert_eq!(io.read(&mut buf), Err(NalIoError::NotReady));
        assert_eq!(clock.now_ms(), 1050);
        // A record arrives: its header and body are read whole.
        peer.feed(&[23, 3, 3, 0, 3, 1, 2, 3]);
        assert_eq!(io.read(&mut buf[..5]), Ok(5));
        assert!(!io.at_record_boundary());
        assert_eq!(io.read(&mut buf[..3]), Ok(3));
        assert!(io.at_record_boundary());
    }

    /// A peer that never pauses (a flood of records that carry no data)
    /// used to hold the read past its deadline: the deadline was looked at
    /// only when no byte was waiting.
    #[test]
    fn bytes_that_keep_coming_do_not_hold_a_read_past_its_deadline() {
        let control = IoControl::new();
        control.set_deadline(2_000);
        let (mut io, peer, clock, _wait) = adapter(&control);
        for _ in 0..3 {
            peer.feed(&[20, 3, 3, 0, 1, 1]);
        }
        let mut buf = [0u8; 6];
        assert_eq!(io.read(&mut buf), Ok(6));
        clock.advance(1_500);
        assert_eq!(
            io.read(&mut buf),
            Err(NalIoError::TimedOut),
            "bytes wait, but the deadline passed"
        );
        assert_eq!(control.outcome(), IoOutcome::TimedOut);
    }

    #[test]
    fn bytes_that_keep_coming_end_a_read_at_a_record_boundary_harmlessly() {
        let control = IoControl::new();
        control.set_deadline(11_000);
        control.set_record_start_deadline(Some(1_000));
        let (mut io, peer, _clock, _wait) = adapter(&control);
        peer.feed(&[20, 3, 3, 0, 1, 1]);
        peer.feed(&[20, 3, 3, 0, 1, 1]);
        let mut buf = [0u8; 6];
        // The first read of an operation takes what is there, even at the
        // record-start deadline; the next one, at a boundary, gives up.
        assert_eq!(io.read(&mut buf), Ok(6));
        assert_eq!(io.read(&mut buf), Err(NalIoError::NotReady));
        // Nothing was lost: the next operation reads the second record.
        control.clear_outcome();
        assert_eq!(io.read(&mut buf), Ok(6));
    }

    #[test]
    fn read_in_the_middle_of_a_record_waits_up_to_the_deadline_then_fails() {
        let control = IoControl::new();
        control.set_deadline(5_000);
        control.set_record_start_deadline(Some(1_000));
        let (mut io, peer, clock, _wait) = adapter(&control);
        peer.feed(&[22, 3, 3, 0, 10, 1]); // header, then 1 of 10 body bytes
        let mut buf = [0u8; 16];
        assert_eq!(io.read(&mut buf), Ok(6));
        assert!(!io.at_record_boundary());
        assert_eq!(io.read(&mut buf), Err(NalIoError::TimedOut));
        assert_eq!(clock.now_ms(), 5000, "waited to the deadline, not past it");
        assert_eq!(control.outcome(), IoOutcome::TimedOut);
    }

    #[test]
    fn blocking_read_at_a_boundary_without_record_start_deadline_times_out() {
        let control = IoControl::new();
        control.set_deadline(3_000);
        let (mut io, _peer, clock, wait) = adapter(&control);
        let mut buf = [0u8; 4];
        assert_eq!(io.read(&mut buf), Err(NalIoError::TimedOut));
        assert_eq!(clock.now_ms(), 3000);
        assert_eq!(wait.waits(), [2000]);
    }

    #[test]
    fn bytes_that_cannot_start_a_record_are_not_tls() {
        let control = IoControl::new();
        control.set_deadline(3_000);
        let (mut io, peer, _clock, _wait) = adapter(&control);
        peer.feed(b"\x20\x02\x00\x00"); // an MQTT CONNACK
        let mut buf = [0u8; 4];
        assert_eq!(io.read(&mut buf), Err(NalIoError::NotTls));
        assert_eq!(control.outcome(), IoOutcome::NotTls);
    }

    #[test]
    fn write_retries_partial_sends_and_fails_at_the_deadline_on_a_dead_socket() {
        let control = IoControl::new();
        control.set_deadline(2_000);
        let (mut io, peer, _clock, _wait) = adapter(&control);
        peer.limit_sends(Some(2));
        io.write_all(b"abcdef").expect("write");
        assert_eq!(peer.sent(), b"abcdef");
        peer.limit_sends(Some(0));
        assert_eq!(io.write(b"x"), Err(NalIoError::TimedOut));
        peer.close_connection();
        assert_eq!(
            io.write(b"x"),
            Err(NalIoError::Network(MemoryError::Closed))
        );
        assert_eq!(
            control.outcome(),
            IoOutcome::Network(TcpErrorKind::PipeClosed)
        );
    }

    #[test]
    fn into_parts_returns_the_socket_for_closing() {
        let control = IoControl::new();
        let mut stack = MemoryStack::new();
        let mut socket = stack.socket().expect("socket");
        stack
            .connect(&mut socket, "127.0.0.1:1".parse().expect("addr"))
            .expect("connect");
        let io = NalIo::new(stack, socket, VirtualClock::default(), Spin, &control);
        let (mut stack, socket, _, _) = io.into_parts();
        stack.close(socket).expect("close");
    }
}
