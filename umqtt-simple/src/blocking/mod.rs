//! The blocking client: the seed's API over an embedded-nal stack, a driver
//! of the sans-IO [`Session`] (`crate::session`), which holds the protocol.
//! The driver owns the socket, the clock, the [`Wait`] component and the
//! deadlines of calls; `requests.rs` holds the requests and their waits,
//! `io.rs` the reads, sends and sleeps.
//!
//! Every blocking call runs one loop, `Client::poll_inbound`, which reads
//! from the stack into the receive buffer, handles one packet at a time
//! (delivering messages to the callback), keeps the keepalive timer, and sleeps
//! through the [`Wait`] component until data or the nearest deadline. Calls
//! differ only in which packet ends their wait and how long they may wait.

use core::net::SocketAddr;

use crate::{Clock, Spin, Wait};
use embedded_nal::{AddrType, Dns, TcpClientStack};

use crate::driver::{AckCallback, Callback, Callbacks, UndeliveredCallback, checked_will};
use crate::error::{Error, Waiting};
use crate::options::Options;
use crate::packet::{Packet, QoS};
use crate::session::Session;

mod io;
mod requests;

/// How long the waiter may idle while the stack is busy connecting,
/// resolving or sending.
pub(super) const NAP_MS: u32 = 1;

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
    /// The protocol: buffers, packet ids, keepalive, acknowledgements.
    session: Session<'a>,
    callbacks: Callbacks<'a>,
    /// No wait for the broker goes past this clock reading
    /// ([`Client::limit_waits`]).
    wait_limit: Option<u64>,
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
        let now = clock.now_ms();
        Client {
            stack,
            clock,
            waiter: Spin,
            socket: None,
            session: Session::new(tx, rx, options, now),
            callbacks: Callbacks::default(),
            wait_limit: None,
        }
    }
}

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>> Client<'a, S, C, W> {
    /// The same client, waiting for data with `waiter` instead.
    pub fn with_waiter<W2: Wait<S>>(self, waiter: W2) -> Client<'a, S, C, W2> {
        Client {
            stack: self.stack,
            clock: self.clock,
            waiter,
            socket: self.socket,
            session: self.session,
            callbacks: self.callbacks,
            wait_limit: self.wait_limit,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &Options<'a> {
        self.session.options()
    }

    /// Replaces the options; they take effect at the next `connect`.
    pub fn set_options(&mut self, options: Options<'a>) {
        *self.session.options_mut() = options;
    }

    /// The stack, e.g. to poll an interface that needs it.
    pub fn stack_mut(&mut self) -> &mut S {
        &mut self.stack
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Sets the callback that receives every message, including those that
    /// arrive while `publish`, `subscribe` or `unsubscribe` wait for their
    /// acknowledgement.
    ///
    /// The callback cannot use the client: the client borrows it. So it
    /// cannot publish from inside a delivery, which in the original can
    /// recurse without bound (its README warns of it); the compiler refuses:
    ///
    /// ```compile_fail
    /// use umqtt_simple::{Client, Message, Options, QoS};
    /// use umqtt_transports::std_tcp::{StdClock, StdTcpStack};
    ///
    /// let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
    /// let mut client =
    ///     Client::new(StdTcpStack::new(), StdClock::new(), &mut tx, &mut rx, Options::new("c"));
    /// let mut answer = |_: Message<'_>| {
    ///     let _ = client.publish(b"replies", b"pong", false, QoS::AtLeastOnce);
    /// };
    /// client.set_callback(&mut answer); // error: `client` is already borrowed by `answer`
    /// ```
    ///
    /// Keep what the answer needs (in a `Cell`, a `RefCell` or a fixed-size
    /// queue the closure borrows) and publish it after `wait_msg` returns:
    /// the `reply` example does so.
    pub fn set_callback(&mut self, callback: Callback<'a>) {
        self.callbacks.message = Some(callback);
    }

    /// Sets the callback that hears of every message too large for the
    /// receive buffer: read to its end, thrown away, acknowledged or not as
    /// [`Options::acknowledge_undelivered`] says, then reported here with
    /// its topic (as much as fits), size, QoS and packet id, also when it
    /// arrives inside `publish`, `subscribe` or `unsubscribe`.
    ///
    /// Without it, `wait_msg`, `wait_msg_for` and `check_msg` report such a
    /// message as [`Error::MessageTooLarge`] (the next one does, for one that
    /// arrived inside another call).
    pub fn set_undelivered_callback(&mut self, callback: UndeliveredCallback<'a>) {
        self.callbacks.undelivered = Some(callback);
    }

    /// Lends the QoS 1 window its slots: up to `slots.len()` QoS 1 messages
    /// may then be in flight at once. A QoS 1 `publish` (and
    /// `publish_with_id`, `republish`) returns once the message is handed
    /// to the stack, waiting only while the window is full (for at most the
    /// ack timeout: then [`Error::Timeout`]`(PubAck)`); PUBACKs are matched
    /// by packet id in any order and reported to the
    /// [`Client::set_ack_callback`] callback; [`Client::flush_for`] waits
    /// until all are in. Ids are never reused while in flight; the wire
    /// order is the publish order.
    ///
    /// Without a window (the default, as in the original) every QoS 1
    /// publish waits for its PUBACK. A lost connection forgets what was in
    /// flight: a message whose PUBACK did not come is the application's to
    /// send again (umqtt-robust's outbox does it).
    ///
    /// ```
    /// # use umqtt_simple::{Client, Options};
    /// # use umqtt_transports::std_tcp::{StdClock, StdTcpStack};
    /// let (mut tx, mut rx, mut window) = ([0u8; 512], [0u8; 512], [0u16; 32]);
    /// let mut client = Client::new(StdTcpStack::new(), StdClock::new(), &mut tx, &mut rx, Options::new("w"));
    /// client.set_window(&mut window);
    /// assert_eq!((client.in_flight(), client.window_capacity()), (0, 32));
    /// ```
    pub fn set_window(&mut self, slots: &'a mut [u16]) {
        self.session.set_window(slots);
    }

    /// Sets the callback that hears of every PUBACK of a windowed message,
    /// with its packet id (from [`Client::take_packet_id`] with
    /// [`Client::publish_with_id`], to tie it to a message).
    pub fn set_ack_callback(&mut self, callback: AckCallback<'a>) {
        self.callbacks.acked = Some(callback);
    }

    /// How many QoS 1 messages may be in flight at once (0: no window).
    pub fn window_capacity(&self) -> usize {
        self.session.window_capacity()
    }

    /// Windowed QoS 1 messages sent and not acknowledged yet.
    pub fn in_flight(&self) -> usize {
        self.session.in_flight()
    }

    /// Whether the windowed message with `packet_id` is still unacknowledged.
    pub fn is_in_flight(&self, packet_id: u16) -> bool {
        self.session.is_in_flight(packet_id)
    }

    /// Sends the batched QoS 0 messages and waits until every windowed QoS 1
    /// message is acknowledged, for at most `timeout_ms`; returns whether
    /// all were (the connection stays up either way).
    pub fn flush_for(&mut self, timeout_ms: u32) -> Result<bool, ClientError<S>> {
        let deadline = self.wait_deadline(self.clock.now_ms(), timeout_ms);
        let result = self
            .connected()
            .and_then(|()| self.await_window_empty(deadline));
        self.settle(result)
    }

    /// Sets the last will (call before `connect`). The topic is checked now.
    pub fn set_last_will(
        &mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), ClientError<S>> {
        self.session.options_mut().will = Some(checked_will(topic, message, retain, qos)?);
        Ok(())
    }

    /// Waits `ms` milliseconds through the waiter's [`Wait::idle`] (sleeping
    /// where the platform can), without touching any connection.
    pub fn pause(&mut self, ms: u32) {
        let until = self.deadline(ms);
        loop {
            let now = self.clock.now_ms();
            if now >= until {
                return;
            }
            let left = u32::try_from(until - now).unwrap_or(u32::MAX);
            self.waiter.idle(&mut self.stack, left);
        }
    }

    /// Whether a connection is open (as far as the client knows).
    pub fn is_connected(&self) -> bool {
        self.socket.is_some() && !self.session.is_connecting()
    }

    /// Caps every wait for the broker (TCP connect, CONNACK, acknowledgements,
    /// `wait_msg_for`) at `until`, a reading of the client's clock; `None`
    /// lifts the cap. Each wait keeps its own timeout too, and ends at the
    /// earlier of the two; an acknowledgement wait cut short by the cap ends
    /// the connection like any other missing acknowledgement.
    ///
    /// For layers that bound a whole call made of several waits: umqtt-robust
    /// sets it to the call's deadline, so reconnects cannot stretch a call.
    pub fn limit_waits(&mut self, until: Option<u64>) {
        self.wait_limit = until;
    }

    /// How many packets the broker sent on the current connection after its
    /// CONNACK and the client handled: messages (skipped oversize ones
    /// included), acknowledgements and PINGRESPs. Starts again from 0 on
    /// every `connect`.
    ///
    /// It tells whether a connection ever worked beyond its CONNACK:
    /// umqtt-robust counts one lost before its count grew as a failed
    /// attempt, so a broker that accepts and then never answers is backed off.
    pub fn packets_received(&self) -> u32 {
        self.session.packets_received()
    }

    /// How many received messages were too large for the receive buffer and
    /// were skipped since the client was created.
    pub fn skipped_messages(&self) -> u32 {
        self.session.skipped_messages()
    }

    /// How many batched QoS 0 messages ([`Options::batch_qos0`]) were lost
    /// since the client was created: accepted by `publish`, then dropped with
    /// a connection that failed or was closed before they were sent.
    pub fn dropped_messages(&self) -> u32 {
        self.session.dropped_messages()
    }

    /// How many batched QoS 0 messages wait in the transmit buffer.
    pub fn pending_messages(&self) -> u32 {
        self.session.pending_messages()
    }

    /// Sends the batched QoS 0 messages waiting in the transmit buffer
    /// ([`Options::batch_qos0`]), in one send; returns at once if there are
    /// none. Like every call but `connect`, fails with
    /// [`Error::NotConnected`] without a connection (batched messages never
    /// outlive theirs).
    ///
    /// If the send fails, the connection is closed, the error returned and
    /// the messages are counted by [`Client::dropped_messages`].
    pub fn flush(&mut self) -> Result<(), ClientError<S>> {
        let result = self.connected().and_then(|()| self.flush_pending());
        self.settle(result)
    }

    /// Connects to the broker at `addr` and returns whether the broker kept a
    /// session ("session present").
    ///
    /// TCP connect, CONNECT and CONNACK share one deadline (the connect
    /// timeout). An open connection is closed first (batched messages still
    /// waiting are dropped with it). The options are checked before anything
    /// is sent.
    pub fn connect(&mut self, addr: SocketAddr) -> Result<bool, ClientError<S>> {
        let deadline = self.wait_deadline(
            self.clock.now_ms(),
            self.session.options().connect_timeout_ms,
        );
        let result = self.connect_by(addr, deadline);
        self.settle(result)
    }

    /// Closes the connection politely: DISCONNECT (behind any batched
    /// messages, in the same send), then close. The broker discards the will.
    pub fn disconnect(&mut self) -> Result<(), ClientError<S>> {
        if self.socket.is_none() {
            return Err(Error::NotConnected);
        }
        let result = self.send_packet(Packet::Disconnect);
        self.close_socket();
        log::info!("disconnected");
        result
    }

    /// Sends PINGREQ now; the PINGRESP is handled by later calls. The client
    /// also pings by itself when keepalive is due.
    pub fn ping(&mut self) -> Result<(), ClientError<S>> {
        let result = self.send_ping();
        self.settle(result)
    }

    /// Publishes `payload` to `topic`.
    ///
    /// With QoS 0, returns once the stack has the whole packet, or, in
    /// batched mode ([`Options::batch_qos0`]), once it waits in the transmit
    /// buffer. With QoS 1, returns once the broker's PUBACK arrived (or the
    /// ack timeout passed); batched messages leave first, in the same send.
    /// Messages arriving meanwhile go to the callback: a QoS 1
    /// message to a topic this client subscribes to usually comes back here,
    /// before the PUBACK, so a program that then waits for it with `wait_msg`
    /// would wait for a message already delivered.
    pub fn publish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), ClientError<S>> {
        let result = self.publish_inner(topic, payload, retain, qos);
        self.settle(result)
    }

    /// Publishes again a QoS 1 message whose PUBACK never came, with DUP set
    /// and the packet id it was first sent with (after a reconnect).
    pub fn republish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
    ) -> Result<(), ClientError<S>> {
        let result = self.publish_with_id_inner(topic, payload, retain, packet_id, true);
        self.settle(result)
    }

    /// The packet id the next QoS 1 publish, subscribe or unsubscribe uses.
    pub fn next_packet_id(&self) -> u16 {
        self.session.next_packet_id()
    }

    /// Takes a packet id (1 to 65 535, never 0) for a QoS 1 message the
    /// caller sends with [`Client::publish_with_id`] and keeps until it is
    /// acknowledged, so that it can send it again as the same message
    /// ([`Client::republish`]) after a lost connection.
    pub fn take_packet_id(&mut self) -> u16 {
        self.session.take_packet_id()
    }

    /// Publishes a QoS 1 message with a packet id from
    /// [`Client::take_packet_id`]; otherwise like [`Client::publish`].
    pub fn publish_with_id(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
    ) -> Result<(), ClientError<S>> {
        let result = self.publish_with_id_inner(topic, payload, retain, packet_id, false);
        self.settle(result)
    }

    /// Subscribes to `filter` and returns the QoS the broker granted.
    /// A refusal (SUBACK 0x80) is [`Error::SubscribeRefused`].
    pub fn subscribe(&mut self, filter: &[u8], qos: QoS) -> Result<QoS, ClientError<S>> {
        let mut granted = [None];
        self.subscribe_many(&[(filter, qos)], &mut granted)?;
        granted[0].ok_or(Error::SubscribeRefused { index: 0 })
    }

    /// Subscribes to several filters in one SUBSCRIBE. `granted[i]` receives
    /// the QoS granted for `filters[i]`, or `None` if the broker refused it;
    /// any refusal also makes the call return [`Error::SubscribeRefused`] for
    /// the first refused filter, after all results are written.
    pub fn subscribe_many(
        &mut self,
        filters: &[(&[u8], QoS)],
        granted: &mut [Option<QoS>],
    ) -> Result<(), ClientError<S>> {
        let result = self.subscribe_inner(filters, granted);
        self.settle(result)
    }

    /// Unsubscribes from `filter` and waits for the UNSUBACK.
    pub fn unsubscribe(&mut self, filter: &[u8]) -> Result<(), ClientError<S>> {
        let result = self.unsubscribe_inner(filter);
        self.settle(result)
    }

    /// Waits for one packet from the broker and handles it: a message goes to
    /// the callback, anything else is handled inside.
    ///
    /// Sends PINGREQ when keepalive is due while it waits, and fails with
    /// [`Error::Timeout`]`(PingResp)` if the broker stops answering. With
    /// keepalive 0 it waits until something arrives: use
    /// [`Client::wait_msg_for`] to bound the wait.
    pub fn wait_msg(&mut self) -> Result<(), ClientError<S>> {
        loop {
            if self.wait_msg_for(u32::MAX)? {
                return Ok(());
            }
        }
    }

    /// Like [`Client::wait_msg`], for at most `timeout_ms`; returns whether a
    /// packet was handled.
    pub fn wait_msg_for(&mut self, timeout_ms: u32) -> Result<bool, ClientError<S>> {
        let deadline = self.wait_deadline(self.clock.now_ms(), timeout_ms);
        let result = self.next_unsolicited(Some(deadline));
        self.settle(result)
    }

    /// Handles one packet if one has arrived, and returns at once otherwise;
    /// returns whether a packet was handled. Never waits (and sends PINGREQ
    /// when keepalive is due).
    pub fn check_msg(&mut self) -> Result<bool, ClientError<S>> {
        let result = self.next_unsolicited(None);
        self.settle(result)
    }
}

impl<'a, S: TcpClientStack + Dns, C: Clock, W: Wait<S>> Client<'a, S, C, W> {
    /// Resolves `host` with the stack's DNS and connects to it; one deadline
    /// (the connect timeout) spans the lookup, TCP connect and CONNACK. A
    /// failed lookup is [`Error::Dns`] (the stack's reason is logged).
    pub fn connect_host(&mut self, host: &str, port: u16) -> Result<bool, ClientError<S>> {
        let deadline = self.wait_deadline(
            self.clock.now_ms(),
            self.session.options().connect_timeout_ms,
        );
        let result = self
            .resolve(host, deadline)
            .and_then(|ip| self.connect_by(SocketAddr::new(ip, port), deadline));
        self.settle(result)
    }

    fn resolve(&mut self, host: &str, deadline: u64) -> Result<core::net::IpAddr, ClientError<S>> {
        loop {
            match self.stack.get_host_by_name(host, AddrType::Either) {
                Ok(ip) => return Ok(ip),
                Err(nb::Error::WouldBlock) if self.clock.now_ms() < deadline => self.nap(),
                Err(nb::Error::WouldBlock) => return Err(Error::Timeout(Waiting::Dns)),
                Err(nb::Error::Other(e)) => {
                    log::warn!("DNS lookup of {host} failed: {e:?}");
                    return Err(Error::Dns);
                }
            }
        }
    }
}

/// The internals: the connection, the clock and the deadlines around the
/// [`Session`], which holds the protocol.
impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>> Client<'a, S, C, W> {
    /// Lets the waiter run for a moment (at most 1 ms) while the stack is
    /// busy connecting, resolving or sending: a stack that must be polled to
    /// make progress gets polled, a platform that sleeps sleeps briefly.
    pub(super) fn nap(&mut self) {
        self.waiter.idle(&mut self.stack, NAP_MS);
    }

    pub(super) fn deadline(&self, timeout_ms: u32) -> u64 {
        self.clock.now_ms().saturating_add(u64::from(timeout_ms))
    }

    /// The deadline of a wait for the broker of `timeout_ms` from `now`,
    /// within the cap set by [`Client::limit_waits`].
    pub(super) fn wait_deadline(&self, now: u64, timeout_ms: u32) -> u64 {
        let deadline = now.saturating_add(u64::from(timeout_ms));
        self.wait_limit
            .map_or(deadline, |limit| deadline.min(limit))
    }

    /// Closes the connection if `result` is an error that lost it.
    pub(super) fn settle<T>(
        &mut self,
        result: Result<T, ClientError<S>>,
    ) -> Result<T, ClientError<S>> {
        if let Err(e) = &result
            && e.is_connection_lost()
            && self.socket.is_some()
        {
            log::warn!("connection lost: {e:?}");
            self.close_socket();
        }
        result
    }

    pub(super) fn close_socket(&mut self) {
        self.session.closed();
        if let Some(socket) = self.socket.take()
            && let Err(e) = self.stack.close(socket)
        {
            log::debug!("closing the socket failed: {e:?}");
        }
    }

    pub(super) fn connected(&self) -> Result<(), ClientError<S>> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(Error::NotConnected)
        }
    }
}
