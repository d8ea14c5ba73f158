//! The client: connection state, buffers, timing and the seed's API.
//!
//! Every blocking call runs one loop, [`Client::poll_inbound`], which reads
//! from the stack into the receive buffer, handles one packet at a time
//! (delivering messages to the callback), keeps the keepalive timer, and sleeps
//! through the [`Wait`] component until data or the nearest deadline. Calls
//! differ only in which packet ends their wait and how long they may wait.

use core::cell::Cell;
use core::net::SocketAddr;

use embedded_nal::{AddrType, Dns, TcpClientStack};
use umqtt_transports::{Clock, Spin, Wait};

use crate::error::{Error, Waiting};
use crate::keepalive::{KeepAlive, KeepAliveAction};
use crate::options::Options;
use crate::packet::{
    Connect, DecodeError, EncodeError, FixedHeader, LastWill, Packet, PacketType, Publish, QoS,
    SubAck, SubAckCode, Subscribe, SubscribeFilters, Unsubscribe, UnsubscribeFilters,
    validate_topic_name,
};
use crate::released::AwaitingRelease;

/// A publish first reads what has arrived when nothing was read for this
/// long: a message is not written into a connection the broker has already
/// closed, and a fast publisher pays for it at most ten times a second.
const READ_BEFORE_PUBLISH_MS: u64 = 100;

/// How long the waiter may idle while the stack is busy connecting,
/// resolving or sending.
const NAP_MS: u32 = 1;

/// The smallest receive buffer the client accepts: room for any fixed header
/// and the acknowledgements it waits for.
pub const MIN_RX_BUFFER: usize = 16;
/// The smallest transmit buffer the client accepts.
pub const MIN_TX_BUFFER: usize = 16;

/// A message delivered to the callback.
///
/// The topic and payload borrow the client's receive buffer; copy what you
/// need to keep.
///
/// Topics are bytes, as the broker sent them: [`Message::topic_str`] gives
/// the text when it is what MQTT requires. A topic that is not (invalid
/// UTF-8, U+0000) is delivered rather than refused, although MQTT-1.5.3-1
/// tells the receiver to close the connection: the broker would send the
/// same message again after every reconnect of a persistent session, and a
/// client that closes on it would never receive anything again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'m> {
    /// The topic the message was published to.
    pub topic: &'m [u8],
    /// The message itself.
    pub payload: &'m [u8],
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// Set when the broker sends a retained message on subscribe.
    pub retain: bool,
    /// Set when the broker sends it again after a reconnect.
    pub dup: bool,
    /// Set by [`Message::decline`]; `None` for a message made by hand.
    declined: Option<&'m Cell<bool>>,
}

impl<'m> Message<'m> {
    /// A message made by hand (e.g. to test a callback): not retained, not
    /// a duplicate; [`Message::decline`] does nothing on it.
    pub const fn new(topic: &'m [u8], payload: &'m [u8], qos: QoS) -> Self {
        Message {
            topic,
            payload,
            qos,
            retain: false,
            dup: false,
            declined: None,
        }
    }

    /// The topic as text, if it is what MQTT requires of a topic: UTF-8
    /// without U+0000.
    pub fn topic_str(&self) -> Option<&'m str> {
        core::str::from_utf8(self.topic)
            .ok()
            .filter(|topic| !topic.contains('\0'))
    }

    /// Leaves the message with the broker: the client does not acknowledge
    /// it (no PUBACK for QoS 1, no PUBREC for QoS 2), so the broker keeps it
    /// and sends it again after the next reconnect of a persistent session.
    /// For an application that stops taking messages (`umqtt sub -C N`
    /// declines every message after the N-th), so that none is acknowledged
    /// that it did not take. A QoS 0 message has nothing to decline.
    ///
    /// The broker does not send a declined message again on the same
    /// connection, and it counts against its in-flight limit (mosquitto: 20)
    /// until the client reconnects: decline when about to stop.
    pub fn decline(&self) {
        if let Some(declined) = self.declined {
            declined.set(true);
        }
    }
}

/// The callback that receives every message: a borrowed closure, so no heap
/// is needed.
pub type Callback<'a> = &'a mut dyn FnMut(Message<'_>);

/// A message the client could not deliver because it is larger than the
/// receive buffer: read to its end and thrown away, then reported with what
/// the client saw of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undelivered<'m> {
    /// The start of the topic: all of it when it fits in half the receive
    /// buffer (`topic.len() == topic_len`), else as much as does.
    pub topic: &'m [u8],
    /// The topic's whole length in bytes.
    pub topic_len: usize,
    /// The PUBLISH packet's size in bytes.
    pub size: usize,
    /// The receive buffer's size.
    pub capacity: usize,
    /// The QoS it was sent with.
    pub qos: QoS,
    /// Its packet id (0 for QoS 0).
    pub packet_id: u16,
    /// Set for a retained message.
    pub retain: bool,
    /// Set when the broker sent it again.
    pub dup: bool,
    /// Whether the client acknowledged it, so the broker dropped it
    /// ([`Options::acknowledge_undelivered`]); always `false` for QoS 0.
    pub acknowledged: bool,
}

/// The callback that hears of every message too large to deliver
/// ([`Client::set_undelivered_callback`]).
pub type UndeliveredCallback<'a> = &'a mut dyn FnMut(Undelivered<'_>);

/// The error type of a client on stack `S`.
pub type ClientError<S> = Error<<S as TcpClientStack>::Error>;

/// What one handled packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    Message,
    ConnAck {
        session_present: bool,
    },
    PubAck(u16),
    SubAck(u16),
    UnsubAck(u16),
    PingResp,
    /// A PUBREL, answered with PUBCOMP.
    PubRel,
    /// A message too large for the receive buffer, read and thrown away;
    /// `reported` when the undelivered callback heard of it.
    Skipped {
        size: usize,
        reported: bool,
    },
}

/// A message larger than the receive buffer, being read and thrown away.
///
/// The start of its topic stays at `rx[topic_at..topic_at + kept]` for the
/// report; the rest of the buffer, from there on, is where the message
/// drains through.
#[derive(Debug, Clone, Copy)]
struct Discard {
    /// Bytes of the packet still to read.
    remaining: usize,
    /// The packet's size.
    size: usize,
    /// Its fixed-header flags (QoS, retain, dup).
    flags: u8,
    topic_len: usize,
    topic_at: usize,
    kept: usize,
    /// Where the packet id's two bytes are in the packet, while they have
    /// not been read.
    id_at: usize,
    id: [Option<u8>; 2],
}

impl Discard {
    /// Takes the packet id's bytes from `chunk`, the packet's bytes from
    /// offset `at` on.
    fn find_id(&mut self, at: usize, chunk: &[u8]) {
        for (k, byte) in self.id.iter_mut().enumerate() {
            if byte.is_none()
                && let Some(&b) = (self.id_at + k).checked_sub(at).and_then(|i| chunk.get(i))
            {
                *byte = Some(b);
            }
        }
    }

    fn packet_id(&self) -> Option<u16> {
        match self.id {
            [Some(hi), Some(lo)] => Some(u16::from_be_bytes([hi, lo])),
            _ => None,
        }
    }
}

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
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    /// Where the received data not yet taken starts in `rx`.
    rx_start: usize,
    /// Where the received data ends in `rx`.
    rx_len: usize,
    /// Length of the packet handled last, at `rx_start`; it stays readable
    /// until the next packet is taken.
    consumed: usize,
    discard: Option<Discard>,
    /// Where the received data starts when the buffer is empty: 0, or past
    /// the topic kept for the report while a message drains.
    rx_floor: usize,
    callback: Option<Callback<'a>>,
    undelivered: Option<UndeliveredCallback<'a>>,
    /// A message skipped inside another call with no undelivered callback
    /// to tell: its size, for the next `wait_msg`/`check_msg` to report.
    unreported: Option<usize>,
    /// QoS 2 messages delivered and awaiting their PUBREL.
    released: AwaitingRelease,
    options: Options<'a>,
    keepalive: KeepAlive,
    connecting: bool,
    next_packet_id: u16,
    skipped_messages: u32,
    /// When the stack was last asked for data.
    last_read_ms: u64,
    /// Bytes at the start of `tx` that hold batched QoS 0 messages not sent
    /// yet ([`Options::batch_qos0`]).
    tx_pending: usize,
    /// How many messages those bytes hold.
    pending_messages: u32,
    dropped_messages: u32,
    /// No wait for the broker goes past this clock reading
    /// ([`Client::limit_waits`]).
    wait_limit: Option<u64>,
    /// Packets handled since the CONNACK ([`Client::packets_received`]).
    packets_received: u32,
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
            tx,
            rx,
            rx_start: 0,
            rx_len: 0,
            consumed: 0,
            discard: None,
            rx_floor: 0,
            callback: None,
            undelivered: None,
            unreported: None,
            released: AwaitingRelease::default(),
            options,
            keepalive: KeepAlive::new(0, 0, now),
            connecting: false,
            next_packet_id: 1,
            skipped_messages: 0,
            last_read_ms: now,
            tx_pending: 0,
            pending_messages: 0,
            dropped_messages: 0,
            wait_limit: None,
            packets_received: 0,
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
            tx: self.tx,
            rx: self.rx,
            rx_start: self.rx_start,
            rx_len: self.rx_len,
            consumed: self.consumed,
            discard: self.discard,
            rx_floor: self.rx_floor,
            callback: self.callback,
            undelivered: self.undelivered,
            unreported: self.unreported,
            released: self.released,
            options: self.options,
            keepalive: self.keepalive,
            connecting: self.connecting,
            next_packet_id: self.next_packet_id,
            skipped_messages: self.skipped_messages,
            last_read_ms: self.last_read_ms,
            tx_pending: self.tx_pending,
            pending_messages: self.pending_messages,
            dropped_messages: self.dropped_messages,
            wait_limit: self.wait_limit,
            packets_received: self.packets_received,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &Options<'a> {
        &self.options
    }

    /// Replaces the options; they take effect at the next `connect`.
    pub fn set_options(&mut self, options: Options<'a>) {
        self.options = options;
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
        self.callback = Some(callback);
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
        self.undelivered = Some(callback);
    }

    /// Sets the last will (call before `connect`). The topic is checked now.
    pub fn set_last_will(
        &mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), ClientError<S>> {
        validate_topic_name(topic)?;
        if message.len() > usize::from(u16::MAX) {
            return Err(Error::Invalid(EncodeError::TooLong {
                field: crate::packet::Field::WillMessage,
                len: message.len(),
            }));
        }
        self.options.will = Some(LastWill {
            topic,
            message,
            qos,
            retain,
        });
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
        self.socket.is_some() && !self.connecting
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
        self.packets_received
    }

    /// How many received messages were too large for the receive buffer and
    /// were skipped since the client was created.
    pub fn skipped_messages(&self) -> u32 {
        self.skipped_messages
    }

    /// How many batched QoS 0 messages ([`Options::batch_qos0`]) were lost
    /// since the client was created: accepted by `publish`, then dropped with
    /// a connection that failed or was closed before they were sent.
    pub fn dropped_messages(&self) -> u32 {
        self.dropped_messages
    }

    /// How many batched QoS 0 messages wait in the transmit buffer.
    pub fn pending_messages(&self) -> u32 {
        self.pending_messages
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
        let deadline = self.wait_deadline(self.clock.now_ms(), self.options.connect_timeout_ms);
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
        let result = self.publish_inner(topic, payload, retain, qos, false);
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
        self.next_packet_id
    }

    /// Takes a packet id (1 to 65 535, never 0) for a QoS 1 message the
    /// caller sends with [`Client::publish_with_id`] and keeps until it is
    /// acknowledged, so that it can send it again as the same message
    /// ([`Client::republish`]) after a lost connection.
    pub fn take_packet_id(&mut self) -> u16 {
        self.allocate_packet_id()
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
        let deadline = self.wait_deadline(self.clock.now_ms(), self.options.connect_timeout_ms);
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

/// The internals: sending, receiving and dispatching.
impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>> Client<'a, S, C, W> {
    /// Lets the waiter run for a moment (at most 1 ms) while the stack is
    /// busy connecting, resolving or sending: a stack that must be polled to
    /// make progress gets polled, a platform that sleeps sleeps briefly.
    fn nap(&mut self) {
        self.waiter.idle(&mut self.stack, NAP_MS);
    }

    fn deadline(&self, timeout_ms: u32) -> u64 {
        self.clock.now_ms().saturating_add(u64::from(timeout_ms))
    }

    /// The deadline of a wait for the broker of `timeout_ms` from `now`,
    /// within the cap set by [`Client::limit_waits`].
    fn wait_deadline(&self, now: u64, timeout_ms: u32) -> u64 {
        let deadline = now.saturating_add(u64::from(timeout_ms));
        self.wait_limit
            .map_or(deadline, |limit| deadline.min(limit))
    }

    /// Closes the connection if `result` is an error that lost it.
    fn settle<T>(&mut self, result: Result<T, ClientError<S>>) -> Result<T, ClientError<S>> {
        if let Err(e) = &result
            && e.is_connection_lost()
            && self.socket.is_some()
        {
            log::warn!("connection lost: {e:?}");
            self.close_socket();
        }
        result
    }

    fn close_socket(&mut self) {
        self.drop_pending();
        self.connecting = false;
        if let Some(socket) = self.socket.take()
            && let Err(e) = self.stack.close(socket)
        {
            log::debug!("closing the socket failed: {e:?}");
        }
    }

    fn connected(&self) -> Result<(), ClientError<S>> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(Error::NotConnected)
        }
    }

    fn check_buffers(&self) -> Result<(), EncodeError> {
        if self.rx.len() < MIN_RX_BUFFER {
            return Err(EncodeError::BufferTooSmall {
                needed: MIN_RX_BUFFER,
                available: self.rx.len(),
            });
        }
        if self.tx.len() < MIN_TX_BUFFER {
            return Err(EncodeError::BufferTooSmall {
                needed: MIN_TX_BUFFER,
                available: self.tx.len(),
            });
        }
        Ok(())
    }

    fn connect_by(&mut self, addr: SocketAddr, deadline: u64) -> Result<bool, ClientError<S>> {
        self.check_buffers()?;
        let o = &self.options;
        let connect = Connect {
            client_id: o.client_id.as_bytes(),
            keepalive: o.keepalive_s,
            clean_session: o.clean_session,
            will: o.will,
            username: o.username.map(str::as_bytes),
            password: o.password,
        };
        // Everything is checked (and encoded) before the network is touched.
        // `encode` writes nothing unless it succeeds, so refused options
        // leave the batch of an open connection as it was.
        let len = Packet::Connect(connect).encode(self.tx)?;
        self.close_socket();

        log::info!("connecting to {addr} as {:?}", self.options.client_id);
        let mut socket = self.stack.socket().map_err(Error::Network)?;
        loop {
            match self.stack.connect(&mut socket, addr) {
                Ok(()) => break,
                Err(nb::Error::WouldBlock) if self.clock.now_ms() < deadline => self.nap(),
                Err(e) => {
                    // The socket is not ours yet: close it here.
                    let _ = self.stack.close(socket);
                    return Err(match e {
                        nb::Error::WouldBlock => Error::Timeout(Waiting::Connect),
                        nb::Error::Other(e) => Error::Network(e),
                    });
                }
            }
        }
        let now = self.clock.now_ms();
        self.socket = Some(socket);
        self.connecting = true;
        self.rx_start = 0;
        self.rx_len = 0;
        self.consumed = 0;
        self.discard = None;
        self.rx_floor = 0;
        self.packets_received = 0;
        let keepalive_ms = u64::from(self.options.keepalive_s) * 1000;
        let ping_timeout = u64::from(self.options.effective_ping_timeout_ms());
        self.keepalive = KeepAlive::new(keepalive_ms, ping_timeout, now);

        let send_deadline =
            deadline.min(now.saturating_add(u64::from(self.options.send_timeout_ms)));
        self.send_buffered(now, len, &[], send_deadline)?;
        match self.poll_inbound(Some(deadline), Some(now))? {
            Some(Inbound::ConnAck { session_present }) => {
                if session_present && self.options.clean_session {
                    log::warn!("{addr} answered a clean session with \"session present\"");
                    return Err(Error::SessionPresentOnCleanSession);
                }
                if !session_present {
                    // A new session: nothing awaits a release any more.
                    self.released.clear();
                }
                self.connecting = false;
                log::info!("connected to {addr} (session present: {session_present})");
                Ok(session_present)
            }
            Some(other) => Err(Error::UnexpectedPacket(inbound_type(other))),
            None => Err(Error::Timeout(Waiting::ConnAck)),
        }
    }

    fn allocate_packet_id(&mut self) -> u16 {
        let id = self.next_packet_id;
        self.next_packet_id = match id.wrapping_add(1) {
            0 => 1,
            next => next,
        };
        id
    }

    fn publish_inner(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
        dup: bool,
    ) -> Result<(), ClientError<S>> {
        let mut publish = Publish::new(topic, payload, qos).with_retain(retain);
        // Checked once, with a stand-in id: a QoS 1 id is taken only once the
        // message is known to be valid and the connection up.
        publish.packet_id = 1;
        publish.validate()?;
        match qos {
            QoS::AtMostOnce => {
                self.connected()?;
                self.send_publish(&publish)
            }
            QoS::AtLeastOnce => {
                self.connected()?;
                publish.packet_id = self.allocate_packet_id();
                publish.dup = dup;
                self.send_and_await_puback(&publish)
            }
            QoS::ExactlyOnce => Err(EncodeError::PublishQoS2NotSupported.into()),
        }
    }

    fn publish_with_id_inner(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
        dup: bool,
    ) -> Result<(), ClientError<S>> {
        let mut publish = Publish::new(topic, payload, QoS::AtLeastOnce)
            .with_retain(retain)
            .with_packet_id(packet_id);
        publish.dup = dup;
        publish.validate()?;
        self.connected()?;
        self.send_and_await_puback(&publish)
    }

    /// Sends a checked QoS 1 PUBLISH and waits for its PUBACK.
    fn send_and_await_puback(&mut self, publish: &Publish<'_>) -> Result<(), ClientError<S>> {
        self.send_publish(publish)?;
        self.await_ack(Waiting::PubAck, publish.packet_id)
    }

    /// Sends a checked PUBLISH: in one send when it fits the transmit
    /// buffer, else the header from the buffer and the payload as it is.
    /// Batched QoS 0 messages stay in the buffer instead.
    fn send_publish(&mut self, publish: &Publish<'_>) -> Result<(), ClientError<S>> {
        // One clock reading serves the read-before check, the send deadline
        // and the keepalive stamp: this is the hot path of a QoS 0 stream.
        let mut now = self.clock.now_ms();
        let unread_ms = now.saturating_sub(self.last_read_ms);
        if self.keepalive.ping_pending() || unread_ms >= READ_BEFORE_PUBLISH_MS {
            // A publish-only client never reads: take in what has arrived, so
            // that a PINGRESP is seen and a connection the broker closed is
            // noticed before a message goes into it.
            while let Some(inbound) = self.poll_inbound(None, None)? {
                self.unsolicited(inbound)?;
            }
            // Callbacks may have run meanwhile.
            now = self.clock.now_ms();
        }
        // A batch this message would overflow leaves first, alone (the size
        // is worked out only when there is a batch: the QoS 0 hot path).
        if self.tx_pending > 0
            && self.tx_pending.saturating_add(publish.encoded_len()) > self.tx.len()
        {
            self.send_now(now, self.tx_pending, &[])?;
        }
        let start = self.tx_pending;
        let header_len =
            publish.encode_header_checked(self.tx.get_mut(start..).unwrap_or_default())?;
        let body_start = start + header_len;
        let end = body_start + publish.payload.len();
        let (len, tail) = match self.tx.get_mut(body_start..end) {
            Some(room) => {
                room.copy_from_slice(publish.payload);
                (end, &[][..])
            }
            None => (body_start, publish.payload),
        };
        if tail.is_empty() && publish.qos == QoS::AtMostOnce && self.options.batch_qos0 {
            self.tx_pending = len;
            self.pending_messages = self.pending_messages.saturating_add(1);
            return Ok(());
        }
        self.send_now(now, len, tail)
    }

    fn subscribe_inner(
        &mut self,
        filters: &[(&[u8], QoS)],
        granted: &mut [Option<QoS>],
    ) -> Result<(), ClientError<S>> {
        if granted.len() < filters.len() {
            return Err(Error::TooManyFilters {
                filters: filters.len(),
                slots: granted.len(),
            });
        }
        let probe = Subscribe {
            packet_id: 1,
            filters: SubscribeFilters::List(filters),
        };
        Packet::Subscribe(probe).validate()?;
        if self.callback.is_none() {
            return Err(Error::NoCallback);
        }
        self.connected()?;
        let packet_id = self.allocate_packet_id();
        self.send_packet(Packet::Subscribe(Subscribe { packet_id, ..probe }))?;
        self.await_ack(Waiting::SubAck, packet_id)?;
        let codes = self.last_suback()?;
        if codes.return_codes.len() != filters.len() {
            return Err(Error::Protocol(DecodeError::InvalidLength {
                packet: PacketType::SubAck,
                len: 2 + codes.return_codes.len(),
            }));
        }
        let mut refused = None;
        for (i, (slot, code)) in granted.iter_mut().zip(codes.codes()).enumerate() {
            *slot = match code {
                SubAckCode::GrantedQoS0 => Some(QoS::AtMostOnce),
                SubAckCode::GrantedQoS1 => Some(QoS::AtLeastOnce),
                SubAckCode::GrantedQoS2 => Some(QoS::ExactlyOnce),
                SubAckCode::Failure => {
                    refused.get_or_insert(i);
                    None
                }
            };
        }
        match refused {
            Some(index) => Err(Error::SubscribeRefused { index }),
            None => Ok(()),
        }
    }

    /// The SUBACK handled last, still in the receive buffer.
    fn last_suback(&self) -> Result<SubAck<'_>, ClientError<S>> {
        let end = self.rx_start + self.consumed;
        let bytes = self.rx.get(self.rx_start..end).unwrap_or_default();
        match Packet::decode(bytes)? {
            Some((Packet::SubAck(suback), _)) => Ok(suback),
            _ => Err(Error::UnexpectedPacket(PacketType::SubAck)),
        }
    }

    fn unsubscribe_inner(&mut self, filter: &[u8]) -> Result<(), ClientError<S>> {
        let filters = [filter];
        let probe = Unsubscribe {
            packet_id: 1,
            filters: UnsubscribeFilters::List(&filters),
        };
        Packet::Unsubscribe(probe).validate()?;
        self.connected()?;
        let packet_id = self.allocate_packet_id();
        self.send_packet(Packet::Unsubscribe(Unsubscribe { packet_id, ..probe }))?;
        self.await_ack(Waiting::UnsubAck, packet_id)
    }

    fn send_ping(&mut self) -> Result<(), ClientError<S>> {
        self.connected()?;
        self.send_packet(Packet::PingReq)?;
        self.keepalive.ping_sent(self.clock.now_ms());
        log::trace!("PINGREQ sent");
        Ok(())
    }

    /// Waits for the acknowledgement `waiting` with `packet_id`; messages that
    /// arrive meanwhile go to the callback.
    fn await_ack(&mut self, waiting: Waiting, packet_id: u16) -> Result<(), ClientError<S>> {
        // Read after the send, which may have waited for room: the whole
        // ack timeout is left for the answer.
        let now = self.clock.now_ms();
        let deadline = self.wait_deadline(now, self.options.ack_timeout_ms);
        let mut just_sent = Some(now);
        loop {
            let received = match self.poll_inbound(Some(deadline), just_sent.take())? {
                None => return Err(Error::Timeout(waiting)),
                Some(Inbound::PubAck(id)) => (Waiting::PubAck, PacketType::PubAck, id),
                Some(Inbound::SubAck(id)) => (Waiting::SubAck, PacketType::SubAck, id),
                Some(Inbound::UnsubAck(id)) => (Waiting::UnsubAck, PacketType::UnsubAck, id),
                Some(other) => {
                    self.unsolicited(other)?;
                    continue;
                }
            };
            let (kind, packet, id) = received;
            if kind != waiting {
                return Err(Error::UnexpectedPacket(packet));
            }
            if id != packet_id {
                return Err(Error::UnexpectedPacketId {
                    packet,
                    expected: packet_id,
                    received: id,
                });
            }
            return Ok(());
        }
    }

    /// Handles one packet that no request waits for; `deadline` None means
    /// do not wait. Returns whether a packet was handled.
    fn next_unsolicited(&mut self, deadline: Option<u64>) -> Result<bool, ClientError<S>> {
        self.connected()?;
        // A message skipped inside another call is reported first.
        if let Some(size) = self.unreported.take() {
            return Err(self.too_large(size));
        }
        self.flush_pending()?;
        match self.poll_inbound(deadline, None)? {
            None => Ok(false),
            Some(Inbound::Skipped {
                size,
                reported: false,
            }) => Err(self.too_large(size)),
            Some(other) => self.unsolicited(other).map(|()| true),
        }
    }

    fn too_large(&self, size: usize) -> ClientError<S> {
        Error::MessageTooLarge {
            size,
            capacity: self.rx.len(),
        }
    }

    /// Checks a packet that arrived while nothing waited for it.
    fn unsolicited(&mut self, inbound: Inbound) -> Result<(), ClientError<S>> {
        match inbound {
            Inbound::Message | Inbound::PingResp | Inbound::PubRel => Ok(()),
            Inbound::Skipped { size, reported } => {
                if !reported {
                    self.unreported = Some(size);
                }
                Ok(())
            }
            other => Err(Error::UnexpectedPacket(inbound_type(other))),
        }
    }

    /// Handles at most one packet, reading and waiting as needed until
    /// `deadline` (`None`: never wait). Keeps keepalive on the way.
    ///
    /// `just_sent`: a request was just sent, and the clock read then; its
    /// answer cannot be in yet, so the first round waits before reading,
    /// saving a read that would find nothing.
    fn poll_inbound(
        &mut self,
        deadline: Option<u64>,
        just_sent: Option<u64>,
    ) -> Result<Option<Inbound>, ClientError<S>> {
        let mut skip_read = just_sent.is_some() && deadline.is_some();
        // The clock is read once per wake: reading and handling what is
        // buffered takes no time worth a reading, on the path of every packet.
        let mut now = match just_sent {
            Some(now) => now,
            None => self.clock.now_ms(),
        };
        loop {
            self.keep_alive(now, false)?;
            if let Some(inbound) = self.take_packet(now)? {
                return Ok(Some(inbound));
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
            // Keepalive runs once connected; before CONNACK only `deadline` counts.
            let keepalive = if self.connecting {
                None
            } else {
                self.keepalive.next_deadline()
            };
            let until = keepalive.map_or(deadline, |k| k.min(deadline));
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
    fn keep_alive(&mut self, now: u64, judge_ping: bool) -> Result<(), ClientError<S>> {
        if self.connecting {
            return Ok(());
        }
        match self.keepalive.poll(now) {
            KeepAliveAction::Idle => Ok(()),
            KeepAliveAction::SendPing => self.send_ping(),
            KeepAliveAction::PingTimedOut if judge_ping => Err(Error::Timeout(Waiting::PingResp)),
            KeepAliveAction::PingTimedOut => Ok(()),
        }
    }

    /// Reads what the stack has into the receive buffer; returns whether any
    /// byte arrived.
    fn fill(&mut self, now: u64) -> Result<bool, ClientError<S>> {
        if self.rx_len == self.rx.len() {
            self.compact();
        }
        self.waiter.poll(&mut self.stack);
        self.last_read_ms = now;
        let socket = self.socket.as_mut().ok_or(Error::NotConnected)?;
        let Some(room) = self.rx.get_mut(self.rx_len..).filter(|r| !r.is_empty()) else {
            return Ok(false);
        };
        match self.stack.receive(socket, room) {
            Ok(0) if self.options.zero_read_is_eof => Err(Error::Closed),
            Ok(n) => {
                self.rx_len = (self.rx_len + n).min(self.rx.len());
                Ok(n > 0)
            }
            Err(nb::Error::WouldBlock) => Ok(false),
            Err(nb::Error::Other(e)) => Err(Error::Network(e)),
        }
    }

    /// Moves the data not yet taken to the front of the receive buffer. Done
    /// only when the end is reached, so each byte moves at most once per
    /// buffer length received.
    fn compact(&mut self) {
        let floor = self.rx_floor;
        self.rx.copy_within(self.rx_start..self.rx_len, floor);
        self.rx_len = floor + (self.rx_len - self.rx_start);
        self.rx_start = floor;
    }

    /// Marks `n` bytes at the start of the data as taken.
    fn advance(&mut self, n: usize) {
        self.rx_start = (self.rx_start + n).min(self.rx_len);
        if self.rx_start == self.rx_len {
            self.rx_start = self.rx_floor;
            self.rx_len = self.rx_floor;
        }
    }

    /// Handles the next whole packet in the receive buffer, if there is one.
    fn take_packet(&mut self, now: u64) -> Result<Option<Inbound>, ClientError<S>> {
        let consumed = core::mem::take(&mut self.consumed);
        self.advance(consumed);
        if let Some(mut discard) = self.discard.take() {
            let n = discard.remaining.min(self.rx_len - self.rx_start);
            let chunk = self
                .rx
                .get(self.rx_start..self.rx_start + n)
                .unwrap_or_default();
            discard.find_id(discard.size - discard.remaining, chunk);
            self.advance(n);
            discard.remaining -= n;
            if discard.remaining > 0 {
                self.discard = Some(discard);
                return Ok(None);
            }
            return self.finish_discard(discard, now).map(Some);
        }
        let data = self.rx.get(self.rx_start..self.rx_len).unwrap_or_default();
        let Some((header, header_len)) = FixedHeader::parse(data)? else {
            return Ok(None);
        };
        let total = header_len.saturating_add(header.remaining_length);
        if total > self.rx.len() {
            self.begin_discard(&header, header_len, total)?;
            return Ok(None);
        }
        if self.rx_start + total > self.rx.len() {
            // It fits the buffer, but not from where it starts.
            self.compact();
        }
        if self.rx_len - self.rx_start < total {
            return Ok(None);
        }
        self.consumed = total;
        let is_ping_response = header.packet_type == PacketType::PingResp;
        self.keepalive.packet_received(now, is_ping_response);
        let start = self.rx_start;
        let inbound = self.dispatch(&header, start + header_len, start + total)?;
        if !matches!(inbound, Inbound::ConnAck { .. }) {
            self.packets_received = self.packets_received.saturating_add(1);
        }
        Ok(Some(inbound))
    }

    /// Handles the packet whose body is `rx[body_start..end]`.
    fn dispatch(
        &mut self,
        header: &FixedHeader,
        body_start: usize,
        end: usize,
    ) -> Result<Inbound, ClientError<S>> {
        let body = self.rx.get(body_start..end).unwrap_or_default();
        let packet = Packet::decode_body(header, body)?;
        log::trace!("received {}", header.packet_type);
        if self.connecting {
            // The broker's first packet must be CONNACK.
            return match packet {
                Packet::ConnAck(connack) => match Error::from_refusal(connack.code) {
                    Some(refusal) => {
                        log::warn!("broker refused the connection: {}", connack.code);
                        Err(refusal)
                    }
                    None => Ok(Inbound::ConnAck {
                        session_present: connack.session_present,
                    }),
                },
                other => Err(Error::UnexpectedPacket(other.packet_type())),
            };
        }
        let inbound = match packet {
            Packet::Publish(publish) => {
                let id = publish.packet_id;
                // A QoS 2 message delivered before and not yet released is
                // a copy: acknowledged again, not delivered twice.
                let copy = publish.qos == QoS::ExactlyOnce && self.released.contains(id);
                let declined = Cell::new(false);
                if !copy {
                    let message = Message {
                        topic: publish.topic,
                        payload: publish.payload,
                        qos: publish.qos,
                        retain: publish.retain,
                        dup: publish.dup,
                        declined: Some(&declined),
                    };
                    match self.callback.as_mut() {
                        Some(callback) => callback(message),
                        None => log::warn!("message dropped: no callback set"),
                    }
                }
                if declined.get() {
                    log::debug!("message {id} declined: left unacknowledged with the broker");
                } else {
                    self.acknowledge(publish.qos, id)?;
                }
                Inbound::Message
            }
            Packet::PubRel(id) => {
                self.released.remove(id);
                self.send_packet(Packet::PubComp(id))?;
                Inbound::PubRel
            }
            Packet::PubAck(id) => Inbound::PubAck(id),
            Packet::SubAck(suback) => Inbound::SubAck(suback.packet_id),
            Packet::UnsubAck(id) => Inbound::UnsubAck(id),
            Packet::PingResp => Inbound::PingResp,
            other => return Err(Error::UnexpectedPacket(other.packet_type())),
        };
        Ok(inbound)
    }

    /// Acknowledges a received message as its QoS asks: PUBACK, or PUBREC
    /// (remembering a QoS 2 id until its PUBREL).
    fn acknowledge(&mut self, qos: QoS, id: u16) -> Result<(), ClientError<S>> {
        match qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => self.send_packet(Packet::PubAck(id)),
            QoS::ExactlyOnce => {
                if !self.released.insert(id) {
                    log::warn!(
                        "QoS 2 message {id}: {} messages already await their release; \
                         a copy sent again before its PUBREL would be delivered twice",
                        crate::AWAITING_RELEASE
                    );
                }
                self.send_packet(Packet::PubRec(id))
            }
        }
    }

    /// A packet larger than the receive buffer: a message is read to its
    /// end and thrown away, anything else ends the connection.
    ///
    /// Waits (returns with nothing started) until the topic and packet id
    /// are in, or the buffer is full. The start of the topic, at most half
    /// the buffer, stays for the report; the packet id is taken as it
    /// drains past when it is not in yet.
    fn begin_discard(
        &mut self,
        header: &FixedHeader,
        header_len: usize,
        total: usize,
    ) -> Result<(), ClientError<S>> {
        if header.packet_type != PacketType::Publish {
            return Err(Error::PacketTooLarge {
                packet: header.packet_type,
                size: total,
                capacity: self.rx.len(),
            });
        }
        self.compact();
        let qos = Publish::qos_of(header.flags)?;
        let topic_at = header_len + 2;
        let Some(&[hi, lo]) = self
            .rx
            .get(header_len..self.rx_len)
            .and_then(<[u8]>::first_chunk::<2>)
        else {
            // The buffer holds at least a fixed header and two bytes.
            return Ok(());
        };
        let topic_len = usize::from(u16::from_be_bytes([hi, lo]));
        let id_len = if qos.has_packet_id() { 2 } else { 0 };
        // A topic (and packet id) longer than the whole packet is
        // malformed, not merely large.
        if 2 + topic_len + id_len > header.remaining_length {
            return Err(Error::Protocol(DecodeError::Truncated {
                packet: PacketType::Publish,
            }));
        }
        let payload_at = topic_at + topic_len + id_len;
        if self.rx_len < payload_at.min(self.rx.len()) {
            return Ok(());
        }
        let kept = topic_len
            .min(self.rx_len - topic_at)
            .min((self.rx.len() - topic_at) / 2);
        let mut discard = Discard {
            remaining: total - self.rx_len,
            size: total,
            flags: header.flags,
            topic_len,
            topic_at,
            kept,
            id_at: payload_at - id_len,
            // QoS 0 has no packet id: nothing to find.
            id: if qos.has_packet_id() {
                [None, None]
            } else {
                [Some(0), Some(0)]
            },
        };
        discard.find_id(0, self.rx.get(..self.rx_len).unwrap_or_default());
        log::warn!(
            "skipping a {total}-byte message: the receive buffer holds {}",
            self.rx.len()
        );
        self.discard = Some(discard);
        // What is buffered past the kept topic belongs to the message.
        self.rx_floor = topic_at + kept;
        self.rx_start = self.rx_floor;
        self.rx_len = self.rx_floor;
        Ok(())
    }

    /// The message being skipped has drained: acknowledge it as the options
    /// say, and report it.
    fn finish_discard(&mut self, discard: Discard, now: u64) -> Result<Inbound, ClientError<S>> {
        self.skipped_messages = self.skipped_messages.saturating_add(1);
        self.packets_received = self.packets_received.saturating_add(1);
        self.keepalive.packet_received(now, false);
        let qos = Publish::qos_of(discard.flags)?;
        let packet_id = discard.packet_id().unwrap_or(0);
        let acknowledged = qos.has_packet_id() && self.options.acknowledge_undelivered;
        let sent = if acknowledged {
            self.acknowledge(qos, packet_id)
        } else {
            Ok(())
        };
        let topic_end = discard.topic_at + discard.kept;
        let report = Undelivered {
            topic: self.rx.get(discard.topic_at..topic_end).unwrap_or_default(),
            topic_len: discard.topic_len,
            size: discard.size,
            capacity: self.rx.len(),
            qos,
            packet_id,
            retain: discard.flags & 0b0001 != 0,
            dup: discard.flags & 0b1000 != 0,
            acknowledged,
        };
        log::warn!(
            "skipped a {}-byte message (QoS {}, packet id {packet_id}){}",
            report.size,
            qos as u8,
            if acknowledged { ", acknowledged" } else { "" }
        );
        let reported = match self.undelivered.as_mut() {
            Some(undelivered) => {
                undelivered(report);
                true
            }
            None => false,
        };
        // The kept topic is free again.
        self.rx_floor = 0;
        if self.rx_start == self.rx_len {
            self.rx_start = 0;
            self.rx_len = 0;
        }
        sent?;
        Ok(Inbound::Skipped {
            size: discard.size,
            reported,
        })
    }

    /// Encodes `packet` into the transmit buffer behind any batched
    /// messages and sends them all (the batch first, alone, if both do not
    /// fit: `encode` writes nothing when it fails).
    fn send_packet(&mut self, packet: Packet<'_>) -> Result<(), ClientError<S>> {
        let now = self.clock.now_ms();
        let start = self.tx_pending;
        let end = match packet.encode(self.tx.get_mut(start..).unwrap_or_default()) {
            Ok(len) => start + len,
            Err(EncodeError::BufferTooSmall { .. }) if start > 0 => {
                self.send_now(now, start, &[])?;
                packet.encode(self.tx)?
            }
            Err(e) => return Err(e.into()),
        };
        self.send_now(now, end, &[])
    }

    /// Sends the batched messages, if any (there are none without a
    /// connection: closing it drops them).
    fn flush_pending(&mut self) -> Result<(), ClientError<S>> {
        if self.tx_pending == 0 {
            return Ok(());
        }
        self.send_now(self.clock.now_ms(), self.tx_pending, &[])
    }

    /// Forgets the batched messages, counting them as dropped.
    fn drop_pending(&mut self) {
        if self.pending_messages > 0 {
            log::warn!(
                "{} batched QoS 0 messages dropped: the connection ended before they were sent",
                self.pending_messages
            );
            self.dropped_messages = self.dropped_messages.saturating_add(self.pending_messages);
        }
        self.tx_pending = 0;
        self.pending_messages = 0;
    }

    /// Sends like `send_buffered`, with the send timeout counted from `now`.
    fn send_now(&mut self, now: u64, len: usize, tail: &[u8]) -> Result<(), ClientError<S>> {
        let deadline = now.saturating_add(u64::from(self.options.send_timeout_ms));
        self.send_buffered(now, len, tail, deadline)
    }

    /// Sends the first `len` bytes of the transmit buffer (batched messages
    /// included), then `tail`, whole, before `deadline`. Anything less leaves
    /// the broker with half a packet, so the connection is then lost, and the
    /// batched messages with it.
    fn send_buffered(
        &mut self,
        now: u64,
        len: usize,
        tail: &[u8],
        deadline: u64,
    ) -> Result<(), ClientError<S>> {
        let socket = self.socket.as_mut().ok_or(Error::NotConnected)?;
        let head = self.tx.get(..len).unwrap_or_default();
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
            self.drop_pending();
            return Err(e);
        }
        self.tx_pending = 0;
        self.pending_messages = 0;
        // Stamped with the time the send began: keepalive errs early, never late.
        self.keepalive.packet_sent(now);
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

fn inbound_type(inbound: Inbound) -> PacketType {
    match inbound {
        Inbound::Message | Inbound::Skipped { .. } => PacketType::Publish,
        Inbound::PubRel => PacketType::PubRel,
        Inbound::ConnAck { .. } => PacketType::ConnAck,
        Inbound::PubAck(_) => PacketType::PubAck,
        Inbound::SubAck(_) => PacketType::SubAck,
        Inbound::UnsubAck(_) => PacketType::UnsubAck,
        Inbound::PingResp => PacketType::PingResp,
    }
}
