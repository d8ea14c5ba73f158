//! The blocking client: the seed's API over an embedded-nal stack, a pump
//! of the request [`Engine`], which holds every request's sequence. The
//! pump owns the socket, the clock and the [`Wait`] component: `pump.rs`
//! moves bytes and time between them and the engine, `connect.rs` opens
//! the connection. Each public method makes a [`Request`](crate::engine::Request) and runs
//! it.

use core::net::SocketAddr;

use crate::engine::Engine;
use crate::error::Error;
use crate::options::Options;
use crate::{Clock, Spin, Wait};
use embedded_nal::{Dns, TcpClientStack};

mod connect;
mod pump;

/// The error type of a client on stack `S`.
pub type ClientError<S> = Error<<S as TcpClientStack>::Error>;

/// An MQTT 3.1.1 client over any embedded-nal TCP stack: a port of
/// MicroPython's `umqtt.simple`.
///
/// - `S`: the TCP stack (any [`TcpClientStack`]; with [`Dns`], host names work).
/// - `C`: the monotonic [`Clock`] every deadline is measured on.
/// - `W`: how to wait for data without burning the CPU ([`Spin`] by default;
///   the std transport's `StdWait` sleeps in the kernel).
///
/// The settings and counters shared with the async client (callbacks, the
/// window, [`Engine::limit_waits`], ...) are the [`Engine`]'s, which the
/// client dereferences to.
///
/// Buffers are borrowed: `tx` holds one outgoing packet (a payload that does
/// not fit follows in a second send), or a batch of QoS 0 messages
/// ([`Options::batch_qos0`]); `rx` one incoming packet (a message that does
/// not fit is skipped and reported). Nothing is allocated.
///
/// ```
/// # use std::{cell::Cell, net::SocketAddr};
/// use umqtt_simple::{Client, Message, Options, QoS};
/// use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
///
/// # fn demo(broker: SocketAddr) -> Result<(), umqtt_simple::ClientError<StdTcpStack>> {
/// let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
/// let received = Cell::new(0);
/// let mut on_message = |msg: Message<'_>| {
///     println!("{:?}: {:?}", msg.topic, msg.payload);
///     received.set(received.get() + 1);
/// };
/// let mut client = Client::new(StdTcpStack::new(), StdClock::new(), &mut tx, &mut rx,
///                              Options::new("umqtt_client"))
///     .with_waiter(StdWait::new());
/// client.set_callback(&mut on_message);
/// client.connect(broker)?;
/// client.subscribe(b"foo_topic", QoS::AtLeastOnce)?;
/// client.publish(b"foo_topic", b"hello", false, QoS::AtLeastOnce)?;
/// while received.get() == 0 {
///     client.wait_msg()?;
/// }
/// client.disconnect()?;
/// # Ok(()) }
/// ```
pub struct Client<'a, S: TcpClientStack, C: Clock, W: Wait<S> = Spin> {
    stack: S,
    clock: C,
    waiter: W,
    socket: Option<S::TcpSocket>,
    /// The protocol and every request's sequence.
    engine: Engine<'a>,
    /// A read of `Ok(0)` is the end of the connection (see
    /// [`Client::set_zero_read_is_eof`]).
    zero_read_is_eof: bool,
}

impl<'a, S: TcpClientStack, C: Clock> Client<'a, S, C, Spin> {
    /// A client that is not connected yet, waiting by spinning (see
    /// [`Client::with_waiter`]).
    pub fn new(
        stack: S,
        clock: C,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Self {
        let engine = Engine::new(tx, rx, options, clock.now_ms());
        Client {
            stack,
            clock,
            waiter: Spin,
            socket: None,
            engine,
            zero_read_is_eof: false,
        }
    }
}

crate::front_end::deref_to_engine!(['a, S: TcpClientStack, C: Clock, W: Wait<S>] Client<'a, S, C, W>);

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>> Client<'a, S, C, W> {
    /// The same client, waiting for data with `waiter` instead.
    pub fn with_waiter<W2: Wait<S>>(self, waiter: W2) -> Client<'a, S, C, W2> {
        Client {
            stack: self.stack,
            clock: self.clock,
            waiter,
            socket: self.socket,
            engine: self.engine,
            zero_read_is_eof: self.zero_read_is_eof,
        }
    }

    /// The stack, e.g. to poll an interface that needs it.
    pub fn stack_mut(&mut self) -> &mut S {
        &mut self.stack
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Whether the stack's `receive` returning `Ok(0)` means the broker
    /// closed the connection (`true`), or only "no data yet" (`false`, the
    /// default, as `WouldBlock`): a quirk of the stack, not an MQTT option.
    /// embedded-nal leaves `Ok(0)` unspecified: some stacks
    /// (std-embedded-nal) use it for end of file, others (smoltcp-nal) for
    /// "nothing to read"; umqtt-conformance tells which (docs/PORTING.md).
    pub fn set_zero_read_is_eof(&mut self, eof: bool) {
        self.zero_read_is_eof = eof;
    }

    /// Waits `ms` milliseconds through the waiter's [`Wait::idle`] (sleeping
    /// where the platform can), without touching any connection.
    pub fn pause(&mut self, ms: u32) {
        let until = self.clock.now_ms().saturating_add(u64::from(ms));
        while let Some(left) = until.checked_sub(self.clock.now_ms()).filter(|l| *l > 0) {
            let left = u32::try_from(left).unwrap_or(u32::MAX);
            self.waiter.idle(&mut self.stack, left);
        }
    }

    /// Closes the connection politely: DISCONNECT (behind any batched
    /// messages, in the same send), then close. The broker discards the will.
    pub fn disconnect(&mut self) -> Result<(), ClientError<S>> {
        self.close_politely()
    }

    crate::front_end::client_requests!(ClientError<S>);
}

impl<S: TcpClientStack + Dns, C: Clock, W: Wait<S>> Client<'_, S, C, W> {
    /// Resolves `host` with the stack's DNS and connects to it; one deadline
    /// (the connect timeout) spans the lookup, TCP connect and CONNACK. A
    /// failed lookup is [`Error::Dns`] (the stack's reason is logged).
    pub fn connect_host(&mut self, host: &str, port: u16) -> Result<bool, ClientError<S>> {
        let deadline = self.engine.connect_deadline(self.clock.now_ms());
        let result = self
            .resolve(host, deadline)
            .and_then(|ip| self.connect_by(SocketAddr::new(ip, port), deadline));
        self.settle(result)
    }
}
